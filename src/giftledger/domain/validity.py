"""When a card may be used: its validity start, its expiry (the 3 am rule) and whether it is blocked.

A product says when the cards it sells become active (at once, or a delay after purchase), an optional
"valid after" date (the later of the two wins), when they expire (never, a number of days after purchase, or
on a fixed date) and how many days before expiry the holder is reminded. An order item may override both
(the API's `validity_rules` and `expiry_config`, given as exact UTC times or seconds).

The 3 am rule (as Toggle does it): a card shown as expiring on a date expires at 03:00 the next day, in the
account's time zone; a "valid after" date starts at 00:00 that day in the account's time zone.

Which state a card is in, and so which refusal a till hears, is decided here (`card_state`, `refusal`); the
tills' one statement (storage/tills.py `USABLE`) applies the same test in SQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from giftledger.domain.errors import DomainError
from giftledger.domain.time_zones import zone
from giftledger.domain.validation import Problems

EXPIRY_HOUR = 3  # a card shown as expiring on a date expires at 03:00 the next day (account's zone)
MAX_PERIOD_DAYS = 36_600  # a hundred years: keeps every computed time inside datetime's range
MAX_REMINDER_DAYS = 366
MAX_SECONDS = MAX_PERIOD_DAYS * 86_400
CONTRACT_TIME = "%Y-%m-%d %H:%M:%S"  # the contract's UTC `Y-m-d H:i:s`

# "Cards should become active": the delays a product offers (seconds after purchase -> label).
ACTIVATION_DELAYS: Mapping[int, str] = MappingProxyType(
    {0: "Immediately", 86_400: "1 day after purchase", 172_800: "2 days after purchase",
     259_200: "3 days after purchase", 604_800: "1 week after purchase"}
)  # fmt: skip

# The API's validity_rule_type_id values.
VALID_FROM, VALID_UNTIL, VALID_SECONDS_AFTER_PURCHASE = 1, 2, 3

EXPIRED = "This card has expired. Transaction not applied."
NOT_YET_VALID = "This card is not valid yet. Transaction not applied."
BLOCKED = "This card is blocked. Transaction not applied."
PASSED = "This time has already passed."


class CardExpired(DomainError):
    code = "CARD_EXPIRED"
    customer_facing = True

    def __init__(self) -> None:
        super().__init__(EXPIRED)


class CardNotYetValid(DomainError):
    code = "CARD_NOT_YET_VALID"
    customer_facing = True

    def __init__(self) -> None:
        super().__init__(NOT_YET_VALID)


class CardBlocked(DomainError):
    code = "CARD_BLOCKED"
    customer_facing = True

    def __init__(self) -> None:
        super().__init__(BLOCKED)


class BlockReason(StrEnum):
    LOST = "lost"
    STOLEN = "stolen"
    FRAUD = "fraud"
    REPLACED = "replaced"  # set by a card's replacement, never chosen by hand


# The reasons a person chooses when blocking a card by hand.
CHOSEN_BLOCK_REASONS = (BlockReason.LOST, BlockReason.STOLEN, BlockReason.FRAUD)


class CardState(StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


def card_state(
    *, expiry_time: datetime | None, validity_start_time: datetime | None, blocked_reason: str | None, now: datetime
) -> CardState:
    """The state of a sold card at `now`: blocked (any reason) first, then expired, then not yet valid."""
    if blocked_reason is not None:
        return CardState.BLOCKED
    if expiry_time is not None and expiry_time <= now:
        return CardState.EXPIRED
    if validity_start_time is not None and validity_start_time > now:
        return CardState.NOT_YET_VALID
    return CardState.ACTIVE


def refusal(state: CardState) -> DomainError | None:
    """What a till hears when it tries to redeem or top up a card in `state` (None: allowed)."""
    return {
        CardState.BLOCKED: CardBlocked,
        CardState.EXPIRED: CardExpired,
        CardState.NOT_YET_VALID: CardNotYetValid,
    }.get(state, lambda: None)()


class ExpiryKind(StrEnum):
    NEVER = "never"
    PERIOD = "period"  # a number of days after purchase
    DATE = "date"  # on a fixed date


@dataclass(frozen=True)
class ValidityRules:
    """A product's validity and expiry settings."""

    activation_delay_seconds: int = 0
    valid_after: date | None = None
    expiry_kind: ExpiryKind = ExpiryKind.NEVER
    expiry_period_days: int | None = None
    expiry_date: date | None = None
    reminder_days: int | None = None

    def describe(self) -> list[str]:
        """What the shop shows about these rules."""
        lines = [
            "Card becomes active immediately"
            if not self.activation_delay_seconds
            else f"Card becomes active {_delay_text(self.activation_delay_seconds)}"
        ]
        if self.valid_after is not None:
            lines.append(f"Valid from {self.valid_after.isoformat()}")
        if self.expiry_kind is ExpiryKind.PERIOD:
            lines.append(f"Expires {self.expiry_period_days} days after purchase")
        elif self.expiry_kind is ExpiryKind.DATE and self.expiry_date is not None:
            lines.append(f"Expires on {self.expiry_date.isoformat()}")
        else:
            lines.append("Never expires")
        if self.reminder_days:
            lines.append(f"Reminder email {self.reminder_days} days before expiry")
        return lines


def _delay_text(seconds: int) -> str:
    return ACTIVATION_DELAYS.get(seconds) or f"{seconds} seconds after purchase"


def check_rules(
    *,
    activation_delay_seconds: int | None,
    valid_after: date | None,
    expiry_kind: str,
    expiry_period_days: int | None,
    expiry_date: date | None,
    reminder_days: int | None,
    problems: Problems,
) -> ValidityRules | None:
    """A product's settings as typed, checked; None (with `problems` saying why) when they do not hold."""
    delay = activation_delay_seconds or 0
    if delay not in ACTIVATION_DELAYS:
        problems.add("activation_delay_seconds", "Choose when cards become active.")
    try:
        kind = ExpiryKind(expiry_kind)
    except ValueError:
        problems.add("expiry_kind", "Choose when cards expire.")
        return None
    if kind is ExpiryKind.PERIOD:
        if expiry_period_days is None:
            problems.add("expiry_period_days", "Enter the number of days after purchase.")
        elif not 1 <= expiry_period_days <= MAX_PERIOD_DAYS:
            problems.add("expiry_period_days", f"Enter a number of days from 1 to {MAX_PERIOD_DAYS}.")
    if kind is ExpiryKind.DATE and expiry_date is None:
        problems.add("expiry_date", "Enter the date cards expire on.")
    if reminder_days is not None:
        if kind is ExpiryKind.NEVER:
            problems.add("reminder_days", "A reminder needs an expiry.")
        elif not 1 <= reminder_days <= MAX_REMINDER_DAYS:
            problems.add("reminder_days", f"Enter a number of days from 1 to {MAX_REMINDER_DAYS}.")
    if problems:
        return None
    return ValidityRules(
        activation_delay_seconds=delay,
        valid_after=valid_after,
        expiry_kind=kind,
        expiry_period_days=expiry_period_days if kind is ExpiryKind.PERIOD else None,
        expiry_date=expiry_date if kind is ExpiryKind.DATE else None,
        reminder_days=reminder_days,
    )


def expires_at(shown: date, time_zone: str) -> datetime:
    """The moment (UTC) a card shown as expiring on `shown` expires: 03:00 the next day in the account's zone."""
    local = datetime.combine(shown + timedelta(days=1), time(EXPIRY_HOUR), tzinfo=zone(time_zone))
    return local.astimezone(UTC)


def shown_expiry_date(expiry_time: datetime, time_zone: str) -> date:
    """The date a card expiring at `expiry_time` is shown as expiring on (the inverse of `expires_at`)."""
    local = expiry_time.astimezone(zone(time_zone))
    return (local - timedelta(hours=EXPIRY_HOUR, microseconds=1)).date()


def start_of_day(day: date, time_zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone(time_zone)).astimezone(UTC)


@dataclass(frozen=True)
class Overrides:
    """An order item's own validity and expiry (the API's `validity_rules` and `expiry_config`): a part that
    is given replaces the product's for that card."""

    validity_given: bool = False
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_seconds_after_purchase: int | None = None
    expiry_given: bool = False
    seconds_valid_for: int | None = None  # None (with expiry_given): never expires
    hard_expire_at: datetime | None = None
    reminder_days: int | None = None


@dataclass(frozen=True)
class CardTerms:
    """What a card is sold with."""

    validity_start_time: datetime | None  # None: usable at once
    expiry_time: datetime | None  # None: never expires
    reminder_days: int | None


def terms_on_sale(
    rules: ValidityRules, overrides: Overrides | None, purchased_at: datetime, time_zone: str
) -> CardTerms:
    """The validity start, expiry and reminder of a card sold at `purchased_at` under `rules`, with the order
    item's `overrides`. The product's dates follow the 3 am rule; the API's are exact UTC times."""
    o = overrides or Overrides()
    starts: list[datetime] = []
    valid_until: datetime | None = None
    if o.validity_given:
        if o.valid_from is not None:
            starts.append(o.valid_from)
        if o.valid_seconds_after_purchase:
            starts.append(purchased_at + timedelta(seconds=o.valid_seconds_after_purchase))
        valid_until = o.valid_until
    else:
        if rules.activation_delay_seconds:
            starts.append(purchased_at + timedelta(seconds=rules.activation_delay_seconds))
        if rules.valid_after is not None:
            starts.append(start_of_day(rules.valid_after, time_zone))
    start = max(starts) if starts else None
    if start is not None and start <= purchased_at:
        start = None
    if o.expiry_given:
        if o.hard_expire_at is not None:
            expiry: datetime | None = o.hard_expire_at
        elif o.seconds_valid_for is not None:
            expiry = purchased_at + timedelta(seconds=o.seconds_valid_for)
        else:
            expiry = None
        reminder = o.reminder_days
    else:
        expiry = _product_expiry(rules, purchased_at, time_zone)
        reminder = rules.reminder_days
    if valid_until is not None and (expiry is None or valid_until < expiry):
        expiry = valid_until
    return CardTerms(start, expiry, reminder if expiry is not None else None)


def _product_expiry(rules: ValidityRules, purchased_at: datetime, time_zone: str) -> datetime | None:
    if rules.expiry_kind is ExpiryKind.PERIOD and rules.expiry_period_days:
        bought = purchased_at.astimezone(zone(time_zone)).date()
        return expires_at(bought + timedelta(days=rules.expiry_period_days), time_zone)
    if rules.expiry_kind is ExpiryKind.DATE and rules.expiry_date is not None:
        return expires_at(rules.expiry_date, time_zone)
    return None


def _contract_time(value: Any) -> datetime | None:
    """A contract time (`Y-m-d H:i:s`, UTC); None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value.strip(), CONTRACT_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


def _seconds(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    else:
        return None
    return number if 0 < number <= MAX_SECONDS else None


def check_overrides(
    validity_rules: Sequence[Mapping[str, Any] | None] | None,
    expiry_config: Mapping[str, Any] | None,
    at: str,
    problems: Problems,
    now: datetime,
) -> Overrides | None:
    """An order item's `validity_rules` and `expiry_config` as the API gives them, checked (every problem is
    added to `problems` under `at`; an expiry that has already passed at `now` is one); None when neither is
    given."""
    if validity_rules is None and expiry_config is None:
        return None
    parts: dict[str, Any] = {}
    if validity_rules is not None:
        parts["validity_given"] = True
        seen: set[int] = set()
        for index, rule in enumerate(validity_rules):
            field = f"{at}.validity_rules.{index}"
            kind = rule.get("validity_rule_type_id") if rule is not None else None
            raw = rule.get("rule") if rule is not None else None
            if kind is None:
                problems.add(f"{field}.validity_rule_type_id", "This field is required")
                continue
            if kind not in (VALID_FROM, VALID_UNTIL, VALID_SECONDS_AFTER_PURCHASE) or kind in seen:
                problems.add(f"{field}.validity_rule_type_id", "This field is not of an expected value")
                continue
            seen.add(kind)
            if raw is None or (isinstance(raw, str) and not raw.strip()):
                problems.add(f"{field}.rule", "This field is required")
            elif kind == VALID_SECONDS_AFTER_PURCHASE:
                if (seconds := _seconds(raw)) is None:
                    problems.add(f"{field}.rule", f"Enter a whole number of seconds from 1 to {MAX_SECONDS}.")
                parts["valid_seconds_after_purchase"] = seconds
            elif (moment := _contract_time(raw)) is None:
                problems.add(f"{field}.rule", "Enter a UTC time as Y-m-d H:i:s.")
            elif kind == VALID_UNTIL and moment <= now:
                problems.add(f"{field}.rule", PASSED)
            else:
                parts["valid_from" if kind == VALID_FROM else "valid_until"] = moment
    if expiry_config is not None:
        field = f"{at}.expiry_config"
        parts["expiry_given"] = True
        seconds_raw = expiry_config.get("seconds_valid_for")
        if seconds_raw is not None:
            if (seconds := _seconds(seconds_raw)) is None:
                problems.add(f"{field}.seconds_valid_for", f"Enter a whole number of seconds from 1 to {MAX_SECONDS}.")
            parts["seconds_valid_for"] = seconds
        hard_raw = expiry_config.get("hard_expire_at")
        if hard_raw is not None:
            if (moment := _contract_time(hard_raw)) is None:
                problems.add(f"{field}.hard_expire_at", "Enter a UTC time as Y-m-d H:i:s.")
            elif moment <= now:
                problems.add(f"{field}.hard_expire_at", PASSED)
            parts["hard_expire_at"] = moment
        days = expiry_config.get("send_expiry_alert_days_before")
        if days is not None:
            if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_REMINDER_DAYS:
                problems.add(f"{field}.send_expiry_alert_days_before", f"Enter days from 1 to {MAX_REMINDER_DAYS}.")
            else:
                parts["reminder_days"] = days
    if parts.get("valid_from") and parts.get("valid_until") and parts["valid_until"] <= parts["valid_from"]:
        problems.add(f"{at}.validity_rules", "Valid Until must be after Valid From.")
    return Overrides(**parts)


class ExpiryChange(StrEnum):
    EXTEND = "extend"  # by a number of days
    DATE = "date"  # to expire on a date (3 am rule)
    REMOVE = "remove"  # never expires


@dataclass(frozen=True)
class NewExpiry:
    """A change of expiry, checked: extend by `days`, or set `expiry_time` (None: remove)."""

    change: ExpiryChange
    days: int | None = None
    expiry_time: datetime | None = None


def check_expiry_change(
    change: str, days: int | None, day: date | None, time_zone: str, now: datetime, problems: Problems
) -> NewExpiry | None:
    try:
        kind = ExpiryChange(change)
    except ValueError:
        problems.add("change", "Choose how to change the expiry.")
        return None
    if kind is ExpiryChange.EXTEND:
        if days is None:
            problems.add("days", "Enter the number of days.")
        elif not 1 <= days <= MAX_PERIOD_DAYS:
            problems.add("days", f"Enter a number of days from 1 to {MAX_PERIOD_DAYS}.")
        return None if problems else NewExpiry(kind, days=days)
    if kind is ExpiryChange.DATE:
        if day is None:
            problems.add("expiry_date", "Enter the date the card expires on.")
            return None
        moment = expires_at(day, time_zone)
        if moment <= now:
            problems.add("expiry_date", "Choose a date that has not passed.")
            return None
        return NewExpiry(kind, expiry_time=moment)
    return NewExpiry(kind)
