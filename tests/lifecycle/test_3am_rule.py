"""The 3 am rule and the validity states, as pure functions (domain/validity.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from giftledger.domain.validity import (
    CardState,
    ExpiryKind,
    Overrides,
    ValidityRules,
    card_state,
    expires_at,
    shown_expiry_date,
    terms_on_sale,
)


def test_a_card_shown_expiring_on_a_date_expires_at_3_am_the_next_day_in_the_accounts_zone() -> None:
    assert expires_at(date(2026, 12, 31), "Europe/London") == datetime(2027, 1, 1, 3, tzinfo=UTC)
    assert expires_at(date(2026, 7, 1), "Europe/London") == datetime(2026, 7, 2, 2, tzinfo=UTC)  # BST
    assert expires_at(date(2026, 7, 1), "America/New_York") == datetime(2026, 7, 2, 7, tzinfo=UTC)
    for shown in (date(2026, 12, 31), date(2026, 3, 28), date(2026, 10, 24)):  # around the clock changes
        assert shown_expiry_date(expires_at(shown, "Europe/London"), "Europe/London") == shown


def test_the_state_blocked_first_then_expired_then_not_yet_valid() -> None:
    now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    past, future = now - timedelta(seconds=1), now + timedelta(seconds=1)

    def state(expiry: datetime | None, start: datetime | None, blocked: str | None) -> CardState:
        return card_state(expiry_time=expiry, validity_start_time=start, blocked_reason=blocked, now=now)

    assert state(None, None, None) is CardState.ACTIVE
    assert state(now, None, None) is CardState.EXPIRED  # expires at that moment
    assert state(future, now, None) is CardState.ACTIVE  # valid from that moment
    assert state(past, future, None) is CardState.EXPIRED
    assert state(past, future, "replaced") is CardState.BLOCKED
    assert state(future, future, None) is CardState.NOT_YET_VALID


def test_the_later_of_the_delay_and_the_valid_after_date_wins_and_overrides_replace_the_product() -> None:
    bought = datetime(2026, 12, 7, 15, tzinfo=UTC)
    rules = ValidityRules(
        activation_delay_seconds=86_400,
        valid_after=date(2026, 12, 10),
        expiry_kind=ExpiryKind.PERIOD,
        expiry_period_days=10,
        reminder_days=3,
    )
    terms = terms_on_sale(rules, None, bought, "Europe/London")
    assert terms.validity_start_time == datetime(2026, 12, 10, 0, tzinfo=UTC)
    assert terms.expiry_time == datetime(2026, 12, 18, 3, tzinfo=UTC)
    assert terms.reminder_days == 3
    given = Overrides(validity_given=True, valid_seconds_after_purchase=60, expiry_given=True)
    terms = terms_on_sale(rules, given, bought, "Europe/London")
    assert (terms.validity_start_time, terms.expiry_time, terms.reminder_days) == (
        bought + timedelta(seconds=60),
        None,
        None,
    )
