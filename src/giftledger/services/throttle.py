"""The GraphQL cost budget, like Toggle's: each caller holds up to `cost_maximum` credits, spends a query's
cost on every request, and gets `cost_restore` credits back every `cost_restore_seconds`. With too few
credits left for a request, it is refused (nothing runs) until enough have come back.

Callers: an API user or a dashboard user once authenticated, otherwise the client address.

How it holds across processes without a database write per request. All of a merchant's tills share one API
user, so a statement per request on the caller's row made that row the hottest in the database: every
request of every till queued on its lock, a second round trip before the till's own statement. Instead each
serving process holds a lease per caller: a share of the caller's credits taken out of its row in one
statement (storage/throttle.py), spent here with no round trip, and given back through the same statement:
- when it runs short: the next spend gives back what is left and takes a new share, at least its own cost,
  more when the caller has been busy (twice what it spent in the last `REFRESH_SECONDS` or two), never more
  than `lease_size` (maximum / `LEASE_SHARE`). A caller that is not busy gets exactly its cost: one statement
  per request, as before, and nothing left to give back;
- every `REFRESH_SECONDS` (a task of this process, while it holds leases): a lease holding credits that was
  used is given back and taken again at its new size (so what this process reports sees the others' spends
  within that time), one that was not is given back and forgotten;
- on shutdown (`close`).
Settling a reply (credits given back, or taken beyond the estimate) changes only the lease; what would take
a lease above `lease_size` waits, unspendable, for the next statement to give it back to the row.
The row stays the truth: it never hands out more than it holds, so no credit is ever created, and a process
that dies forfeits only what it held (the restore rate brings it back). The price is the bound below, stated
in docs/security.md and held by tests/security/test_cost_leases.py: the row refills up to the maximum while
processes hold leases, so a caller can spend at most `lease_size` credits beyond what one shared bucket would
allow per process holding a lease; and a process may refuse a request while others still hold up to
`lease_size` each (given back within two refreshes of their last use).
Considered instead: folding the spend into the money statement (only a redemption has one, and the refusal
must come before anything runs), and a rate-limit library with a cost per hit (those with a PostgreSQL store,
such as pyrate-limiter, write a row per hit: the write this removes).

The credential. A lease's credits were handed out by a statement that found the caller's credential live; a
spend from the lease checks nothing (`BudgetStatus.checked` is False) and relies on the request's own
statements, which all check it (storage/callers.py). A request whose credential they find revoked is given
its charge back (`revoked`) and the lease trusts that credential no more: its next spend asks the row, which
refuses a revoked one, and its unspent credits are forfeited at the next refresh. A spend under any other
credential than the one its lease was taken under asks the row too."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field, replace

from giftledger.domain.errors import Retryable, Unauthorized
from giftledger.services.context import Principal, Services
from giftledger.storage.callers import Credential
from giftledger.storage.throttle import Buckets, Take

log = logging.getLogger("giftledger.throttle")

LEASE_SHARE = 64  # a process holds at most maximum / LEASE_SHARE of a caller's credits (125 of 8000)
REFRESH_SECONDS = 0.2


@dataclass(frozen=True)
class BudgetStatus:
    subject: str
    charged: bool  # False: refused, nothing taken
    cost: int
    available: float  # after this request
    maximum: int
    restore_per_second: float
    credential: Credential | None = None  # the caller's it was charged under (None: a client address)
    checked: bool = False  # this spend's statement found the credential live (a spend from a lease checks nothing)

    @property
    def currently_available(self) -> int:
        return max(0, math.floor(self.available))

    @property
    def retry_after_seconds(self) -> int:
        """How long until this request's cost is available again (0 when it was charged)."""
        if self.charged:
            return 0
        return max(1, math.ceil((self.cost - self.available) / self.restore_per_second))


def enabled(services: Services) -> bool:
    return services.settings.cost_maximum > 0


def subject_of(principal: Principal | None, client_address: str) -> str:
    return f"{principal.kind}:{principal.id}" if principal is not None else f"addr:{client_address}"


@dataclass(eq=False)
class _Lease:
    """What this process holds of one caller's budget."""

    credential: Credential | None  # the one the latest statement checked (None: a client address)
    trusted: bool = False  # that statement found it live, and no request has found it revoked since
    credits: float = 0.0  # spendable here, at most `lease_size` (below zero: spent beyond the estimates)
    surplus: float = 0.0  # given back beyond `lease_size`: returned to the row by the next statement
    row: float = 0.0  # what the caller's row held after this process's latest statement ...
    row_at: float = 0.0  # ... at this time
    spent: float = 0.0  # credits spent here since the latest refresh ...
    spent_before: float = 0.0  # ... and in the refresh period before it
    busy: int = 0  # spends (and a refresh) waiting for or running a statement
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one statement at a time per caller


class Budget:
    """This process's side of every caller's budget (one per process: the GraphQL guard's). `refresh_seconds`
    None: no refresh task (tests call `refresh` with the clock in hand)."""

    def __init__(self, services: Services, *, refresh_seconds: float | None = REFRESH_SECONDS) -> None:
        settings = services.settings
        self._buckets = Buckets(services.db)
        self.maximum = settings.cost_maximum
        self.restore_per_second = settings.cost_restore / settings.cost_restore_seconds
        self.lease_size = self.maximum / LEASE_SHARE
        self.refresh_seconds = refresh_seconds
        self._leases: dict[str, _Lease] = {}
        self._task: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    async def spend(
        self, subject: str, cost: int, *, caller: Principal | None = None, now: float | None = None
    ) -> BudgetStatus:
        """Take `cost` credits from the caller's budget if it holds that many (after refilling it): from this
        process's lease when it holds them, else through the caller's row, which checks `caller`'s credential
        and raises Unauthorized, spending nothing, when it is revoked."""
        at = time.time() if now is None else now
        credential = caller.credential if caller is not None else None
        lease = self._leases.get(subject)
        if lease is not None and self._covers(lease, credential, cost):
            return self._charge(subject, lease, cost, at, checked=False)
        if lease is None:
            lease = self._leases[subject] = _Lease(credential)
            self._start()
        lease.busy += 1
        try:
            async with lease.lock:
                if self._covers(lease, credential, cost):  # the statement another spend waited for brought enough
                    return self._charge(subject, lease, cost, at, checked=False)
                want = max(cost, min(self.lease_size, 2 * (lease.spent + lease.spent_before)))
                took = await self._exchange(subject, lease, credential, need=cost, want=want, now=at)
        finally:
            lease.busy -= 1
        if took is None:
            raise Unauthorized()
        if took.granted < cost:
            self._give(lease, took.granted)
            return self._status(subject, lease, False, cost, at, credential, checked=True)
        self._give(lease, took.granted - cost)
        lease.spent += cost
        return self._status(subject, lease, True, cost, at, credential, checked=True)

    def settle(self, status: BudgetStatus, actual: int) -> BudgetStatus:
        """Make the request's charge its actual cost: give back what its estimate took beyond it, or take what the
        reply cost beyond its estimate (the budget may then go below zero: later requests wait for it to refill)."""
        if actual < status.cost:
            return self.refund(status, status.cost - actual)
        if actual == status.cost or not status.charged:
            return status
        lease = self._lease_of(status)
        lease.credits -= actual - status.cost
        lease.spent += actual - status.cost
        return replace(status, cost=actual, available=status.available - (actual - status.cost))

    def refund(self, status: BudgetStatus, unused: int) -> BudgetStatus:
        """Give back the part of a charged request's cost it did not use (its estimate was above its actual cost)."""
        if unused <= 0 or not status.charged:
            return status
        lease = self._lease_of(status)
        self._give(lease, unused)
        lease.spent = max(0.0, lease.spent - unused)
        available = min(float(status.maximum), status.available + unused)
        return replace(status, cost=status.cost - unused, available=available)

    def revoked(self, status: BudgetStatus) -> None:
        """The request charged `status` found its caller's credential revoked: it spends nothing, and the
        caller's next spend asks the row again."""
        if status.charged:
            self._give(self._lease_of(status), status.cost)
        lease = self._leases.get(status.subject)
        if lease is not None and lease.credential == status.credential:
            lease.trusted = False

    async def refresh(self, now: float | None = None, *, closing: bool = False) -> None:
        """Give back every lease, taking again those used since the last refresh (unless `closing`)."""
        at = time.time() if now is None else now
        for subject, lease in list(self._leases.items()):
            if lease.busy:  # a spend's statement is on its way: it gives back and takes itself
                continue
            used = lease.spent > 0 and not closing
            lease.spent_before, lease.spent = lease.spent, 0.0
            if lease.credits == 0 and lease.surplus == 0:
                if not used:
                    self._forget(subject, lease)
                continue
            want = min(self.lease_size, 2 * lease.spent_before) if used else 0.0
            lease.busy += 1
            try:
                async with lease.lock:
                    took = await self._exchange(subject, lease, lease.credential, need=0, want=want, now=at)
            except Retryable:
                log.warning("cost budget lease of %s not given back: the database is unavailable", subject)
                if closing:  # shutting down: the others would wait as long, for the same answer
                    return
                continue
            finally:
                lease.busy -= 1
            if took is None:  # its credential is revoked: what it held is forfeited
                lease.credits = lease.surplus = 0.0
            else:
                self._give(lease, took.granted)
            if not used and lease.credits == 0 and lease.surplus == 0 and lease.spent == 0:
                self._forget(subject, lease)

    async def close(self) -> None:
        """Stop the refresh task and give back every lease (on shutdown)."""
        if self._task is not None and self._stop is not None:
            self._stop.set()
            await self._task
        self._task = None
        await self.refresh(closing=True)

    def _covers(self, lease: _Lease, credential: Credential | None, cost: int) -> bool:
        return lease.trusted and lease.credential == credential and lease.credits >= cost

    def _charge(self, subject: str, lease: _Lease, cost: int, at: float, *, checked: bool) -> BudgetStatus:
        lease.credits -= cost
        lease.spent += cost
        return self._status(subject, lease, True, cost, at, lease.credential, checked=checked)

    def _status(
        self,
        subject: str,
        lease: _Lease,
        charged: bool,
        cost: int,
        at: float,
        credential: Credential | None,
        *,
        checked: bool,
    ) -> BudgetStatus:
        """What the caller holds as this process sees it: its lease, and its row as last seen, refilled since."""
        row = min(self.maximum, lease.row + max(0.0, at - lease.row_at) * self.restore_per_second)
        available = min(self.maximum, lease.credits + lease.surplus + row)
        return BudgetStatus(
            subject, charged, cost, available, self.maximum, self.restore_per_second, credential, checked
        )

    async def _exchange(
        self, subject: str, lease: _Lease, credential: Credential | None, *, need: float, want: float, now: float
    ) -> Take | None:
        """One statement on the caller's row: give back all the lease holds, take up to `want` (at least `need`,
        or nothing). The caller adds what was granted to the lease. None: `credential` is revoked."""
        credits, surplus = lease.credits, lease.surplus
        lease.credits = lease.surplus = 0.0
        try:
            took = await self._buckets.take(
                subject,
                returned=credits + surplus,
                need=need,
                want=want,
                maximum=self.maximum,
                per_second=self.restore_per_second,
                now=now,
                credential=credential,
            )
        except Retryable:  # nothing was applied (storage/database.py): the lease keeps what it held
            lease.credits += credits
            lease.surplus += surplus
            raise
        # Anything else (cancelled mid-statement, say) may or may not have given them back: they are
        # forfeited rather than counted twice.
        if took is None:
            lease.credits += credits
            lease.surplus += surplus
            return None
        lease.credential, lease.trusted = credential, True
        lease.row, lease.row_at = took.available, now
        return took

    def _give(self, lease: _Lease, amount: float) -> None:
        """Add `amount` credits to the lease: up to `lease_size` spendable, the rest waiting to go back."""
        spendable = min(amount, max(0.0, self.lease_size - lease.credits))
        lease.credits += spendable
        lease.surplus += amount - spendable

    def _lease_of(self, status: BudgetStatus) -> _Lease:
        lease = self._leases.get(status.subject)
        if lease is None:  # given up meanwhile: a lease of its own carries the credits back to the row
            lease = self._leases[status.subject] = _Lease(status.credential)
            self._start()
        return lease

    def _forget(self, subject: str, lease: _Lease) -> None:
        if not lease.busy and self._leases.get(subject) is lease:
            del self._leases[subject]

    def _start(self) -> None:
        if self.refresh_seconds is None or (self._task is not None and not self._task.done()):
            return
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._refreshing(self._stop))

    async def _refreshing(self, stop: asyncio.Event) -> None:
        while self._leases and self.refresh_seconds is not None and not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.refresh_seconds)
            except TimeoutError:
                await self.refresh()
