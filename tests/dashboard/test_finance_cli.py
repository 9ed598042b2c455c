"""`giftledger export` at the command line (and its refusals, which write nothing); the read replica that
reports and exports read from when GIFTLEDGER_READ_DATABASE_URL is set; and Data in the dashboard: an export
queued, prepared and downloaded, the liability, reconciliation and trends pages."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from giftledger.app import build_services, create_app
from giftledger.cli import exports as exports_cli
from giftledger.cli.main import cli
from giftledger.config import load_settings
from giftledger.domain.ledger import LineItemType
from giftledger.domain.permissions import Role
from giftledger.services import exports, finance, reports
from giftledger.services.context import Principal, Services, operator
from giftledger.storage.exports import export_jobs
from tests.dashboard.helpers import person, redeem, sell, till
from tests.dashboard.test_audit_trail import detail, records
from tests.dashboard.test_finance_exports import AROUND, ZONE, story
from tests.dashboard.test_http import owner_web
from tests.dashboard.web import field_error, rows
from tests.support import SECRET, Demo, fresh_database, new_demo, with_services
from tests.support import test_settings as settings_for


def export(url: str, *args: str) -> tuple[int, str]:
    exports_cli.register(cli)
    env = {"GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": SECRET}
    result = CliRunner(env=env).invoke(cli, ["--database-url", url, "export", *args], obj={})
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def sold(database_url: str) -> Demo:
    """An account with one card sold for £25 and £7.50 of it redeemed."""
    demo = new_demo(database_url)

    async def work(services: Services) -> None:
        pos = await till(services, demo)
        await sell(services, pos, demo, demo.card_references[0], 2500)
        await redeem(services, pos, demo, demo.card_references[0], 750)

    with_services(database_url, work)
    return demo


def test_export_writes_the_csv(database_url: str, sold: Demo, tmp_path: Path) -> None:
    output = tmp_path / "tx.csv"
    account = str(sold.account_id)
    code, text = export(database_url, "transactions", "--account-id", account, "--from", "2000-01-01",
                        "--to", "2100-12-31", "--output", str(output))  # fmt: skip
    assert code == 0, text
    assert "2 row(s) written" in text
    table = list(csv.reader(output.open(newline="")))
    assert table[0][12] == "Transaction Date (Europe/London)"
    assert [(row[0], row[4], row[9], row[11]) for row in table[1:]] == [
        ("External", "25.00", sold.card_references[0], "Sale"),
        ("Gift Card", "-7.50", sold.card_references[0], "Redemption"),
    ]
    at = tmp_path / "liability.csv"
    code, text = export(database_url, "liability", "--account-id", account, "--at", "2100-01-01 00:00",
                        "--output", str(at))  # fmt: skip
    assert code == 0, text
    table = list(csv.reader(at.open(newline="")))
    assert table[0][8] == "Value at 2100-01-01 00:00 (Europe/London)"
    assert [row[1:4] + row[8:] for row in table[1:]] == [
        [sold.card_references[0], "In-Store Gift", "Soho", "17.50", "17.50", "0.00", "0.00"]
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["coupons", "--from", "2026-01-01", "--to", "2026-01-02"], 2, "Invalid value for 'KIND'"),
        (["cards", "--from", "2026-13-01", "--to", "2026-01-02"], 2, "'2026-13-01' is not a date"),
        (["cards", "--from", "2026-01-02", "--to", "2026-01-01"], 2, "--to: The end date must not be before"),
        (["cards", "--to", "2026-01-01"], 2, "--from: This field is required"),
        (["orders", "--at", "2026-01-01 10:00"], 2, "--at is for the liability only"),
        (["liability", "--from", "2026-01-01", "--to", "2026-01-02"], 2, "give --at, not --from/--to"),
        (["liability"], 2, "--at: The liability is as of a moment"),
        (["liability", "--at", "noon"], 2, "Enter a date and time as YYYY-MM-DD HH:MM."),
    ],
)
def test_refused_exports_write_nothing(
    database_url: str, sold: Demo, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    output = tmp_path / "out.csv"
    found, text = export(database_url, *args, "--account-id", str(sold.account_id), "--output", str(output))
    assert (found, message in text) == (code, True), text
    assert list(tmp_path.iterdir()) == []


def test_unknown_account_and_missing_folder_write_nothing(database_url: str, tmp_path: Path) -> None:
    output = tmp_path / "out.csv"
    code, text = export(database_url, "cards", "--account-id", "987654321", "--from", "2026-01-01",
                        "--to", "2026-01-02", "--output", str(output))  # fmt: skip
    assert (code, "There is no account 987654321." in text) == (1, True), text
    code, text = export(database_url, "cards", "--account-id", "1", "--from", "2026-01-01", "--to", "2026-01-02",
                        "--output", str(tmp_path / "nowhere" / "out.csv"))  # fmt: skip
    assert (code, "is not a folder: nothing was written" in text) == (1, True), text
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def replica(pg_base_url: str) -> Iterator[str]:
    """Another database standing in for a read replica: migrated, and holding none of the primary's ledger."""
    with fresh_database(pg_base_url) as url:
        yield url


def test_the_read_replica_setting(replica: str) -> None:
    settings = load_settings({"GIFTLEDGER_READ_DATABASE_URL": replica, "GIFTLEDGER_SECRET_KEY": SECRET * 2})
    assert settings.read_database_url == replica
    assert load_settings({"GIFTLEDGER_SECRET_KEY": SECRET * 2}).read_database_url is None


async def test_reports_and_exports_read_the_replica_and_tills_write_the_primary(
    database_url: str, replica: str, demo: Demo, tmp_path: Path
) -> None:
    split = build_services(settings_for(database_url, read_database_url=replica))
    primary_only = build_services(settings_for(database_url))
    try:
        pos = await till(split, demo)  # a till with the replica configured sells on the primary
        await sell(split, pos, demo, demo.card_references[0], 1200)
        owner = await person(split, demo, Role.STORE_OWNER)
        request = exports.check_request("transactions", *finance_days(), None)
        assert await _rows(primary_only, owner, request, tmp_path / "primary.csv") == 1
        assert await _rows(split, owner, request, tmp_path / "replica.csv") == 0  # the replica has no such rows
        at = exports.check_request("liability", None, None, exports.parse_moment("2100-01-01 00:00", "UTC"))
        assert await _rows(primary_only, owner, at, tmp_path / "primary-liability.csv") == 1
        assert await _rows(split, owner, at, tmp_path / "replica-liability.csv") == 0
        moment = exports.parse_moment("2100-01-01 00:00", "UTC")
        assert (await finance.liability(primary_only, owner, moment)).total("value") == 1200
        assert (await finance.liability(split, owner, moment)).groups == []
        assert (await finance.reconciliation(split, owner, *finance_days())).lines == []
        assert (await finance.reconciliation(primary_only, owner, *finance_days())).total(LineItemType.SALE) == (
            1,
            1200,
        )
        assert (await finance.trend(split, owner, *finance_days(), weekly=False, dimension="site")).series == []
        # the Reports page reads there too
        assert (await reports.outstanding_balance(primary_only, owner)).balance == 1200
        assert (await reports.outstanding_balance(split, owner)).balance == 0
        assert (await reports.site_report(primary_only, owner, *finance_days())).total.value_sold == 1200
        assert (await reports.site_report(split, owner, *finance_days())).total.value_sold == 0
        assert (await reports.balance_adjustments(split, owner, *finance_days()))[1] == []
    finally:
        await split.dispose()
        await primary_only.dispose()


def finance_days() -> tuple[date, date]:
    """Yesterday to tomorrow (a range around today, whatever the clock says)."""
    today = datetime.now(UTC).date()
    return today - timedelta(days=1), today + timedelta(days=1)


async def _rows(services: Services, principal: Principal, request: exports.ExportRequest, path: Path) -> int:
    return await exports.write_export(await exports.open_export(services, principal, request), path)


async def test_dashboard_queues_an_export_shows_its_progress_and_serves_it(replica: str, tmp_path: Path) -> None:
    """On the module's other database (after the replica's tests, which need it empty of their accounts), where
    no live server of another test runs an exporter that would claim the exports queued here."""
    database_url = replica
    demo = await asyncio.to_thread(new_demo, database_url)
    app = create_app(settings_for(database_url, data_dir=tmp_path))
    services: Services = app.state.services
    try:
        s = await story(services, demo)
        web = await owner_web(app, services, demo, Role.FINANCIAL_MANAGER)
        page = await web.get("/data/exports")
        assert page.status_code == 200 and "No exports yet." in page.text
        assert "From (America/New_York)" in page.text and page.headers.get("refresh") is None

        async with unchanged(services, demo.account_id):
            refused = await web.post("/data/exports", {"kind": "cards", "start": "2026-02-30", "end": ""})
            assert refused.status_code == 400
            assert field_error(refused.text, "start") == "Enter a date as YYYY-MM-DD."
            assert field_error(refused.text, "end") == "This field is required"
            refused = await web.post("/data/exports", {"kind": "liability", "at": "yesterday"})
            assert field_error(refused.text, "at") == exports.NOT_A_MOMENT
            refused = await web.post(
                "/data/exports", {"kind": "everything", "start": "2026-01-01", "end": "2026-01-02"}
            )
            assert refused.status_code == 400 and field_error(refused.text, "kind") is not None

        start, end = (d.isoformat() for d in AROUND)
        queued = await web.post("/data/exports", {"kind": "balance-adjustments", "start": start, "end": end})
        assert queued.status_code == 303
        job_id = int(queued.headers["location"].rsplit("-", 1)[1])
        waiting = await web.get("/data/exports")
        assert waiting.headers["refresh"] == "3"
        assert rows(waiting.text, "exports")[0][3] == "Queued"

        done = await exports.run_one(services)
        assert done is not None and done.id == job_id
        assert await exports.run_one(services) is None
        ready = await web.get("/data/exports")
        assert ready.headers.get("refresh") is None
        assert rows(ready.text, "exports")[0][3:] == ["Ready", "7", "Download CSV"]
        download = await web.get(f"/data/exports/{job_id}/download")
        assert download.status_code == 200
        assert download.headers["content-security-policy"].startswith("default-src 'none'")
        file_name = f"balance-adjustments-{start}-to-{end}.csv"
        assert download.headers["content-disposition"] == f'attachment; filename="{file_name}"'
        table = list(csv.reader(io.StringIO(download.text)))
        assert table[0] == exports.balance_adjustment_columns(ZONE)
        assert [row[1] for row in table[1:]] == [str(i.id) for i in (s.sale1, s.redemption, s.reversal, s.sale2,
                                                                     s.outbound, s.inbound, s.manual)]  # fmt: skip

        # another account's export is nobody else's
        other = await owner_web(app, services, await asyncio.to_thread(new_demo, database_url))
        assert (await other.get(f"/data/exports/{job_id}/download")).status_code == 404

        liability = await web.get(f"/data/liability?at={end}T00:00")  # tomorrow's midnight in New York
        assert liability.status_code == 200
        assert rows(liability.text, "liability") == [
            ["In-Store Gift", "Soho", "2", "£29.00", "£24.05", "£4.95", "£0.00", "£0.00"]
        ]
        assert (await web.get("/data/liability?at=soon")).status_code == 400
        now = await web.get("/data/liability")  # now, to the microsecond: the sales of this very minute count
        assert rows(now.text, "liability")[0][2:4] == ["2", "£29.00"]

        z = await web.get(f"/data/reconciliation?start={start}&end={end}")
        assert rows(z.text, "reconciliation") == [
            [s.sale1.local[:10], "Soho", "PointOne", "2", "£30.00", "1", "£4.00", "0", "£0.00", "1", "£4.00"]
        ]
        z_csv = await web.get(f"/data/reconciliation.csv?start={start}&end={end}")
        assert list(csv.reader(io.StringIO(z_csv.text)))[1] == [
            s.sale1.local[:10], "Soho", "PointOne", "2", "30.00", "1", "4.00", "0", "0.00", "1", "4.00"
        ]  # fmt: skip
        assert (await web.get(f"/data/reconciliation?start={end}&end={start}")).status_code == 400

        trend = await web.get(f"/data/trends?start={start}&end={end}&interval=day&by=pos")
        assert trend.status_code == 200 and trend.text.count("<svg") == 3 and "<script" not in trend.text
        figures = rows(trend.text, "trend-figures")
        today = [row for row in figures if row[0] == s.sale1.local[:10]]
        assert today == [
            [s.sale1.local[:10], "Dashboard (no POS)", "£0.00", "£0.00", "-£1.00"],
            [s.sale1.local[:10], "PointOne", "£30.00", "£0.00", "£30.00"],
        ]
        weekly = await web.get(f"/data/trends?start={start}&end={end}&interval=week&by=product")
        assert weekly.status_code == 200 and "In-Store Gift" in weekly.text
        assert (await web.get("/data/trends?by=colour")).status_code == 400
        staff = await owner_web(app, services, demo, Role.FOH_STAFF)
        for path in ("/data/exports", "/data/liability", "/data/reconciliation", "/data/trends"):
            assert (await staff.get(path)).status_code == 403
    finally:
        await services.dispose()


@asynccontextmanager
async def unchanged(services: Services, account_id: int) -> AsyncIterator[None]:
    """Nothing queued: the account's export jobs are the same after the block."""
    before = await exports.export_jobs(services, operator(account_id))
    yield
    assert await exports.export_jobs(services, operator(account_id)) == before


def test_an_exports_file_is_deleted_after_its_retention(pg_base_url: str, tmp_path: Path) -> None:
    """A queued export's file is kept `export_retention_days` (here 7) after it was written, then deleted by the
    exporter's sweep: the page says it expired, and its download says so (404). One written since is kept."""
    with fresh_database(pg_base_url) as database_url:  # its own: no other test's exports to sweep
        asyncio.run(_retention(database_url, tmp_path))


async def _retention(database_url: str, tmp_path: Path) -> None:
    demo = await asyncio.to_thread(new_demo, database_url)
    app = create_app(settings_for(database_url, data_dir=tmp_path))
    services: Services = app.state.services
    try:
        web = await owner_web(app, services, demo, Role.FINANCIAL_MANAGER)
        start, end = (d.isoformat() for d in AROUND)
        jobs = []
        for kind in ("cards", "orders"):
            queued = await web.post("/data/exports", {"kind": kind, "start": start, "end": end})
            jobs.append(int(queued.headers["location"].rsplit("-", 1)[1]))
            assert (await exports.run_one(services)) is not None
        old, new = jobs
        files = sorted(p.name for p in (tmp_path / "exports" / str(demo.account_id)).iterdir())
        assert files == [f"{old}-cards-{start}-to-{end}.csv", f"{new}-orders-{start}-to-{end}.csv"]
        page = await web.get("/data/exports")
        assert "can be downloaded for 7 days after it is ready" in page.text

        async with services.db.transaction() as conn:  # the cards export was written 7 days and a minute ago
            await conn.execute(
                update(export_jobs)
                .where(export_jobs.c.id == old)
                .values(finished_at=datetime.now(UTC) - timedelta(days=7, minutes=1))
            )
        assert await exports.remove_expired(services, datetime.now(UTC)) == 1
        assert await exports.remove_expired(services, datetime.now(UTC)) == 0  # nothing twice
        files = sorted(p.name for p in (tmp_path / "exports" / str(demo.account_id)).iterdir())
        assert files == [f"{new}-orders-{start}-to-{end}.csv"]
        shown = {row[0]: row[3:] for row in rows((await web.get("/data/exports")).text, "exports")}
        assert shown == {
            "Orders": ["Ready", "0", "Download CSV"],
            "Cards": ["Expired: its file was deleted 7 days after it was written", "0", ""],
        }
        gone = await web.get(f"/data/exports/{old}/download")
        assert gone.status_code == 404
        assert "This export has expired (files are kept for 7 days): export it again." in gone.text
        assert (await web.get(f"/data/exports/{new}/download")).status_code == 200

        # each download is in the audit trail, the refused one too (the file holds cardholders' details)
        downloads = [
            (e.operation, e.outcome, e.error_code, e.actor_kind, detail(e))
            for e in await records(services, demo.account_id)
            if e.operation == "dashboard.export.download"
        ]
        assert downloads == [
            ("dashboard.export.download", "refused", "NOT_FOUND", "user", {"job_id": old}),
            (
                "dashboard.export.download",
                "accepted",
                None,
                "user",
                {"job_id": new, "file": f"orders-{start}-to-{end}.csv"},
            ),
        ]
    finally:
        await services.dispose()
