"""Reports: sales and redemptions per site (table and bar chart), outstanding balance, CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.charts import bar_chart
from giftledger.dashboard.forms import day
from giftledger.dashboard.web import Dashboard, Page, harden
from giftledger.domain.errors import ValidationFailed
from giftledger.domain.validation import Problems
from giftledger.services import reports

DEFAULT_DAYS = 30


def _today() -> date:
    return datetime.now(UTC).date()


def routes(dashboard: Dashboard) -> list[Route]:
    def _range(page: Page) -> tuple[date | None, date | None, dict[str, str]]:
        params = page.request.query_params
        today = _today()
        raw_start = params.get("start") or (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat()
        raw_end = params.get("end") or today.isoformat()
        problems = Problems()
        start, end = day(raw_start, "start", problems), day(raw_end, "end", problems)
        problems.raise_if_any()
        return start, end, {"start": raw_start, "end": raw_end}

    async def show(page: Page) -> Response:
        liability = await reports.outstanding_balance(page.services, page.principal)
        values: dict[str, str] = {
            "start": page.request.query_params.get("start", ""),
            "end": page.request.query_params.get("end", ""),
        }
        try:
            start, end, values = _range(page)
            report = await reports.site_report(page.services, page.principal, start, end)
        except ValidationFailed as error:
            return page.render(
                "reports.html",
                status=400,
                report=None,
                chart=None,
                liability=liability,
                errors=error.fields,
                values=values,
            )
        return page.render("reports.html", report=report, chart=bar_chart(report), liability=liability, values=values)

    async def export(page: Page) -> Response:
        start, end, _ = _range(page)
        period, rows = await reports.balance_adjustments(page.services, page.principal, start, end)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(reports.export_columns(period))
        writer.writerows(rows)
        filename = f"balance-adjustments-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"
        response = Response(
            buffer.getvalue().encode("utf-8"),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
        return harden(response)

    p = dashboard.page
    return [
        Route("/reports", p(show), methods=["GET"]),
        Route("/reports/balance-adjustments.csv", p(export), methods=["GET"]),
    ]
