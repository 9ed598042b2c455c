from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from giftledger.domain.errors import NegativeBalance
from giftledger.domain.ledger import Holding, Split, debit_split, movement_split


def test_debit_takes_in_proportion_with_discount_rounded_down() -> None:
    # a £15 card: £10 tender + £5 discount; a £10 redemption takes £6.66 + £3.34
    assert debit_split(Holding(1000, 500), 1000) == Split(tender=-667, discount=-333)


def test_full_redemption_empties_both_parts() -> None:
    assert debit_split(Holding(750, 250), 1000) == Split(tender=-750, discount=-250)


def test_debit_larger_than_balance_is_refused() -> None:
    with pytest.raises(NegativeBalance):
        debit_split(Holding(10, 0), 11)


def test_credit_without_split_is_tender_and_with_split_is_kept() -> None:
    assert movement_split(Holding(0, 0), 500) == Split(500, 0)
    assert movement_split(Holding(0, 0), 500, Split(200, 300)) == Split(200, 300)
    with pytest.raises(ValueError):
        movement_split(Holding(0, 0), 500, Split(200, 200))


def test_holding_refuses_to_go_negative() -> None:
    with pytest.raises(NegativeBalance):
        Holding(100, 0).apply(Split(-50, -1))


@given(
    tender=st.integers(0, 10**9),
    discount=st.integers(0, 10**9),
    amounts=st.lists(st.integers(1, 10**9), max_size=30),
)
def test_redemptions_keep_both_parts_non_negative_and_reach_zero_together(
    tender: int, discount: int, amounts: list[int]
) -> None:
    holding = Holding(tender, discount)
    for amount in amounts:
        if amount > holding.balance:
            continue
        split = debit_split(holding, amount)
        assert split.value == -amount
        assert split.tender <= 0 and split.discount <= 0
        holding = holding.apply(split)
        assert holding.tender >= 0 and holding.discount >= 0
    if holding.balance:
        final = holding.apply(debit_split(holding, holding.balance))
        assert final == Holding(0, 0)
