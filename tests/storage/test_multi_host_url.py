"""A URL naming a primary and its standbys, in libpq's form or SQLAlchemy's, reaches asyncpg as a list of hosts
with `target_session_attrs`; the pooler setting takes only the values it knows."""

from __future__ import annotations

import pytest

from giftledger.config import ConfigurationError, load_settings
from giftledger.storage.database import Database, driver_url
from tests.support import SECRET


@pytest.mark.parametrize(
    ("given", "driven"),
    [
        (
            "postgresql://gl:pw@db1:5432,db2:5433/giftledger?target_session_attrs=read-write",
            "postgresql+asyncpg://gl:pw@/giftledger?host=db1%3A5432&host=db2%3A5433&target_session_attrs=read-write",
        ),
        ("postgres://gl@db1,db2/giftledger", "postgresql+asyncpg://gl@/giftledger?host=db1%3A5432&host=db2%3A5432"),
        (
            "postgresql://gl@/giftledger?host=db1:5432&host=db2:5433",
            "postgresql+asyncpg://gl@/giftledger?host=db1%3A5432&host=db2%3A5433",
        ),
        ("postgresql://gl@db1:6432/giftledger", "postgresql+asyncpg://gl@db1:6432/giftledger"),
    ],
)
def test_a_multi_host_url_names_every_host_with_its_port(given: str, driven: str) -> None:
    assert driver_url(given) == driven


async def test_asyncpg_is_handed_the_hosts_ports_and_session_attributes() -> None:
    db = Database("postgresql://gl@db1:5432,db2:5433/giftledger?target_session_attrs=read-write")
    try:
        _, arguments = db.engine.dialect.create_connect_args(db.engine.url)
    finally:
        await db.dispose()
    assert (arguments["host"], arguments["port"], arguments["target_session_attrs"]) == (
        ["db1", "db2"],
        [5432, 5433],
        "read-write",
    )


def test_the_pooler_setting_takes_none_or_pgbouncer_only() -> None:
    env = {"GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": SECRET}
    assert load_settings(env).database_pooler == "none"
    assert load_settings({**env, "GIFTLEDGER_DATABASE_POOLER": "PgBouncer"}).database_pooler == "pgbouncer"
    with pytest.raises(ConfigurationError, match="GIFTLEDGER_DATABASE_POOLER must be none or pgbouncer"):
        load_settings({**env, "GIFTLEDGER_DATABASE_POOLER": "pgpool"})
