"""kill -9 of `giftledger cards import` in the middle of a large file: the import is all or nothing (no card,
line item or import record of the file is left), and running it again imports the whole file once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from giftledger.services import card_import
from giftledger.services.context import Services, operator
from giftledger.storage.card_imports import CHUNK, card_imports
from giftledger.storage.tables import cards, line_items
from tests.safety.helpers import wait_for
from tests.support import SECRET, Demo, with_services

ROWS = CHUNK + 200  # two statements: the kill lands once the first has written its cards


def write_file(path: Path, rows: int) -> None:
    lines = ["card_number,pin,balance,discount,expiry_date"]
    lines += [f"CRASH{n:08d},{n % 10_000:04d},{10 + n % 50}.25,1,2029-01-31" for n in range(rows)]
    path.write_text("\n".join(lines) + "\n")


def counts(database_url: str, account_id: int) -> tuple[int, int, int, int]:
    async def work(services: Services) -> tuple[int, int, int, int]:
        async with services.db.transaction() as conn:

            async def count(table: object, *where: object) -> int:
                query = select(func.count()).select_from(table).where(*where)  # type: ignore[arg-type]
                return int((await conn.execute(query)).scalar_one())

            total = await conn.execute(
                select(func.coalesce(func.sum(cards.c.balance), 0)).where(
                    cards.c.account_id == account_id, cards.c.alias.is_not(None)
                )
            )
            return (
                await count(cards, cards.c.account_id == account_id, cards.c.alias.is_not(None)),
                await count(line_items, line_items.c.account_id == account_id),
                await count(card_imports, card_imports.c.account_id == account_id),
                int(total.scalar_one()),
            )

    result: tuple[int, int, int, int] = with_services(database_url, work)
    return result


def cards_issued(database_url: str) -> int:
    """How far the cards' id sequence has gone: it moves as rows are written, committed or not."""

    async def read() -> int:
        conn = await asyncpg.connect(make_url(database_url).set(drivername="postgresql").render_as_string(False))
        try:
            return int(await conn.fetchval("SELECT last_value FROM cards_id_seq"))
        finally:
            await conn.close()

    return asyncio.run(read())


def test_kill_9_during_an_import_leaves_nothing_and_the_rerun_imports_it_all_once(
    database_url: str, account: Demo, tmp_path: Path
) -> None:
    path = tmp_path / "cards.csv"
    write_file(path, ROWS)
    before = counts(database_url, account.account_id)
    assert before == (0, 0, 0, 0)
    started_at = cards_issued(database_url)
    env = {
        **os.environ,
        "GIFTLEDGER_ENV": "test",
        "GIFTLEDGER_SECRET_KEY": SECRET,
        "GIFTLEDGER_DATABASE_URL": database_url,
    }
    command = [
        sys.executable,
        "-m",
        "giftledger",
        "cards",
        "import",
        str(path),
        "--account-id",
        str(account.account_id),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # the first statement has written its cards (uncommitted) and the next is under way
        wait_for(lambda: cards_issued(database_url) >= started_at + CHUNK, 60, "the import to be half way")
        process.send_signal(signal.SIGKILL)
        assert process.wait(10) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
    assert counts(database_url, account.account_id) == before

    data = path.read_bytes()
    expected_total = sum((10 + n % 50) * 100 + 25 for n in range(ROWS))
    for attempt in range(2):
        report = with_services(
            database_url,
            lambda s: card_import.import_cards(s, operator(account.account_id), data, "cards.csv", dry_run=False),
        )
        assert (report.imported, report.earlier is not None) == ((True, False) if attempt == 0 else (False, True))
        assert counts(database_url, account.account_id) == (ROWS, ROWS, 1, expected_total)
