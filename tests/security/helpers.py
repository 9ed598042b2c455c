"""Helpers for the security tests: services with chosen settings, isolated servers, audit look-ups."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from giftledger.app import build_services
from giftledger.domain.catalogue import POINTONE
from giftledger.domain.permissions import Role
from giftledger.services import audit, setup
from giftledger.services.context import Principal, Services
from giftledger.storage.audit import AuditEventRow
from giftledger.storage.unit_of_work import UnitOfWork
from tests.support import (
    Demo,
    LiveServer,
    create_postgres_database,
    drop_postgres_database,
    migrate_database,
    start_server,
    test_settings,
)

T = TypeVar("T")


def run_services(database_url: str, work: Callable[[Services], Awaitable[T]], **settings: Any) -> T:
    """`work(services)` in a fresh event loop, with test settings changed by `settings`."""

    async def main() -> T:
        services = build_services(test_settings(database_url, **settings))
        try:
            return await work(services)
        finally:
            await services.db.dispose()

    return asyncio.run(main())


@contextmanager
def isolated_server(database_url: str, pg_base_url: str, log_dir: Path, env: dict[str, str]) -> Iterator[LiveServer]:
    """A live server on a database of its own, so that what its tests count per client address (all of them
    come from 127.0.0.1) never reaches another test's server."""
    url = create_postgres_database(pg_base_url)
    try:
        migrate_database(url)
        server = start_server(url, log_dir, env)
        try:
            yield server
        finally:
            server.stop()
    finally:
        drop_postgres_database(pg_base_url, url)


def wait_for(condition: Callable[[], T | None], timeout: float = 15.0, interval: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy (and return that), or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def operator(account_id: int) -> Principal:
    return setup.operator(account_id)


def api_user(database_url: str, demo: Demo, client_address: str | None = None) -> Principal:
    """The demo's PointOne API user as the principal its token stands for."""

    async def work(services: Services) -> Principal:
        [row] = await setup.list_api_users(services, operator(demo.account_id), POINTONE)
        return Principal(
            "api_user",
            row.id,
            demo.account_id,
            Role.API_USER,
            POINTONE,
            row.username,
            client_address=client_address,
            token_version=row.token_version,
        )

    return run_services(database_url, work)


def audit_events(database_url: str, account_id: int, operation: str | None = None) -> list[AuditEventRow]:
    """The account's audit records, oldest first (read as its Store Owner would)."""

    async def work(services: Services) -> list[AuditEventRow]:
        page = await audit.list_events(services, operator(account_id), limit=100, operation=operation)
        return list(reversed(page.data))

    return run_services(database_url, work)


def events_after(database_url: str, account_id: int, count: int, operation: str | None = None) -> list[AuditEventRow]:
    """Wait until the account has `count` audit records (they are written behind the request), then return
    them, oldest first."""
    return wait_for(lambda: rows if len(rows := audit_events(database_url, account_id, operation)) >= count else None)


async def record(services: Services, principal: Principal | None, **facts: Any) -> int:
    """One audit record written in a transaction of its own (`services.audit.add_event`'s facts)."""
    async with services.db.transaction() as conn:
        return await audit.add_event(UnitOfWork(conn, principal.account_id if principal else 0), principal, **facts)
