"""What a mutation's audit record says about its request: the till, the cards, the line items, plain details.

The same facts go into an accepted mutation's record (written by its use case in the change's own
transaction: the resolvers hand them over as `services.audit.Audit`) and a refused one's (written behind the
request by the guard: api/guard.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from giftledger.services.audit import Audit, Scalar, Where


@dataclass(frozen=True)
class Facts:
    where: Where | None = None
    card_references: tuple[str, ...] = ()
    line_item_ids: tuple[int, ...] = ()
    detail: dict[str, Scalar | list[Scalar]] = field(default_factory=dict)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def request_facts(args: dict[str, Any]) -> Facts:
    """The facts of one mutation's (coerced) arguments."""
    cards: list[str] = []
    if (reference := _text(args.get("card_reference"))) is not None:
        cards.append(reference)
    items = _list(args.get("order_items"))
    cards += [r for i in items if isinstance(i, dict) and (r := _text(i.get("card_reference")))]
    line_item_ids = [
        n for i in _list(args.get("ReversalItems")) if isinstance(i, dict) and (n := _number(i.get("line_item_id")))
    ]
    merchant_id, epos = _number(args.get("merchant_id")), _text(args.get("unit_epos_reference"))
    detail: dict[str, Scalar | list[Scalar]] = {
        "merchant_id": merchant_id,
        "unit_epos_reference": epos,
        "merchant_transaction_reference": _text(args.get("merchant_transaction_reference")),
        "value": _number(args.get("value")),
        "total": _number(args.get("total")),
        "currency": _text(args.get("currency")),
        "account_id": _number(args.get("account_id")),
        "order_items": len(items) or None,
        "line_item_ids": list[Scalar](line_item_ids) or None,
    }
    return Facts(
        where=Where(merchant_id, epos) if merchant_id is not None and epos is not None else None,
        card_references=tuple(cards),
        line_item_ids=tuple(line_item_ids),
        detail={k: v for k, v in detail.items() if v is not None},
    )


def accepted(operation: str, args: dict[str, Any]) -> Audit:
    """How a resolver asks its use case to record the change when it is accepted (the use case adds the cards
    it touched, the site and the result's id)."""
    return Audit(operation, request_facts(args).detail)
