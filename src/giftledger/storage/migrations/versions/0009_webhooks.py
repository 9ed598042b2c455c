"""webhook endpoints and deliveries through the outbox (issue 19)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

(Reserved in the chain while the work is under way; it changes nothing yet.)
"""

from __future__ import annotations

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
