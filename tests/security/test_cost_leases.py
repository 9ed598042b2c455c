"""The cost budget across processes (services/throttle.py): each process spends from a lease of the caller's
credits taken out of the caller's row, with no statement per request, and the bound docs/security.md states:
summed over processes, a caller spends at most `lease_size` (maximum / 64) credits per process beyond what one
shared bucket allows, and refusals come exactly when the row and the leases are spent. Two `Budget`s over one
database, each with a pool of its own, stand for two processes; the clock is in hand."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from giftledger.app import build_services
from giftledger.domain.errors import Unauthorized
from giftledger.services import setup
from giftledger.services.context import Principal, Services
from giftledger.services.throttle import Budget, BudgetStatus
from giftledger.storage.throttle import _TAKE
from tests.security.helpers import api_user, operator, run_services
from tests.support import Demo
from tests.support import test_settings as settings_for

MAXIMUM = 6400  # a lease of at most 100 credits
SLOW = {"cost_maximum": MAXIMUM, "cost_restore": 0}  # restores nothing (the tests on the real clock)


def _subject(name: str) -> str:
    return f"test-{name}:{id(object())}"


async def _row(services: Services, subject: str) -> tuple[float, str] | None:
    """What the caller's row holds, and its row version (xmin: changes with every write)."""
    row = await services.db.fetchrow(
        "SELECT available, xmin::text AS version FROM throttle_buckets WHERE subject = $1", subject
    )
    return (float(row["available"]), str(row["version"])) if row is not None else None


def _counting(services: Services, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements `services`' database runs from now on."""
    statements: list[str] = []
    fetch = services.db.fetch

    async def counted(sql: str, *args: Any) -> Any:
        statements.append(sql)
        return await fetch(sql, *args)

    monkeypatch.setattr(services.db, "fetch", counted)
    return statements


async def _holding_a_full_lease(budget: Budget, subject: str, now: float, caller: Principal | None = None) -> None:
    """Spend 50 twice (the second takes 100: twice what was spent), then refresh: the lease holds 100."""
    for _ in range(2):
        assert (await budget.spend(subject, 50, now=now, caller=caller)).charged
    await budget.refresh(now=now)


def _two_processes(database_url: str, work: Callable[[Services, Services], Awaitable[Any]], **settings: Any) -> Any:
    async def both(first: Services) -> Any:
        second = build_services(settings_for(database_url, **settings))
        try:
            return await work(first, second)
        finally:
            await second.db.dispose()

    return run_services(database_url, both, **settings)


def test_a_burst_across_two_processes_spends_at_most_a_lease_each_beyond_the_maximum(database_url: str) -> None:
    subject = _subject("bound")

    async def work(one: Services, two: Services) -> tuple[list[BudgetStatus], float | None, float]:
        first, second = Budget(one, refresh_seconds=None), Budget(two, refresh_seconds=None)
        assert first.lease_size == second.lease_size == 100
        await _holding_a_full_lease(first, subject, 100.0)
        await _holding_a_full_lease(second, subject, 100.0)
        row = await _row(one, subject)
        assert row is not None and row[0] == MAXIMUM - 200 - 200  # 200 spent, 100 held by each
        # 900 s later the row has refilled to the maximum, while each process still holds its lease; then both
        # spend 10 at a time, 400 requests each, all at once
        seen = await asyncio.gather(*(b.spend(subject, 10, now=1000.0) for _ in range(400) for b in (first, second)))
        after = await _row(one, subject)
        last = await first.spend(subject, 1, now=1000.0)
        return list(seen), after[0] if after is not None else None, last.available

    seen, row, left = _two_processes(database_url, work, cost_maximum=MAXIMUM)
    charged = [s for s in seen if s.charged]
    assert 10 * len(charged) == MAXIMUM + 2 * 100  # the bound, reached: a lease each beyond the maximum
    assert len(seen) - len(charged) == 800 - 660  # every other request refused, none while credits were left
    assert all(s.retry_after_seconds == 2 for s in seen if not s.charged)  # 10 credits at 8.33 a second
    assert (row, left) == (0.0, 0.0)  # the row and both leases spent to the last credit


def test_a_lease_spends_with_no_statement_until_it_runs_short(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = _subject("quiet")

    async def work(services: Services) -> None:
        budget = Budget(services, refresh_seconds=None)
        await _holding_a_full_lease(budget, subject, 10.0)
        before = await _row(services, subject)
        statements = _counting(services, monkeypatch)
        seen = [await budget.spend(subject, 10, now=10.0) for _ in range(10)]
        assert statements == []
        assert [(s.charged, s.checked, s.currently_available) for s in seen] == [
            (True, False, MAXIMUM - 100 - 10 * n) for n in range(1, 11)
        ]
        assert budget.refund(seen[-1], 4).currently_available == MAXIMUM - 196  # settled in the lease too
        assert await _row(services, subject) == before  # not written (its xmin unchanged)
        statements.clear()
        eleventh = await budget.spend(subject, 10, now=10.0)  # the lease holds 4: a statement takes more
        assert statements == [_TAKE]
        assert (eleventh.charged, eleventh.checked, eleventh.currently_available) == (True, True, MAXIMUM - 206)

    run_services(database_url, work, **SLOW)


def test_credits_given_back_beyond_a_lease_go_back_to_the_row_unspent(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply that cost less than its estimate gives the rest back; beyond `lease_size` it is not spendable
    here (the bound counts a lease per process), and the next statement returns it to the row."""
    subject = _subject("surplus")

    async def work(services: Services) -> None:
        budget = Budget(services, refresh_seconds=None)
        order = await budget.spend(subject, 300, now=10.0)  # a quiet caller takes exactly its cost
        assert budget.refund(order, 290).currently_available == MAXIMUM - 10
        statements = _counting(services, monkeypatch)
        seen = [await budget.spend(subject, 10, now=10.0) for _ in range(11)]
        assert statements == [_TAKE]  # 100 spendable here: the eleventh request asks the row
        assert [s.currently_available for s in seen] == [MAXIMUM - 10 - 10 * n for n in range(1, 12)]
        row = await _row(services, subject)
        # the eleventh gave back the 190 and took 100 (twice the 110 spent, at most 100): 120 spent, 90 held
        assert row is not None and row[0] == MAXIMUM - 120 - 90

    run_services(database_url, work, **SLOW)


def test_leases_go_back_to_the_row_when_idle_and_on_shutdown(database_url: str) -> None:
    subject = _subject("idle")

    async def work(services: Services) -> list[float | None]:
        budget = Budget(services, refresh_seconds=None)
        await _holding_a_full_lease(budget, subject, 10.0)
        held = await _row(services, subject)
        await budget.refresh(now=10.0)  # not used since the last refresh: given back, forgotten
        idle = await _row(services, subject)
        await budget.refresh(now=10.0)  # nothing held any more: no statement
        again = await _row(services, subject)
        assert idle == again
        await _holding_a_full_lease(budget, subject, 10.0)
        await budget.close()
        closed = await _row(services, subject)
        return [r[0] if r is not None else None for r in (held, idle, closed)]

    assert run_services(database_url, work, **SLOW) == [MAXIMUM - 200, MAXIMUM - 100, MAXIMUM - 200]


def test_the_refresh_task_gives_an_idle_lease_back_by_itself(database_url: str) -> None:
    subject = _subject("task")

    async def work(services: Services) -> float | None:
        budget = Budget(services, refresh_seconds=0.05)
        for _ in range(2):  # the second takes 2: one spent, one held
            assert (await budget.spend(subject, 1)).charged
        for _ in range(300):  # up to 15 s
            row = await _row(services, subject)
            if row is not None and row[0] == MAXIMUM - 2:
                break
            await asyncio.sleep(0.05)
        await budget.close()
        row = await _row(services, subject)
        return row[0] if row is not None else None

    assert run_services(database_url, work, **SLOW) == MAXIMUM - 2


def _revoke(database_url: str, demo: Demo, caller: Principal) -> None:
    async def work(services: Services) -> None:
        await setup.reset_api_user_password(services, operator(demo.account_id), caller.id)

    run_services(database_url, work)


def test_a_revoked_credential_spends_nothing(database_url: str, demo: Demo) -> None:
    caller = api_user(database_url, demo)
    subject = f"api_user:{caller.id}"

    async def lease(services: Services) -> tuple[Budget, tuple[float, str] | None]:
        budget = Budget(services, refresh_seconds=None)
        await _holding_a_full_lease(budget, subject, 10.0, caller)
        return budget, await _row(services, subject)

    async def work(services: Services) -> None:
        budget, held = await lease(services)
        assert held is not None and held[0] == 8000 - 100 - 125  # 100 spent, 125 held (maximum / 64)
        await asyncio.to_thread(_revoke, database_url, demo, caller)
        # from the lease, nothing is checked: the request's own statement finds the token revoked, and the
        # request is given its charge back; the next spend asks the row, which refuses it
        status = await budget.spend(subject, 14, now=10.0, caller=caller)
        assert (status.charged, status.checked, status.currently_available) == (True, False, 8000 - 114)
        budget.revoked(status)
        with pytest.raises(Unauthorized):
            await budget.spend(subject, 14, now=10.0, caller=caller)
        with pytest.raises(Unauthorized):  # another process, holding no lease: refused by the row
            await Budget(services, refresh_seconds=None).spend(subject, 14, now=10.0, caller=caller)
        await budget.refresh(now=10.0)  # the lease cannot go back under a revoked credential: forfeited
        assert await _row(services, subject) == held  # nothing taken, given back or written
        with pytest.raises(Unauthorized):
            await budget.spend(subject, 1, now=10.0, caller=caller)

    run_services(database_url, work, cost_maximum=8000)
