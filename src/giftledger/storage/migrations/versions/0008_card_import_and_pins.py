"""card lifecycle: imported cards, aliases, PINs, replacement (issue 17)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

(Reserved in the chain while the work is under way; it changes nothing yet.)
"""

from __future__ import annotations

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
