"""Data: Exports (queued, with their progress and a download when ready), the liability at a moment, the daily
reconciliation per site and POS (printable, and as CSV) and sold, redeemed and outstanding over time (SVG)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from starlette.responses import FileResponse, Response
from starlette.routing import Route

from giftledger.dashboard.charts import line_chart
from giftledger.dashboard.forms import day
from giftledger.dashboard.web import Dashboard, Page, harden
from giftledger.domain.errors import ValidationFailed
from giftledger.domain.time_zones import local
from giftledger.domain.validation import Problems
from giftledger.services import exports, finance
from giftledger.services.exports import ExportKind

EXPORTS = "/data/exports"
LIABILITY = "/data/liability"
RECONCILIATION = "/data/reconciliation"
TRENDS = "/data/trends"
DEFAULT_DAYS = 30
REFRESH_SECONDS = 3
MEASURES = (("sold", "Value sold"), ("redeemed", "Value redeemed"), ("outstanding", "Outstanding balance"))


def _local_today(time_zone: str) -> date:
    return local(datetime.now(UTC), time_zone).date()


def _dates(page: Page, time_zone: str, days: int = DEFAULT_DAYS) -> tuple[date | None, date | None, dict[str, str]]:
    """The page's `start` and `end` (local dates; the last `days` days by default), or `ValidationFailed`."""
    params = page.request.query_params
    today = _local_today(time_zone)
    raw_start = params.get("start") or (today - timedelta(days=days - 1)).isoformat()
    raw_end = params.get("end") or today.isoformat()
    problems = Problems()
    start, end = day(raw_start, "start", problems), day(raw_end, "end", problems)
    problems.raise_if_any()
    return start, end, {"start": raw_start, "end": raw_end}


def _csv(columns: list[str] | tuple[str, ...], rows: list[list[str]], file_name: str) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return harden(
        Response(
            buffer.getvalue().encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{file_name}"'},
        )
    )


def routes(dashboard: Dashboard) -> list[Route]:
    async def exports_page(page: Page, *, status: int = 200, errors: dict[str, list[str]] | None = None,
                           values: dict[str, str] | None = None) -> Response:  # fmt: skip
        time_zone = await exports.account_zone(page.services, page.principal)
        jobs = await exports.export_jobs(page.services, page.principal)
        today = _local_today(time_zone)
        shown = values or {
            "kind": ExportKind.BALANCE_ADJUSTMENTS.value,
            "start": (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
            "end": today.isoformat(),
            "at": local(datetime.now(UTC), time_zone).strftime("%Y-%m-%dT%H:%M"),
        }
        busy = any(job.state in ("queued", "running") for job in jobs)
        response = page.render(
            "exports.html",
            status=status,
            kinds=list(ExportKind),
            jobs=jobs,
            busy=busy,
            retention_days=page.services.settings.export_retention_days,
            time_zone=time_zone,
            local_time=lambda moment: local(moment, time_zone).strftime("%Y-%m-%d %H:%M:%S") if moment else "",
            errors=errors or {},
            values=shown,
        )
        if busy:  # the page reloads itself while an export is being prepared (no script: an HTTP header)
            response.headers["Refresh"] = str(REFRESH_SECONDS)
        return response

    async def show_exports(page: Page) -> Response:
        return await exports_page(page)

    async def queue(page: Page) -> Response:
        values = {name: page.field(name) for name in ("kind", "start", "end", "at")}
        page.note(kind=values["kind"])
        time_zone = await exports.account_zone(page.services, page.principal)
        problems = Problems()
        liability = values["kind"] == ExportKind.LIABILITY.value
        start = None if liability else day(values["start"], "start", problems)
        end = None if liability else day(values["end"], "end", problems)
        moment = exports.parse_moment(values["at"], time_zone) if liability else None
        if liability and values["at"].strip() and moment is None:
            problems.add("at", exports.NOT_A_MOMENT)
        try:
            request = exports.check_request(values["kind"], start, end, moment)
            problems.raise_if_any()
        except ValidationFailed as error:
            # a date that could not be read says so, rather than that it is missing
            fields = {**error.fields, **(problems.error().fields if problems else {})}
            page.refused(error)
            return await exports_page(page, status=400, errors=fields, values=values)
        job_id = await exports.queue_export(page.services, page.principal, request)
        page.note(export_id=job_id)
        return page.redirect(f"{EXPORTS}#export-{job_id}")

    async def download(page: Page) -> Response:
        """Audited like a form (`dashboard.export.download`): the file holds cardholders' names and emails."""
        job_id = page.path_int("job_id")
        page.note(job_id=job_id)
        path, file_name = await exports.export_file(page.services, page.principal, job_id)
        page.note(file=file_name)
        return harden(FileResponse(path, media_type="text/csv; charset=utf-8", filename=file_name))

    async def liability(page: Page) -> Response:
        time_zone = await exports.account_zone(page.services, page.principal)
        given = page.request.query_params.get("at")
        now = datetime.now(UTC)
        raw = given or local(now, time_zone).strftime("%Y-%m-%dT%H:%M")
        moment = exports.parse_moment(raw, time_zone) if given else now  # by default: now, to the microsecond
        if moment is None:
            errors = {"at": [exports.NOT_A_MOMENT]}
            return page.render("liability.html", status=400, report=None, errors=errors, values={"at": raw},
                               time_zone=time_zone)  # fmt: skip
        report = await finance.liability(page.services, page.principal, moment)
        return page.render("liability.html", report=report, values={"at": raw}, time_zone=time_zone)

    async def reconciliation(page: Page) -> Response:
        time_zone = await exports.account_zone(page.services, page.principal)
        values = {k: page.request.query_params.get(k, "") for k in ("start", "end")}
        try:
            start, end, values = _dates(page, time_zone, days=1)
            report = await finance.reconciliation(page.services, page.principal, start, end)
        except ValidationFailed as error:
            return page.render("reconciliation.html", status=400, report=None, errors=error.fields, values=values,
                               time_zone=time_zone)  # fmt: skip
        return page.render("reconciliation.html", report=report, values=values, time_zone=time_zone,
                           types=finance.Z_TYPES)  # fmt: skip

    async def reconciliation_csv(page: Page) -> Response:
        time_zone = await exports.account_zone(page.services, page.principal)
        start, end, _ = _dates(page, time_zone, days=1)
        report = await finance.reconciliation(page.services, page.principal, start, end)
        name = f"reconciliation-{report.start.isoformat()}-to-{report.end.isoformat()}.csv"
        columns = [f"Date ({time_zone})", *finance.RECONCILIATION_COLUMNS[1:]]
        return _csv(columns, finance.reconciliation_rows(report), name)

    async def trends(page: Page) -> Response:
        time_zone = await exports.account_zone(page.services, page.principal)
        params = page.request.query_params
        interval = params.get("interval") or "day"
        by = params.get("by") or "site"
        values = {"start": params.get("start", ""), "end": params.get("end", ""), "interval": interval, "by": by}
        try:
            problems = Problems()
            if interval not in ("day", "week"):
                problems.add("interval", "Choose day or week.")
            problems.raise_if_any()
            start, end, dates = _dates(page, time_zone, days=DEFAULT_DAYS if interval == "day" else 7 * 12)
            values.update(dates)
            report = await finance.trend(page.services, page.principal, start, end, weekly=interval == "week",
                                         dimension=by)  # fmt: skip
        except ValidationFailed as error:
            return page.render("trends.html", status=400, report=None, charts=[], errors=error.fields,
                               values=values, dimensions=finance.DIMENSIONS, time_zone=time_zone)  # fmt: skip
        charts = [(label, line_chart(report, measure, label)) for measure, label in MEASURES]
        return page.render("trends.html", report=report, charts=charts, values=values,
                           dimensions=finance.DIMENSIONS, time_zone=time_zone)  # fmt: skip

    p = dashboard.page
    return [
        Route(EXPORTS, p(show_exports), methods=["GET"]),
        Route(EXPORTS, dashboard.change("dashboard.export.queue", queue), methods=["POST"]),
        Route(EXPORTS + "/{job_id}/download", dashboard.change("dashboard.export.download", download), methods=["GET"]),
        Route(LIABILITY, p(liability), methods=["GET"]),
        Route(RECONCILIATION, p(reconciliation), methods=["GET"]),
        Route(RECONCILIATION + ".csv", p(reconciliation_csv), methods=["GET"]),
        Route(TRENDS, p(trends), methods=["GET"]),
    ]
