"""The ledger's movement statement (storage/ledger.py) splits a debit across tender and discount in SQL: it
must give exactly what `domain.ledger.debit_split` gives, down to the rounding, for every holding."""

from __future__ import annotations

import asyncio
import random

import asyncpg  # type: ignore[import-untyped]

from giftledger.domain.ledger import Holding, debit_split
from giftledger.domain.validation import MAX_AMOUNT
from giftledger.storage.ledger import DEBIT_DISCOUNT


def _cases() -> list[tuple[int, int, int]]:
    """(tender, discount, amount) with amount <= tender + discount, edges first, then a seeded sample."""
    edges = [0, 1, 2, 3, 7, 99, 100, 101, 2500, MAX_AMOUNT, 2**40, 2**62 - 1]
    cases = []
    for tender in edges:
        for discount in edges:
            total = tender + discount
            if total == 0 or total >= 2**63:
                continue
            amounts = {1, 2, total // 3, total // 2, total - 1, total, min(total, MAX_AMOUNT)}
            cases += [(tender, discount, amount) for amount in sorted(amounts) if 1 <= amount <= total]
    rng = random.Random(20261201)
    for _ in range(5000):
        tender, discount = rng.randint(0, 10**7), rng.randint(0, 10**7)
        if tender + discount:
            cases.append((tender, discount, rng.randint(1, tender + discount)))
    return cases


def test_sql_debit_split_is_the_domain_split(postgres_base: str) -> None:
    cases = _cases()
    discount_sql = DEBIT_DISCOUNT.format(amount="c.amount", tender="c.tender", discount="c.discount")
    query = f"""
        SELECT c.tender, c.discount, c.amount, {discount_sql} AS taken
        FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS c(tender, discount, amount)
    """

    async def evaluate() -> list[tuple[int, int, int, int]]:
        conn = await asyncpg.connect(postgres_base)
        try:
            rows = await conn.fetch(query, *(list(column) for column in zip(*cases, strict=True)))
        finally:
            await conn.close()
        return [(r["tender"], r["discount"], r["amount"], r["taken"]) for r in rows]

    results = asyncio.run(evaluate())
    assert len(results) == len(cases) > 5000
    for tender, discount, amount, taken in results:
        split = debit_split(Holding(tender, discount), amount)
        # the statement's line item: tender = value + taken, discount = -taken (storage/ledger.py)
        assert (-amount + taken, -taken) == (split.tender, split.discount), (tender, discount, amount)
