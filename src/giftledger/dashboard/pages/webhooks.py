"""Settings > Webhooks (Store Owner only: `integration.manage`): the account's endpoints, adding one (its secret
shown once), and each endpoint's page: its state (and why it was disabled), "Send test event", "Rotate secret",
disable or enable, and its delivery log with "Redeliver" (services/webhooks.py; docs/webhooks.md)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.forms import whole_number
from giftledger.dashboard.web import Dashboard, Page
from giftledger.domain.errors import ValidationFailed
from giftledger.domain.webhooks import EVENTS
from giftledger.services import webhooks

PAGE = "/settings/webhooks"


def routes(dashboard: Dashboard) -> list[Route]:
    async def _list(
        page: Page,
        *,
        status: int = 200,
        errors: dict[str, list[str]] | None = None,
        url: str = "",
        chosen: list[str] | None = None,
    ) -> Response:
        rows = await webhooks.endpoints(page.services, page.principal)
        return page.render(
            "webhooks.html",
            status=status,
            endpoints=rows,
            events=EVENTS,
            errors=errors or {},
            values={"url": url},
            chosen=chosen or [],
        )

    async def show_list(page: Page) -> Response:
        return await _list(page)

    async def add(page: Page) -> Response:
        url = page.field("url")
        chosen = page.form.getlist("event") if page.form is not None else []
        events = [e for e in chosen if isinstance(e, str)]
        page.note(url=url, events=", ".join(events))
        try:
            created = await webhooks.add_endpoint(page.services, page.principal, url, events)
        except ValidationFailed as error:
            return await _list(page, status=400, errors=error.fields, url=url, chosen=events)
        page.note(endpoint_id=created.id)  # never its secret
        return page.render("webhook_secret.html", created=created, rotated=False)

    def _endpoint_id(page: Page) -> int:
        endpoint_id = page.path_int("endpoint_id")
        page.note(endpoint_id=endpoint_id)
        return endpoint_id

    async def show(page: Page) -> Response:
        log = await webhooks.endpoint_log(page.services, page.principal, page.path_int("endpoint_id"))
        return page.render("webhook.html", endpoint=log.endpoint, deliveries=log.deliveries, events=EVENTS)

    async def send_test(page: Page) -> Response:
        endpoint_id = _endpoint_id(page)
        page.note(event_id=await webhooks.send_test_event(page.services, page.principal, endpoint_id))
        return page.redirect(f"{PAGE}/{endpoint_id}", "webhook-test-queued")

    async def rotate(page: Page) -> Response:
        endpoint_id = _endpoint_id(page)
        rotated = await webhooks.rotate_secret(page.services, page.principal, endpoint_id)
        return page.render("webhook_secret.html", created=rotated, rotated=True)

    async def disable(page: Page) -> Response:
        endpoint_id = _endpoint_id(page)
        await webhooks.set_enabled(page.services, page.principal, endpoint_id, False)
        return page.redirect(f"{PAGE}/{endpoint_id}", "webhook-disabled")

    async def enable(page: Page) -> Response:
        endpoint_id = _endpoint_id(page)
        await webhooks.set_enabled(page.services, page.principal, endpoint_id, True)
        return page.redirect(f"{PAGE}/{endpoint_id}", "webhook-enabled")

    async def redeliver(page: Page) -> Response:
        endpoint_id = _endpoint_id(page)
        delivery_id = whole_number(page.field("delivery_id")) or 0  # 0: none (refused by the service, in its turn)
        page.note(delivery_id=delivery_id)
        await webhooks.redeliver(page.services, page.principal, endpoint_id, delivery_id)
        return page.redirect(f"{PAGE}/{endpoint_id}", "webhook-redelivered")

    p, c = dashboard.page, dashboard.change
    one = PAGE + "/{endpoint_id}"
    return [
        Route(PAGE, p(show_list), methods=["GET"]),
        Route(PAGE, c("dashboard.webhook.add", add), methods=["POST"]),
        Route(one, p(show), methods=["GET"]),
        Route(one + "/test", c("dashboard.webhook.test", send_test), methods=["POST"]),
        Route(one + "/rotate", c("dashboard.webhook.rotate", rotate), methods=["POST"]),
        Route(one + "/disable", c("dashboard.webhook.disable", disable), methods=["POST"]),
        Route(one + "/enable", c("dashboard.webhook.enable", enable), methods=["POST"]),
        Route(one + "/redeliver", c("dashboard.webhook.redeliver", redeliver), methods=["POST"]),
    ]
