"""What the stand-alone benches (card_import.py, export_stream.py, metrics_scrape.py) share: the PostgreSQL they
run on, and a new account in it."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from giftledger.app import build_services  # noqa: E402
from giftledger.config import Settings  # noqa: E402
from giftledger.services import setup  # noqa: E402
from giftledger.storage import migrate  # noqa: E402
from giftledger.storage.embedded import embedded_server  # noqa: E402

SECRET = "bench-secret-key-" + "x" * 40


@contextmanager
def postgres() -> Iterator[str]:
    """The server named by TEST_DATABASE_URL, or else an embedded one started for the run and removed after."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    directory = Path(tempfile.mkdtemp(prefix="giftledger-bench-pg-"))
    try:
        with embedded_server(directory) as url:
            yield url
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def new_account(database_url: str, name: str) -> int:
    """The database migrated, and a new account named `name` and a random suffix in it: its id."""
    services = build_services(Settings(database_url=database_url, secret_key=SECRET, environment="test"))
    try:
        await migrate.upgrade(services.db.engine)
        return await setup.create_account(services, f"{name} {uuid.uuid4().hex[:6]}")
    finally:
        await services.db.dispose()
