"""Token lifetime, refresh in the last 10 minutes, and revocation."""

from __future__ import annotations

import hashlib
import time

import jwt

from giftledger.services import setup
from tests.api import documents
from tests.support import SECRET, Api, Demo, LiveServer, with_services

KID = hashlib.sha256(SECRET.encode()).hexdigest()[:16]


def _token(api_user_id: int, account_id: int, expires_in: int) -> str:
    now = int(time.time())
    claims = {
        "sub": f"api_user:{api_user_id}",
        "acc": account_id,
        "ver": 0,
        "iat": now - 3000,
        "nbf": now - 3000,
        "exp": now + expires_in,
        "iss": "giftledger",
        "aud": "giftledger-api",
    }
    return jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": KID})


def _api_user_id(api: Api) -> int:
    claims = jwt.decode(api.token or "", options={"verify_signature": False})
    return int(str(claims["sub"]).split(":")[1])


def test_token_in_its_last_ten_minutes_is_refreshed(server: LiveServer, demo: Demo, api: Api) -> None:
    old = _token(_api_user_id(api), demo.account_id, 300)
    response = Api(server, old).post(documents.PRODUCTS, {"account_id": demo.account_id})
    assert response.status_code == 200 and "errors" not in response.json()
    fresh = response.headers["X-Authorization"].removeprefix("Bearer ")
    assert response.headers["Authorization"] == response.headers["X-Authorization"]
    claims = jwt.decode(fresh, SECRET, algorithms=["HS256"], audience="giftledger-api")
    assert claims["exp"] - int(time.time()) > 3500
    assert Api(server, fresh).call(documents.PRODUCTS, {"account_id": demo.account_id})["data"]["Products"]


def test_token_with_time_to_spare_is_not_refreshed(server: LiveServer, demo: Demo, api: Api) -> None:
    response = api.post(documents.PRODUCTS, {"account_id": demo.account_id})
    assert "X-Authorization" not in response.headers and "Authorization" not in response.headers


def test_deleting_an_api_user_revokes_its_token_at_once(server: LiveServer, demo: Demo, api: Api) -> None:
    assert "errors" not in api.call(documents.PRODUCTS, {"account_id": demo.account_id})

    async def delete(services: object) -> None:
        await setup.delete_api_user(services, setup.operator(demo.account_id), _api_user_id(api))  # type: ignore[arg-type]

    with_services(server.database_url, delete)
    body = api.call(documents.PRODUCTS, {"account_id": demo.account_id})
    assert body["errors"][0]["message"] == "Unauthorized"
    assert body["data"] == {"Products": None}
    assert Api(server).login(demo.api_username, demo.api_password).json()["errors"][0]["message"] == "Unauthorized"


def test_dashboard_user_can_log_in_with_email(server: LiveServer, demo: Demo) -> None:
    till = Api(server)
    response = till.post(documents.LOGIN, {"email": demo.owner_email, "password": demo.owner_password})
    assert response.json()["data"]["loginUser"]["id"] > 0
    assert response.headers["X-Authorization"].startswith("Bearer ")
    till.token = response.headers["X-Authorization"].removeprefix("Bearer ")
    assert till.call(documents.PRODUCTS, {"account_id": demo.account_id})["data"]["Products"][0]["name"] == (
        "In-Store Gift"
    )
