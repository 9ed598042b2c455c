"""card lifecycle: validity and expiry rules, breakage (issue 17)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

(Reserved in the chain while the work is under way; it changes nothing yet.)
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
