"""The database: PostgreSQL, through one connection pool per process (SQLAlchemy's, over asyncpg).

Two ways in, over the same pooled connections:
- `transaction()` and `read()`: SQLAlchemy Core connections, for the repositories.
- `fetchrow()` and `fetch()`: one fixed SQL statement on a pooled connection's asyncpg connection, in
  autocommit mode. asyncpg prepares each statement text once per connection (its statement cache; not behind
  PgBouncer, below) and every later call only binds and executes: the tills' hot statements (storage/tills.py)
  go this way, because building a SQLAlchemy expression and running it through the greenlet bridge costs more
  than the statement.

No pre-ping on checkout (a round trip on every request): a pooled connection the server has closed meanwhile
(asyncpg notices the server's goodbye) is swapped for a new one at checkout, through SQLAlchemy's documented
`checkout` event; one that breaks during a statement is closed, and the caller is told to retry.

Two URL forms name more than one server (a primary and its standbys): libpq's, `postgresql://h1:5432,h2:5432/db`,
and SQLAlchemy's, `postgresql:///db?host=h1:5432&host=h2:5432`; with `target_session_attrs=read-write` each new
connection goes to whichever of them accepts writes (asyncpg's multi-host connect), so after a failover the pool's
next connections reach the new primary.

Behind PgBouncer in transaction mode (`pooler="pgbouncer"`, GIFTLEDGER_DATABASE_POOLER), consecutive transactions
of one of our connections may run on different server connections, so nothing may outlive a statement there:
no statement cache (asyncpg's and SQLAlchemy's are off) and every statement unnamed (PostgreSQL replaces it with
the next one: nothing is left behind on a server connection another client gets). asyncpg sends an unnamed
statement's Parse and Describe with a Flush, not a Sync, so PgBouncer keeps the server connection until the Bind
and Execute that follow have run: a statement outside a transaction is safe too. Each statement then costs a
Parse and its planning, every time (docs/operations.md has the figures). And no session settings at start-up:
PgBouncer refuses unknown start-up parameters, so the bounds are set on the database role instead
(docs/operations.md).

Failures to reach the database (connection lost, server down or starting, pool exhausted, timeouts,
serialization failures) become `Retryable`: the transaction is gone and nothing was applied. A write that
breaks a constraint becomes `ConstraintBroken`, naming it. Both ways in say the same."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from time import perf_counter
from typing import Any, NoReturn

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection

from giftledger import metrics
from giftledger.domain.errors import Retryable

Record = Any  # asyncpg.Record: read by column name
CONNECT_TIMEOUT_S = 5.0  # connecting, or waiting for a busy pool: then the caller is told to retry

# PostgreSQL error classes after which the transaction is gone and nothing was applied: connection
# exceptions (08), shutdown and start-up (57P01-57P03), too many clients, lock and statement timeouts,
# serialization failures and deadlocks.
RETRYABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300", "55P03", "57014", "40001", "40P01")


class ConstraintBroken(Exception):
    """A write broke the named constraint (nothing was applied): most often a race that another request won,
    such as a reused transaction reference or a second reversal of one line item."""

    def __init__(self, constraint: str) -> None:
        super().__init__(constraint)
        self.constraint = constraint


# What a statement may raise besides `Retryable` (a refused write, a bad value), on either way in.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    ConstraintBroken,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    DBAPIError,
)


def session_settings(statement_timeout_ms: int) -> dict[str, str]:
    """What every connection of ours is bounded by."""
    return {
        "statement_timeout": str(statement_timeout_ms),
        "lock_timeout": str(statement_timeout_ms // 2),
        "idle_in_transaction_session_timeout": str(statement_timeout_ms * 3),
        "application_name": "giftledger",
    }


POOLERS = ("none", "pgbouncer")  # what sits between giftledger and PostgreSQL (see the module's docstring)
DEFAULT_PORT = 5432


def driver_url(url: str) -> str:
    """A plain `postgresql://` URL with the driver we use (asyncpg) named; libpq's multi-host form
    (`h1:5432,h2:5433` where the host goes) becomes SQLAlchemy's (`?host=h1:5432&host=h2:5433`)."""
    scheme, sep, rest = url.partition("://")
    authority, _, tail = rest.partition("/")
    credentials, at, hosts = authority.rpartition("@")
    if sep and "," in hosts:
        query = "&".join(f"host={_host_and_port(h)}" for h in hosts.split(","))
        path, question, given = tail.partition("?")
        url = f"{scheme}://{credentials}{at}/{path}?{query}" + (f"&{given}" if question and given else "")
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def _host_and_port(host: str) -> str:
    """`host:port` for one host of a multi-host URL (asyncpg needs every port: PostgreSQL's is the default)."""
    host = host.strip()
    if host.startswith("["):  # [IPv6]:port
        return host if "]:" in host else f"{host}:{DEFAULT_PORT}"
    return host if ":" in host else f"{host}:{DEFAULT_PORT}"


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` means the database could not do the work (nothing was applied; try again)."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    seen: BaseException | None = error
    while seen is not None:  # SQLAlchemy wraps the driver's error, which wraps asyncpg's: the first that says
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str):
            return state.startswith(RETRYABLE_SQLSTATES)
        if isinstance(seen, asyncpg.InterfaceError | OSError | TimeoutError | PoolTimeout | ConnectionError):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


class Database:
    """Hands out transactions, and runs the hot statements, over one pool."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        statement_timeout_ms: int = 10_000,
        pool_timeout_s: float = CONNECT_TIMEOUT_S,
        pooler: str = "none",
    ) -> None:
        if pooler not in POOLERS:
            raise ValueError(f"pooler must be one of {', '.join(POOLERS)}")
        self.pooled_by_transaction = pooler == "pgbouncer"
        connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT_S}
        if self.pooled_by_transaction:
            connect_args |= {
                "server_settings": {"application_name": "giftledger"},
                "statement_cache_size": 0,  # asyncpg's
                "prepared_statement_cache_size": 0,  # SQLAlchemy's
                "prepared_statement_name_func": _unnamed,
            }
        else:
            connect_args["server_settings"] = session_settings(statement_timeout_ms)
        self.engine: AsyncEngine = create_async_engine(
            driver_url(url), pool_size=pool_size, max_overflow=0, pool_timeout=pool_timeout_s, connect_args=connect_args
        )
        event.listen(self.engine.sync_engine, "checkout", _refuse_closed)
        # connections in use, for the metrics (after `_refuse_closed`: a connection it refuses is not handed out)
        event.listen(self.engine.sync_engine, "checkout", metrics.connection_checked_out)
        event.listen(self.engine.sync_engine, "checkin", metrics.connection_checked_in)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One database transaction: committed when the block ends normally, rolled back otherwise."""
        async with _unavailable_is_retryable(), metrics.WaitingFor[AsyncConnection](self.engine.begin()) as conn:
            yield conn

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads that need no transaction of their own (autocommit: no BEGIN and COMMIT)."""
        async with _unavailable_is_retryable(), metrics.WaitingFor[AsyncConnection](self.engine.connect()) as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")

    async def fetchrow(self, sql: str, *args: Any) -> Record | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetch(self, sql: str, *args: Any) -> list[Record]:
        began = perf_counter()
        pooled, conn = await self._checkout()
        sent = perf_counter()
        try:
            rows = await conn.fetch(sql, *args)
        except BaseException as error:
            _give_back_after(pooled, conn, error)
        pooled.close()
        metrics.statement_timed(sent - began, perf_counter() - sent)
        return list(rows)

    async def _checkout(self) -> tuple[PoolProxiedConnection, asyncpg.Connection]:
        """A pooled connection and its asyncpg connection, for one statement (no context manager around it: these
        are the tills' hot paths)."""
        try:
            with metrics.waiting():  # for a connection (the pool's metric)
                pooled = await self.engine.raw_connection()
        except Exception as error:
            if is_unavailable(error):
                raise Retryable() from error
            raise
        return pooled, pooled.driver_connection

    async def dispose(self) -> None:
        await self.engine.dispose()


def _unnamed() -> str:
    """The name of every statement behind a transaction-mode pooler: the unnamed one, which the next replaces."""
    return ""


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """At checkout: a connection the server closed while it was idle is not handed out (the pool opens another)."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this connection while it was idle")


def _give_back_after(pooled: PoolProxiedConnection, conn: asyncpg.Connection, error: BaseException) -> NoReturn:
    """After a statement failed on `pooled`: when the server answered with an error, the connection is as good
    as before and goes back; anything else (lost, cancelled or timed out mid-statement) leaves it in a state
    nobody knows: it is closed. Then `ConstraintBroken` for a broken constraint, `Retryable` when the database
    could not do the work, or else the error itself."""
    if isinstance(error, asyncpg.PostgresError) and not conn.is_closed() and not conn.is_in_transaction():
        pooled.close()
    else:
        pooled.invalidate()
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        raise ConstraintBroken(error.constraint_name or str(error)) from error
    if isinstance(error, Exception) and is_unavailable(error):
        raise Retryable() from error
    raise error


@asynccontextmanager
async def _unavailable_is_retryable() -> AsyncIterator[None]:
    try:
        yield
    except IntegrityError as error:
        cause = error.orig.__cause__ if error.orig is not None else None
        raise ConstraintBroken(str(getattr(cause, "constraint_name", None) or error.orig)) from error
    except Exception as error:
        if is_unavailable(error):
            raise Retryable() from error
        raise
