"""Webhooks' use cases: an account's endpoints (Store Owner only: `integration.manage`), and `queue_event`, which
every use case that causes an event calls in its own unit of work (the event exists if, and only if, the
change commits). A till's redemption or top-up writes its `card.balance_adjusted` event in its own statement
(storage/webhooks.py `balance_event`); so does every other balance movement (storage/ledger.py).

The secret is shown once, when an endpoint is added or its secret rotated; it is kept as it is (it must be, to
sign each delivery), never shown again. A rotation keeps the previous secret for `ROTATION_OVERLAP`: deliveries
carry its signature too, in `Toggle-Signature-Previous` (outbound/webhooks.py)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from giftledger.domain import webhooks as rules
from giftledger.domain.errors import Conflict, NotFound, ValidationFailed
from giftledger.domain.permissions import Permission
from giftledger.services.context import Principal, Services
from giftledger.storage.clock import utcnow
from giftledger.storage.unit_of_work import UnitOfWork
from giftledger.storage.webhooks import DeliveryRow, EndpointRow, Endpoints

LOG_LENGTH = 100  # deliveries shown in an endpoint's log, newest first


@dataclass(frozen=True)
class NewSecret:
    """An endpoint just added, or its secret just rotated: the secret, shown this once."""

    id: int
    url: str
    events: list[str]
    secret: str
    previous_valid_until: datetime | None  # a rotation: until when the previous secret's signature is sent too


@dataclass(frozen=True)
class EndpointLog:
    endpoint: EndpointRow
    deliveries: list[DeliveryRow]  # newest first, at most LOG_LENGTH


async def queue_event(
    uow: UnitOfWork,
    event_type: str,
    *,
    card_id: int | None = None,
    order_id: int | None = None,
    mail_to: str | None = None,
    previous_card_id: int | None = None,
) -> int | None:
    """Write `event_type` about a card (`card_id`; `order_id` too when it belongs to one) or an order
    (`order_id` alone) in the caller's unit of work, one delivery per endpoint of the account subscribed to it;
    `mail_to`: a card's e-gift sent again to that address (card.resend_recipient_email); `previous_card_id`: the
    card that `card_id` replaced (card.card_reference_updated). The event's id, or None when no endpoint wants
    it (then nothing is written)."""
    assert event_type in rules.EVENTS and (card_id is not None or order_id is not None)
    return await Endpoints(uow.conn, uow.account_id).queue_event(
        event_type, utcnow(), card_id=card_id, order_id=order_id, mail_to=mail_to, previous_card_id=previous_card_id
    )


def _new_secret() -> str:
    return secrets.token_hex(rules.SECRET_BYTES)


def _check(services: Services, url: str | None, events: list[str]) -> tuple[str, list[str]]:
    problems: dict[str, list[str]] = {}
    address = (url or "").strip()
    wrong = rules.url_problem(address, production=services.settings.environment == "production")
    if wrong:
        problems["url"] = [wrong]
    chosen, unknown = rules.event_list(events)
    if unknown:
        problems["events"] = [f"Not an event giftledger sends: {', '.join(unknown)}."]
    if problems:
        raise ValidationFailed(problems)
    return address, chosen


async def add_endpoint(services: Services, principal: Principal, url: str | None, events: list[str]) -> NewSecret:
    """A new, enabled endpoint for the events chosen (none: every event giftledger sends) and its secret."""
    principal.require(Permission.INTEGRATION_MANAGE)
    async with services.unit_of_work(principal) as uow:
        if await uow.directory.account_name(uow.account_id) is None:
            raise NotFound("No such account.")
        address, chosen = _check(services, url, events)
        secret = _new_secret()
        endpoint_id = await Endpoints(uow.conn, uow.account_id).add(address, chosen, secret, utcnow())
    return NewSecret(endpoint_id, address, chosen, secret, None)


async def endpoints(services: Services, principal: Principal) -> list[EndpointRow]:
    principal.require(Permission.INTEGRATION_MANAGE)
    async with services.unit_of_work(principal) as uow:
        return await Endpoints(uow.conn, uow.account_id).listed()


async def _endpoint(uow: UnitOfWork, endpoint_id: int, *, lock: bool = False) -> EndpointRow:
    found = await Endpoints(uow.conn, uow.account_id).get(endpoint_id, lock=lock)
    if found is None:
        raise NotFound("No such webhook endpoint.")
    return found


async def endpoint_log(services: Services, principal: Principal, endpoint_id: int) -> EndpointLog:
    principal.require(Permission.INTEGRATION_MANAGE)
    async with services.unit_of_work(principal) as uow:
        endpoint = await _endpoint(uow, endpoint_id)
        deliveries = await Endpoints(uow.conn, uow.account_id).deliveries(endpoint_id, LOG_LENGTH)
    return EndpointLog(endpoint, deliveries)


async def set_enabled(services: Services, principal: Principal, endpoint_id: int, enabled: bool) -> EndpointRow:
    """Enable (its past failures forgotten) or disable an endpoint; disabling fails its queued deliveries (each
    can be redelivered). Refused (Conflict) when it already is so."""
    principal.require(Permission.INTEGRATION_MANAGE)
    async with services.unit_of_work(principal) as uow:
        endpoint = await _endpoint(uow, endpoint_id, lock=True)
        if endpoint.enabled == enabled:
            raise Conflict(f"This endpoint is already {'enabled' if enabled else 'disabled'}.")
        reason = None if enabled else f"Disabled by {principal.name}."
        await Endpoints(uow.conn, uow.account_id).set_enabled(endpoint_id, enabled, reason, utcnow())
        changed = await _endpoint(uow, endpoint_id)
    return changed


async def rotate_secret(services: Services, principal: Principal, endpoint_id: int) -> NewSecret:
    """A new secret for an endpoint, shown once; the previous one is signed with too for `ROTATION_OVERLAP`."""
    principal.require(Permission.INTEGRATION_MANAGE)
    async with services.unit_of_work(principal) as uow:
        endpoint = await _endpoint(uow, endpoint_id, lock=True)
        now = utcnow()
        secret = _new_secret()
        until = now + rules.ROTATION_OVERLAP
        await Endpoints(uow.conn, uow.account_id).rotate(endpoint_id, secret, until, now)
    return NewSecret(endpoint.id, endpoint.url, endpoint.events, secret, until)


async def send_test_event(services: Services, principal: Principal, endpoint_id: int) -> int:
    """Queue a `webhook.test` event to this endpoint alone (enabled, whatever its events); the event's id."""
    principal.require(Permission.INTEGRATION_MANAGE)
    async with services.unit_of_work(principal) as uow:
        endpoint = await _endpoint(uow, endpoint_id)
        if not endpoint.enabled:
            raise Conflict("This endpoint is disabled: enable it to send it a test event.")
        event_id = await Endpoints(uow.conn, uow.account_id).queue_event(rules.TEST, utcnow(), endpoint_id=endpoint_id)
    assert event_id is not None
    return event_id


async def redeliver(services: Services, principal: Principal, endpoint_id: int, delivery_id: int) -> None:
    """Queue a sent or failed delivery again (the same event, the same id and body), due now."""
    principal.require(Permission.INTEGRATION_MANAGE)
    async with services.unit_of_work(principal) as uow:
        endpoint = await _endpoint(uow, endpoint_id)
        if not endpoint.enabled:
            raise Conflict("This endpoint is disabled: enable it to redeliver.")
        if not await Endpoints(uow.conn, uow.account_id).redeliver(endpoint_id, delivery_id, utcnow()):
            raise NotFound("No such delivery waiting to be redelivered (a queued one is sent already).")
