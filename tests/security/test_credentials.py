"""Passwords and API secrets (argon2id, never stored, logged or shown again), login throttling (per login
name and per client address, the same reply whether the name exists or not, visible to the Store Owner),
and revocation: a deleted API user, a reset API password or a removed team member stops working at once."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from giftledger.auth.passwords import hash_password, verify_password
from giftledger.domain.catalogue import POINTONE
from giftledger.domain.errors import Forbidden, Throttled, Unauthorized
from giftledger.domain.permissions import Role
from giftledger.services import access, audit, setup, team
from giftledger.services.access import LOGIN_THROTTLED
from giftledger.services.context import Principal, Services
from giftledger.storage.tables import api_users, users
from tests.api import documents
from tests.security.helpers import isolated_server, operator, run_services
from tests.support import LOGIN, Api, Demo, LiveServer, logged_in, new_demo

OWASP_MEMORY_KIB = 19_456
OWASP_TIME_COST = 2


def test_passwords_are_hashed_with_argon2id_at_or_above_owasp_minimums() -> None:
    hashed = hash_password("correct horse battery staple")
    assert hashed.startswith("$argon2id$v=19$")
    settings = dict(item.split("=") for item in hashed.split("$")[3].split(","))
    assert int(settings["m"]) >= OWASP_MEMORY_KIB and int(settings["t"]) >= OWASP_TIME_COST
    assert int(settings["p"]) == 1
    assert verify_password(hashed, "correct horse battery staple")
    assert not verify_password(hashed, "correct horse battery stapler")
    assert not verify_password(None, "anything")
    assert hash_password("same") != hash_password("same")  # salted


def test_an_api_secret_is_shown_once_and_only_its_hash_is_kept(database_url: str, demo: Demo) -> None:
    async def work(services: Services) -> tuple[setup.NewApiUser, list[object], str]:
        new = await setup.create_api_user(services, operator(demo.account_id), POINTONE)
        listed = await setup.list_api_users(services, operator(demo.account_id), POINTONE)
        async with services.db.transaction() as conn:
            stored = (await conn.execute(select(api_users.c.password_hash).where(api_users.c.id == new.id))).scalar()
        return new, [r for r in listed if r.id == new.id], str(stored)

    new, listed, stored = run_services(database_url, work)
    assert len(new.password) >= 24
    assert stored.startswith("$argon2id$") and new.password not in stored
    assert verify_password(stored, new.password)
    [row] = listed
    assert new.password not in repr(row)  # the list never carries the secret


def test_passwords_never_reach_the_server_log(server: LiveServer, demo: Demo) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    till = Api(server)
    till.login(demo.api_username, wrong)
    till.login(f"nobody-{uuid.uuid4().hex[:8]}", wrong)
    assert till.login(demo.api_username, demo.api_password).status_code == 200
    log = server.log_path.read_text(errors="replace")
    assert wrong not in log and demo.api_password not in log and (till.token or "x") not in log


def _address() -> str:
    return f"203.0.113.{uuid.uuid4().int % 250 + 1}-{uuid.uuid4().hex[:6]}"


async def _fail(services: Services, name: str, address: str, times: int) -> None:
    for _ in range(times):
        with pytest.raises(Unauthorized) as caught:
            await access.log_in(services, username=name, email=None, password="wrong", client_address=address)
        assert caught.value.message == "Unauthorized"


def test_ten_failures_for_a_name_refuse_it_even_with_the_right_password(database_url: str, demo: Demo) -> None:
    async def work(services: Services) -> tuple[str, str, list[audit.LoginThrottle]]:
        await _fail(services, demo.api_username, _address(), 10)
        with pytest.raises(Throttled) as right:
            await access.log_in(
                services, username=demo.api_username, email=None, password=demo.api_password, client_address=_address()
            )
        ghost = f"ghost-{uuid.uuid4().hex[:10]}"
        await _fail(services, ghost, _address(), 10)
        with pytest.raises(Throttled) as missing:
            await access.log_in(services, username=ghost, email=None, password="x", client_address=_address())
        seen = await audit.login_failures(services, operator(demo.account_id))
        return right.value.message, missing.value.message, seen

    right, missing, seen = run_services(database_url, work)
    assert right == missing == LOGIN_THROTTLED == "Too many failed login attempts. Try again later."
    assert [(s.name, s.kind, s.failures, s.throttled) for s in seen] == [(demo.api_username, "api_user", 10, True)]


def test_nine_failures_do_not_throttle(database_url: str, demo: Demo) -> None:
    async def work(services: Services) -> list[audit.LoginThrottle]:
        await _fail(services, demo.api_username, _address(), 9)
        login = await access.log_in(
            services, username=demo.api_username, email=None, password=demo.api_password, client_address=_address()
        )
        assert login.principal.account_id == demo.account_id
        return await audit.login_failures(services, operator(demo.account_id))

    seen = run_services(database_url, work)
    assert [(s.name, s.failures, s.throttled) for s in seen] == [(demo.api_username, 9, False)]


def test_ten_failures_from_an_address_refuse_every_name_from_it(database_url: str, demo: Demo) -> None:
    address = _address()

    async def work(services: Services) -> str:
        for _ in range(10):
            await _fail(services, f"ghost-{uuid.uuid4().hex[:10]}", address, 1)
        with pytest.raises(Throttled) as caught:
            await access.log_in(
                services, username=demo.api_username, email=None, password=demo.api_password, client_address=address
            )
        elsewhere = await access.log_in(
            services, username=demo.api_username, email=None, password=demo.api_password, client_address=_address()
        )
        assert elsewhere.principal.kind == "api_user"
        return caught.value.message

    assert run_services(database_url, work) == LOGIN_THROTTLED


def test_team_members_failures_are_listed_and_only_the_owner_sees_them(database_url: str, demo: Demo) -> None:
    async def work(services: Services) -> list[audit.LoginThrottle]:
        for _ in range(3):
            with pytest.raises(Unauthorized):
                await access.log_in(
                    services, username=None, email=demo.owner_email.upper(), password="wrong", client_address=_address()
                )
        for role in Role:
            if role is not Role.STORE_OWNER:
                with pytest.raises(Forbidden):
                    await audit.login_failures(services, Principal("user", 1, demo.account_id, role, None, "x"))
        return await audit.login_failures(services, operator(demo.account_id))

    seen = run_services(database_url, work)
    assert [(s.name, s.kind, s.failures, s.throttled) for s in seen] == [(demo.owner_email, "user", 3, False)]


def test_login_throttling_over_http_gives_the_same_reply_for_real_and_unknown_names(
    database_url: str, pg_base_url: str, tmp_path: Path
) -> None:
    """Every attempt comes from 127.0.0.1 here, so the per-address count (4) is what throttles first: real and
    unknown names alternate and get byte-for-byte the same replies, before and after the throttle."""
    with isolated_server(
        database_url,
        pg_base_url,
        tmp_path,
        {"GIFTLEDGER_LOGIN_FAILURE_LIMIT": "4", "GIFTLEDGER_LOGIN_ADDRESS_FAILURE_LIMIT": "4"},
    ) as server:
        demo = new_demo(server.database_url)
        ghost = f"ghost-{uuid.uuid4().hex[:10]}"
        till = Api(server)

        def attempt(name: str, password: str = "wrong") -> dict[str, object]:
            response = till.post(LOGIN, {"username": name, "password": password})
            assert response.status_code == 200 and "X-Authorization" not in response.headers
            body: dict[str, object] = response.json()
            body.pop("extensions")
            return body

        codes = []
        for _ in range(4):
            real, unknown = attempt(demo.api_username), attempt(ghost)
            assert real == unknown
            codes.append(real["errors"][0]["extensions"]["code"])  # type: ignore[index]
        assert codes == ["UNAUTHENTICATED", "UNAUTHENTICATED", "THROTTLED", "THROTTLED"]
        right = attempt(demo.api_username, demo.api_password)
        assert right == attempt(ghost)
        assert right["errors"] == [  # type: ignore[comparison-overlap]
            {
                "message": LOGIN_THROTTLED,
                "locations": [{"line": 3, "column": 2}],
                "path": ["loginUser"],
                "customer_facing": False,
                "extensions": {"code": "THROTTLED"},
            }
        ]


# --- revocation ---------------------------------------------------------------------------------------


def test_resetting_an_api_password_revokes_its_tokens_at_once(server: LiveServer, demo: Demo, api: Api) -> None:
    assert "errors" not in api.call(documents.PRODUCTS, {"account_id": demo.account_id})

    async def reset(services: Services) -> str:
        [row] = await setup.list_api_users(services, operator(demo.account_id), POINTONE)
        return await setup.reset_api_user_password(services, operator(demo.account_id), row.id)

    new_password = run_services(server.database_url, reset)
    body = api.call(documents.PRODUCTS, {"account_id": demo.account_id})
    assert body["errors"][0]["message"] == "Unauthorized" and body["data"] == {"Products": None}
    assert Api(server).login(demo.api_username, demo.api_password).json()["errors"][0]["message"] == "Unauthorized"
    fresh = Api(server)
    assert fresh.login(demo.api_username, new_password).status_code == 200 and fresh.token


def test_removing_a_team_member_revokes_their_tokens_at_once(server: LiveServer, demo: Demo) -> None:
    email = f"staff-{uuid.uuid4().hex[:8]}@example.com"

    async def add(services: Services) -> int:
        return await setup.add_team_member(
            services,
            operator(demo.account_id),
            email=email,
            name="Till Staff",
            role=Role.FOH_STAFF.value,
            password="till-staff-password",
        )

    user_id = run_services(server.database_url, add)
    staff = Api(server)
    response = staff.post(LOGIN, {"email": email, "password": "till-staff-password"})
    staff.token = response.headers["X-Authorization"].removeprefix("Bearer ")
    assert staff.call(documents.CARD_BALANCE, {"card_reference": demo.card_references[0], "page": 1, "limit": 1})[
        "data"
    ]["Cards"] == {"data": [], "total": 0, "per_page": 1}

    async def remove(services: Services) -> None:
        await team.remove_member(services, operator(demo.account_id), user_id)

    run_services(server.database_url, remove)
    body = staff.call(documents.CARD_BALANCE, {"card_reference": demo.card_references[0], "page": 1, "limit": 1})
    assert body["errors"][0]["message"] == "Unauthorized" and body["data"] == {"Cards": None}


def test_a_deleted_dashboard_user_is_refused_at_once(server: LiveServer, demo: Demo) -> None:
    owner = Api(server)
    response = owner.post(LOGIN, {"email": demo.owner_email, "password": demo.owner_password})
    owner.token = response.headers["X-Authorization"].removeprefix("Bearer ")
    assert "errors" not in owner.call(documents.PRODUCTS, {"account_id": demo.account_id})

    async def delete(services: Services) -> None:
        async with services.db.transaction() as conn:
            await conn.execute(
                users.update()
                .where(users.c.email == demo.owner_email)
                .values(deleted_at=users.c.created_at, token_version=users.c.token_version + 1)
            )

    run_services(server.database_url, delete)
    body = owner.call(documents.PRODUCTS, {"account_id": demo.account_id})
    assert body["errors"][0]["message"] == "Unauthorized"
    again = Api(server).post(LOGIN, {"email": demo.owner_email, "password": demo.owner_password})
    assert again.json()["errors"][0]["message"] == "Unauthorized"


def test_a_deleted_api_user_cannot_log_in(server: LiveServer, demo: Demo) -> None:
    api = logged_in(server, demo)
    assert api.token

    async def delete(services: Services) -> None:
        [row] = await setup.list_api_users(services, operator(demo.account_id), POINTONE)
        await setup.delete_api_user(services, operator(demo.account_id), row.id)

    run_services(server.database_url, delete)
    reply = Api(server).login(demo.api_username, demo.api_password)
    assert reply.json()["errors"][0]["message"] == "Unauthorized" and "X-Authorization" not in reply.headers
