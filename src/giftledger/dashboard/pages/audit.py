"""Settings > Audit Trail (Store Owner only): every change and mutation attempt recorded for the account,
paged and filtered, as CSV too; the failed logins the throttle is counting; the moments card look-ups were
paused for guessing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from giftledger.dashboard import operations
from giftledger.dashboard.forms import day, whole_number
from giftledger.dashboard.web import Dashboard, Page, harden
from giftledger.domain.errors import ValidationFailed
from giftledger.domain.validation import Problems
from giftledger.services import audit
from giftledger.services.audit import OUTCOMES, TrailFilter

PAGE = "/settings/audit"
EXPORT = PAGE + "/audit-trail.csv"
FILTERS = ("operation", "outcome", "start", "end")
ACTORS = {"user": "Team member", "api_user": "API user", "system": "Operator", "anonymous": "Anonymous"}


def routes(dashboard: Dashboard) -> list[Route]:
    def _values(page: Page) -> dict[str, str]:
        params = page.request.query_params
        return {name: params.get(name, "") for name in FILTERS}

    def _filter(page: Page, values: dict[str, str]) -> TrailFilter:
        """The filter the query string asks for (the Store Owner only: asked before anything else)."""
        problems = Problems()
        start, end = day(values["start"], "start", problems), day(values["end"], "end", problems)
        return audit.trail_filter(
            page.principal,
            problems,
            operation=values["operation"],
            outcome=values["outcome"],
            start=start,
            end=end,
            time_zone=page.session.time_zone,  # days of the account's zone, as the page shows its times
        )

    def _query(values: dict[str, str], **extra: str | int) -> str:
        kept: dict[str, str | int] = {k: v for k, v in values.items() if v}
        kept.update(extra)
        return urlencode(kept)

    async def show(page: Page) -> Response:
        values = _values(page)
        number = whole_number(page.request.query_params.get("page", "1")) or 1
        trail, errors = None, {}
        try:
            trail = await audit.audit_trail(page.services, page.principal, _filter(page, values), page=number)
        except ValidationFailed as error:
            errors = error.fields
        return page.render(
            "audit.html",
            status=400 if errors else 200,
            trail=trail,
            errors=errors,
            values=values,
            outcomes=OUTCOMES,
            operations=operations.choices(),
            in_words=operations.in_words,
            actors=ACTORS,
            query=lambda **extra: _query(values, **extra),
            export=EXPORT + (f"?{_query(values)}" if _query(values) else ""),
            logins=await audit.login_failures(page.services, page.principal),
            window_minutes=page.services.settings.login_failure_window_seconds // 60,
            pauses=await audit.card_lookup_pauses(page.services, page.principal),
        )

    async def export(page: Page) -> Response:
        try:
            where = _filter(page, _values(page))
        except ValidationFailed:
            return await show(page)  # the same page, with the problems next to the filters
        lines = audit.export_spreadsheet_csv(page.services, page.principal, where)
        header = await anext(lines)  # the permission is checked here, before anything is sent

        async def body() -> AsyncIterator[bytes]:
            yield header.encode("utf-8")
            async for line in lines:
                yield line.encode("utf-8")

        response = StreamingResponse(
            body(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit-trail.csv"'},
        )
        return harden(response)

    p = dashboard.page
    return [
        Route(PAGE, p(show), methods=["GET"]),
        Route(EXPORT, p(export), methods=["GET"]),
    ]
