"""Recording audit records: who did what, to which account, site and card, from where, and whether it was
applied. Card numbers are masked before they are stored; details keep only plain facts, never passwords,
tokens, secrets or PINs.

An accepted money movement (a sale, a redemption or top-up, a reversal, a manual adjustment) is recorded by
its use case in the movement's own transaction (`add_event` with the use case's unit of work, or folded into
a till's one statement: services/adjustments.py), so no crash can leave a movement without its record.
Refused attempts are recorded after the fact: a GraphQL mutation's by `api.guard` (in batches: batching.py),
a dashboard form's by the dashboard's wrapper (`record_change`), and security events (card look-ups paused)
by the service that sees them."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from giftledger.domain.card_numbers import mask_card as mask_card  # re-exported: the audit package's name for it
from giftledger.services.context import Principal, Services
from giftledger.storage.audit import AuditLog, NewAuditEvent
from giftledger.storage.clock import utcnow
from giftledger.storage.unit_of_work import UnitOfWork

ACCEPTED = "accepted"
REFUSED = "refused"
OUTCOMES = (ACCEPTED, REFUSED)
PAUSED = "security.card_lookups_paused"  # card look-ups by number paused for a caller (services/guessing.py)
# Detail keys that could carry a secret are dropped, whatever their value.
SECRET_WORDS = ("password", "secret", "token", "pin", "key", "authorization", "hash", "cookie", "csrf")

Scalar = str | int | float | bool | None
Detail = Mapping[str, Scalar | list[Scalar]]


@functools.lru_cache(maxsize=1024)
def names_a_secret(key: str) -> bool:
    """Whether a detail key could carry a secret (asked for the same few keys with every audit record)."""
    lowered = key.lower()
    return any(word in lowered for word in SECRET_WORDS)


def clean_detail(detail: Detail | None) -> str | None:
    """The detail as compact JSON, without any key that names a secret."""
    if not detail:
        return None
    kept = {key: value for key, value in detail.items() if not names_a_secret(key)}
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS, default=str).decode() if kept else None


@dataclass(frozen=True)
class Where:
    """The till a request names (its merchant and `unit_epos_reference`), resolved to the account's site."""

    merchant_id: int
    epos_reference: str


async def add_event(
    uow: UnitOfWork,
    principal: Principal | None,
    *,
    operation: str,
    outcome: str,
    account_id: int | None = None,
    site_id: int | None = None,
    where: Where | None = None,
    card_references: Iterable[str] = (),
    line_item_ids: Iterable[int] = (),
    error_code: str | None = None,
    client_address: str | None = None,
    detail: Detail | None = None,
    at: datetime | None = None,
) -> int:
    """Write one audit row inside `uow`'s transaction and return its id.

    `principal` is who acted (None: an unauthenticated caller); the account is the principal's unless
    `account_id` says otherwise. `outcome` is "accepted" or "refused" (with the refusal's `error_code`).
    Card numbers are masked here; `line_item_ids` add the cards of those line items, and `where` names the
    till's site, both looked up only in the principal's own account (the unit of work's). `detail` holds
    plain facts (references, amounts, ids); keys naming secrets are dropped."""
    account = account_of(principal, account_id)
    numbers = list(card_references)
    if account is not None and principal is not None and principal.account_id == account == uow.account_id:
        if site_id is None and where is not None:
            site_id = await uow.sites.site_for_reference(where.merchant_id, where.epos_reference)
        ids = [i for i in line_item_ids if isinstance(i, int)]
        for item in await uow.ledger.many(ids):
            card = await uow.cards.get(item.card_id)
            if card is not None:
                numbers.append(card.card_reference)
    event = new_event(
        principal, operation, outcome, account, site_id, numbers, error_code, client_address, detail, at or utcnow()
    )
    return await AuditLog(uow.conn, account).add(event)


def account_of(principal: Principal | None, account_id: int | None) -> int | None:
    return account_id if account_id is not None else principal.account_id if principal else None


def new_event(
    principal: Principal | None,
    operation: str,
    outcome: str,
    account: int | None,
    site_id: int | None,
    card_numbers: Iterable[str],
    error_code: str | None,
    client_address: str | None,
    detail: Detail | None,
    at: datetime,
) -> NewAuditEvent:
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    masked = ", ".join(dict.fromkeys(mask_card(n) for n in card_numbers if n and n.strip())) or None
    return NewAuditEvent(
        account_id=account,
        created_at=at,
        actor_kind=principal.kind if principal else "anonymous",
        actor_id=principal.id if principal else None,
        actor_name=principal.name if principal else None,
        site_id=site_id,
        operation=operation[:100],
        card=masked,
        outcome=outcome,
        error_code=error_code[:60] if error_code else None,
        client_address=(client_address or (principal.client_address if principal else None) or None),
        detail=clean_detail(detail),
    )


@dataclass(frozen=True)
class Audit:
    """How a transport names a change it asks a use case to make, for the record the use case writes in the
    change's own transaction when it is accepted: the operation (`createOrder`, `dashboard.card.adjust`) and
    the facts the transport knows of the request; the use case adds its own (cards, site, line items)."""

    operation: str
    detail: Mapping[str, Scalar | list[Scalar]] = field(default_factory=dict)


async def record_accepted(
    uow: UnitOfWork,
    principal: Principal,
    audit: Audit | None,
    *,
    site_id: int | None = None,
    card_references: Iterable[str] = (),
    detail: Detail | None = None,
) -> None:
    """In an accepted change's own transaction: its record (nothing when no transport asked for one: the
    operator at the command line)."""
    if audit is None:
        return
    await add_event(
        uow,
        principal,
        operation=audit.operation,
        outcome=ACCEPTED,
        site_id=site_id,
        card_references=card_references,
        detail={**audit.detail, **(detail or {})} or None,
    )


async def record_change(
    services: Services,
    principal: Principal | None,
    *,
    operation: str,
    outcome: str,
    account_id: int | None = None,
    site_id: int | None = None,
    card_ids: Iterable[int] = (),
    error_code: str | None = None,
    client_address: str | None = None,
    detail: Detail | None = None,
) -> int:
    """Write one audit record for a change made in the dashboard, in a transaction of its own, and return
    its id. Written after the change's own transaction has ended, so the record of a refused change is not
    rolled back with it.

    Like `record`, except that the cards are named by id and the site by id, both looked up in the
    principal's account: an id that is not one of the account's (a made-up one, or another account's) is
    kept in the details only (`card_ids`, `site_id`), so a record never points at another account's rows."""
    account = account_id if account_id is not None else principal.account_id if principal else None
    facts: dict[str, Scalar | list[Scalar]] = dict(detail or {})
    async with services.db.transaction() as conn:
        uow = UnitOfWork(conn, principal.account_id if principal else 0)
        own = principal is not None and principal.account_id == account
        numbers: list[str] = []
        unknown_cards: list[Scalar] = []
        for card_id in dict.fromkeys(card_ids):
            card = await uow.cards.get(card_id) if own else None
            if card is None:
                unknown_cards.append(card_id)
            else:
                numbers.append(card.card_reference)
        if unknown_cards:
            facts["card_ids"] = unknown_cards
        if site_id is not None and (not own or await uow.sites.get(site_id) is None):
            facts["site_id"] = site_id
            site_id = None
        return await add_event(
            uow,
            principal,
            operation=operation,
            outcome=outcome,
            account_id=account,
            site_id=site_id,
            card_references=numbers,
            error_code=error_code,
            client_address=client_address,
            detail=facts or None,
        )


