"""site names and references unique within an account

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Two live (not deleted) sites of one account may no longer share a name (ignoring case) or a non-empty
reference: two "Soho" rows in a report, or "Delete Soho?", cannot be told apart. Deleted sites keep their
names in history and do not count.

Data written before this revision may already hold such twins. The migration does not fail on them: the
earliest site (lowest id) keeps its name and reference, and each later twin gets the first free suffix
" (2)", " (3)", ... (its name still fits its column). A merchant sees the renamed site in Site Settings and
may rename it; the site's id, history and EPOS references (site mapping) are unchanged.
"""

from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NAME_LENGTH = 200
REFERENCE_LENGTH = 100


def _free(value: str, taken: set[str], length: int, fold: bool) -> str:
    """`value` with the first suffix " (n)" whose result (case-folded when `fold`) is not in `taken`."""
    n = 2
    while True:
        suffix = f" ({n})"
        candidate = value[: length - len(suffix)] + suffix
        if (candidate.lower() if fold else candidate) not in taken:
            return candidate
        n += 1


def _rename_twins() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, account_id, name, reference FROM sites WHERE deleted_at IS NULL ORDER BY id")
    ).all()
    names: dict[int, set[str]] = defaultdict(set)
    references: dict[int, set[str]] = defaultdict(set)
    for row in rows:  # every live value is taken before any twin picks a new one
        names[row.account_id].add(row.name.lower())
        if row.reference:
            references[row.account_id].add(row.reference)
    seen_names: dict[int, set[str]] = defaultdict(set)
    seen_references: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        name, reference = row.name, row.reference
        if name.lower() in seen_names[row.account_id]:
            name = _free(name, names[row.account_id], NAME_LENGTH, fold=True)
            names[row.account_id].add(name.lower())
        seen_names[row.account_id].add(name.lower())
        if reference and reference in seen_references[row.account_id]:
            reference = _free(reference, references[row.account_id], REFERENCE_LENGTH, fold=False)
            references[row.account_id].add(reference)
        seen_references[row.account_id].add(reference)
        if (name, reference) != (row.name, row.reference):
            bind.execute(
                sa.text("UPDATE sites SET name = :name, reference = :reference WHERE id = :id"),
                {"name": name, "reference": reference, "id": row.id},
            )


def upgrade() -> None:
    op.execute("LOCK TABLE sites IN SHARE ROW EXCLUSIVE MODE")  # no site added or renamed meanwhile
    _rename_twins()
    op.execute("CREATE UNIQUE INDEX uq_sites_account_name ON sites (account_id, lower(name)) WHERE deleted_at IS NULL")
    op.execute(
        "CREATE UNIQUE INDEX uq_sites_account_reference ON sites (account_id, reference) "
        "WHERE deleted_at IS NULL AND reference <> ''"
    )


def downgrade() -> None:
    op.execute("DROP INDEX uq_sites_account_reference, uq_sites_account_name")
