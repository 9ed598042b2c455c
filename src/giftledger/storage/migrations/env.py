"""Alembic environment: migrations always run on a connection handed over by giftledger.storage.migrate."""

from __future__ import annotations

from alembic import context

from giftledger.storage.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
