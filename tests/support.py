"""Test support: the test database server, a live `giftledger serve`, GraphQL calls, ledger snapshots."""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from giftledger.app import build_services
from giftledger.auth import passwords
from giftledger.config import Settings
from giftledger.services import demo as demo_service
from giftledger.services import setup
from giftledger.services.access import recognise
from giftledger.services.context import Principal, Services
from giftledger.services.demo import load_demo
from giftledger.storage import migrate
from giftledger.storage.database import Database
from giftledger.storage.people import Directory
from giftledger.storage.tables import cards, line_items, orders, transactions

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"


LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/test"


def server_url_option(parser: argparse.ArgumentParser) -> None:
    """`--database-url` of the bench's soak and fuzz scripts: the server they make a fresh database on."""
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_DATABASE_URL", LOCAL_SERVER),
        help="a PostgreSQL server URL, on which a fresh database is created and dropped (default: %(default)s)",
    )


def database_beside(url: str, name: str) -> str:
    """The URL of database `name` on the server `url` names (its socket directory or host kept)."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def test_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(database_url=database_url, secret_key=SECRET, environment="test", **overrides)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# Set-up and checks (`with_services`) run in one event loop per test process, in a thread of its own, which keeps
# one connection pool per database: a fresh engine per call cost a new connection and compiling every statement
# again, most of what a ledger snapshot costs (hundreds of them a run). Each call gets services of its own.
_loop: asyncio.AbstractEventLoop | None = None
_loop_thread: threading.Thread | None = None
_loop_started = threading.Lock()
_pools: dict[str, Database] = {}


def _set_up_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_thread
    with _loop_started:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            _loop_thread = threading.Thread(target=_loop.run_forever, name="tests-with-services", daemon=True)
            _loop_thread.start()
        return _loop


def _in_set_up_loop(coro: Any) -> Any:
    if threading.current_thread() is _loop_thread:
        coro.close()
        raise RuntimeError("with_services inside with_services: await the work instead")
    return asyncio.run_coroutine_threadsafe(coro, _set_up_loop()).result()


async def _with_services(url: str, work: Any) -> Any:
    services = build_services(test_settings(url))
    kept = _pools.setdefault(url, services.db)
    if kept is not services.db:
        await services.db.dispose()  # never connected
        services = replace(services, db=kept)
    return await work(services)


def with_services(url: str, work: Any) -> Any:
    """Run `work(services)` against `url` (for set-up and checks in sync tests): in this process's set-up loop,
    over the pool it keeps for `url` until `drop_postgres_database` drops that database."""
    return _in_set_up_loop(_with_services(url, work))


def _release_pool(url: str) -> None:
    async def release() -> None:
        pool = _pools.pop(url, None)
        if pool is not None:
            await pool.dispose()

    _in_set_up_loop(release())


def migrate_database(url: str) -> None:
    async def work(services: Services) -> None:
        await migrate.upgrade(services.db.engine)

    with_services(url, work)


def create_postgres_database(base_url: str) -> str:
    """A fresh, empty PostgreSQL database next to the one `base_url` names; returns its URL."""
    import asyncpg  # type: ignore[import-untyped]

    name = f"giftledger_test_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(base_url, timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    run(create())
    return database_beside(base_url, name)


def drop_postgres_database(base_url: str, url: str) -> None:
    import asyncpg

    name = make_url(url).database
    _release_pool(url)

    async def drop() -> None:
        conn = await asyncpg.connect(base_url, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run(drop())


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, migrated database on the server `server_url` names, dropped when the block ends."""
    url = create_postgres_database(server_url)
    try:
        migrate_database(url)
        yield url
    finally:
        drop_postgres_database(server_url, url)


@functools.cache
def tls() -> ssl.SSLContext:
    """The TLS context of every HTTP client the tests make (`verify=tls()`): httpx builds one for each client
    otherwise, loading the CA bundle (~40 ms of CPU), and the suite makes thousands, to plain-HTTP servers."""
    return httpx.create_ssl_context()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str  # http://127.0.0.1:PORT
    database_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def graphql_url(self) -> str:
        return f"{self.url}/graphql"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# Every test reaches a server from 127.0.0.1, and most share the session database: a server a test starts lifts the
# per-address login and card-miss limits unless its `env` sets them, or tests that refuse logins on purpose lock
# out the rest (a two-worker server's login was refused so in CI). The limits' own tests set them.
SHARED_ADDRESS_LIMITS = {
    "GIFTLEDGER_LOGIN_ADDRESS_FAILURE_LIMIT": "1000000",
    "GIFTLEDGER_CARD_MISS_ADDRESS_LIMIT": "1000000",
}


def start_server(database_url: str, log_dir: Path, env: dict[str, str] | None = None, workers: int = 1) -> LiveServer:
    port = free_port()
    log_path = log_dir / f"server-{port}.log"
    environment = {
        **os.environ,
        "GIFTLEDGER_ENV": "test",
        "GIFTLEDGER_SECRET_KEY": SECRET,
        "GIFTLEDGER_DATABASE_URL": database_url,
        **SHARED_ADDRESS_LIMITS,
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "giftledger", "serve", "--host", "127.0.0.1", "--port", str(port)]
            + (["--workers", str(workers)] if workers != 1 else []),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=str(log_dir),
        )
    server = LiveServer(f"http://127.0.0.1:{port}", database_url, process, log_path)
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=1, verify=tls()) as probe:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {log_path.read_text()}")
            try:
                if probe.get(f"{server.url}/healthz").status_code == 200:
                    return server
            except httpx.HTTPError:
                time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not start: {log_path.read_text()}")


@dataclass(frozen=True)
class Demo:
    """A fresh demo account of its own for one test."""

    account_id: int
    merchant_id: int
    product_id: int
    price_modifier_ids: list[int]
    api_username: str
    api_password: str
    owner_email: str
    owner_password: str
    unit_epos_references: list[str]
    card_references: list[str]

    @property
    def epos(self) -> str:
        return self.unit_epos_references[0]


# A demo account's owner and API user each have a password, and hashing one (argon2id) is a third of what creating
# the account costs; the suite creates hundreds, and its team members share one password. The demo accounts of one
# test process share one owner password and one API password (random, drawn when the process starts), and each
# password a test names as known is hashed once per process: the stored hash verifies as a fresh one would, and
# logins check it as for any account. Tests about hashing itself call `passwords.hash_password`.
DEMO_OWNER_PASSWORD = passwords.generate_password(16)
DEMO_API_PASSWORD = passwords.generate_password()
_known: ContextVar[frozenset[str]] = ContextVar("known_passwords", default=frozenset())
_demo: ContextVar[bool] = ContextVar("demo_passwords", default=False)
_hashes: dict[str, str] = {}
_installing = threading.Lock()
_installed = False


def _install_known_passwords() -> None:
    """Once per process: the set-up services (services/setup.py, services/demo.py) hash and draw passwords as ever,
    except in a context that `hashed_once` or `new_demo` set (a context variable: no other task or thread sees it)."""
    global _installed
    with _installing:
        if _installed:
            return
        hash_password, draw_api, draw_owner = (
            setup.hash_password,
            setup.generate_password,
            demo_service.generate_password,
        )

        def hashed(password: str) -> str:
            if password not in _known.get():
                return hash_password(password)
            if password not in _hashes:
                _hashes[password] = hash_password(password)
            return _hashes[password]

        def drawn(fixed: str, draw: Any) -> Any:
            return lambda *args: fixed if _demo.get() else draw(*args)

        mock.patch.object(setup, "hash_password", hashed).start()
        mock.patch.object(setup, "generate_password", drawn(DEMO_API_PASSWORD, draw_api)).start()
        mock.patch.object(demo_service, "generate_password", drawn(DEMO_OWNER_PASSWORD, draw_owner)).start()
        _installed = True


@contextmanager
def hashed_once(*known: str) -> Iterator[None]:
    """In this block (this task or thread), the set-up services hash each of the `known` passwords once per test
    process and store that hash every time; any other password is hashed as ever."""
    _install_known_passwords()
    token = _known.set(_known.get() | frozenset(known))
    try:
        yield
    finally:
        _known.reset(token)


def new_demo(database_url: str, name: str | None = None) -> Demo:
    _install_known_passwords()

    async def work(services: Services) -> dict[str, Any]:
        _demo.set(True)  # this task's own context
        with hashed_once(DEMO_OWNER_PASSWORD, DEMO_API_PASSWORD):
            return await load_demo(services, name or f"Test {uuid.uuid4().hex[:12]}")

    data = with_services(database_url, work)
    return Demo(**{k: data[k] for k in Demo.__dataclass_fields__})


class Api:
    """A GraphQL caller, as a till would be: JSON over HTTP, a bearer token from loginUser."""

    def __init__(self, server: LiveServer, token: str | None = None) -> None:
        self.server = server
        self.token = token
        self.http = httpx.Client(timeout=30, verify=tls())
        self.extensions: dict[str, Any] | None = None  # of the last reply `call` returned

    def post(self, query: str, variables: dict[str, Any] | None = None, **extra: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        body = {"query": query, "variables": variables or {}, **extra}
        return self.http.post(self.server.graphql_url, json=body, headers=headers)

    def call(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The reply's `data` and `errors`; its top-level `extensions` (the query cost) go to `self.extensions`."""
        response = self.post(query, variables)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        self.extensions = body.pop("extensions", None)
        return body

    def login(self, username: str, password: str) -> httpx.Response:
        response = self.post(LOGIN, {"username": username, "password": password})
        token = response.headers.get("X-Authorization", "")
        if token.startswith("Bearer "):
            self.token = token.removeprefix("Bearer ")
        return response


LOGIN = """
query($email:String,$username:String, $password:String!){
 loginUser(email:$email,username:$username,password:$password) {
    id
  }
}
"""


def logged_in(server: LiveServer, demo: Demo) -> Api:
    """A till that logged in with the demo account's API user (loginUser: an argon2id check of its password)."""
    api = Api(server)
    response = api.login(demo.api_username, demo.api_password)
    assert response.status_code == 200 and api.token, response.text
    return api


async def api_user_token(services: Services, username: str) -> str:
    """A token for the API user `username`, issued as loginUser issues one once the password is right."""
    async with services.db.read() as conn:
        api_user = await Directory(conn).api_user_by_username(username)
    assert api_user is not None, username
    return services.tokens.issue("api_user", api_user.id, api_user.account_id, api_user.token_version)


async def api_user_principal(services: Services, demo: Demo) -> Principal:
    """The demo account's API user as a till signed in with it is recognised (`api_user_token`)."""
    return await recognise(services, await api_user_token(services, demo.api_username))


async def owner_token(services: Services, demo: Demo) -> str:
    """A token for the demo account's owner, issued as loginUser issues one for a team member of one account."""
    async with services.db.read() as conn:
        owner = await Directory(conn).user_by_email(demo.owner_email)
    assert owner is not None, demo.owner_email
    return services.tokens.issue("user", owner.id, demo.account_id, owner.token_version)


def owner_signed_in(server: LiveServer, demo: Demo) -> Api:
    """A caller holding a token for the demo account's owner, issued without checking the password (as `signed_in`)."""
    token: str = with_services(server.database_url, lambda s: owner_token(s, demo))
    return Api(server, token)


def signed_in(server: LiveServer, demo: Demo) -> Api:
    """A till holding a token for the demo account's API user, issued without checking its password: for the
    tests that are not about logging in. A password check is an argon2id hash (tens of ms of CPU), which the server
    runs at the lowest CPU priority (auth/passwords.py), so a busy machine delays it by up to seconds."""
    token: str = with_services(server.database_url, lambda s: api_user_token(s, demo.api_username))
    return Api(server, token)


@dataclass(frozen=True)
class Snapshot:
    """Everything a refused request must leave untouched, for one account."""

    balances: dict[str, int]
    statuses: dict[str, str]
    line_items: int
    transactions: int
    orders: int


def snapshot(database_url: str, account_id: int) -> Snapshot:
    async def work(services: Services) -> Snapshot:
        async with services.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(cards.c.card_reference, cards.c.balance, cards.c.status).where(
                        cards.c.account_id == account_id
                    )
                )
            ).all()

            async def count(table: Any) -> int:
                result = await conn.execute(
                    select(func.count()).select_from(table).where(table.c.account_id == account_id)
                )
                return int(result.scalar_one())

            return Snapshot(
                balances={r.card_reference: int(r.balance) for r in rows},
                statuses={r.card_reference: r.status for r in rows},
                line_items=await count(line_items),
                transactions=await count(transactions),
                orders=await count(orders),
            )

    result: Snapshot = with_services(database_url, work)
    return result


def ledger_sums(database_url: str, account_id: int) -> dict[str, tuple[int, int]]:
    """card -> (stored balance, sum of its line items)."""

    async def work(services: Services) -> dict[str, tuple[int, int]]:
        async with services.db.engine.connect() as conn:
            summed = (
                select(line_items.c.card_id, func.sum(line_items.c.value).label("total"))
                .where(line_items.c.account_id == account_id)
                .group_by(line_items.c.card_id)
                .subquery()
            )
            rows = (
                await conn.execute(
                    select(cards.c.card_reference, cards.c.balance, func.coalesce(summed.c.total, 0))
                    .select_from(cards.outerjoin(summed, summed.c.card_id == cards.c.id))
                    .where(cards.c.account_id == account_id)
                )
            ).all()
            return {r[0]: (int(r[1]), int(r[2])) for r in rows}

    result: dict[str, tuple[int, int]] = with_services(database_url, work)
    return result


@contextmanager
def unchanged(database_url: str, account_id: int) -> Iterator[None]:
    """Asserts that the block changed nothing in the account's ledger."""
    before = snapshot(database_url, account_id)
    yield
    assert snapshot(database_url, account_id) == before


def dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)


def qr_text(png: bytes) -> str:
    """The text of the one QR code in a PNG image, read back from its pixels (zxing-cpp)."""
    import io

    import zxingcpp
    from PIL import Image

    [found] = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(found.text)
