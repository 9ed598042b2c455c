"""JWT hardening: only HS256 tokens of ours, signed by a configured key, within their times, for our issuer
and audience; key rotation and revocation; no built-in key outside development mode."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import time
import warnings
from pathlib import Path
from typing import Any

import jwt
import pytest

from giftledger.auth.tokens import ALGORITHM, RevokedSigningKey, TokenClaims, TokenIssuer, key_id
from giftledger.config import ConfigurationError, load_settings
from tests.api import documents
from tests.api.till import only_error, order_variables
from tests.support import SECRET, Api, Demo, LiveServer, unchanged

# HS512 and HS384 tokens are forged on purpose here, with keys shorter than those algorithms want.
pytestmark = pytest.mark.filterwarnings("ignore:The HMAC key is")

OLD = "old-signing-key-0123456789-abcdefghijklmnopqrstuv"
NEW = "new-signing-key-0123456789-abcdefghijklmnopqrstuv"
OTHER = "someone-elses-key-0123456789-abcdefghijklmnopqrs"


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "api_user:7",
        "acc": 3,
        "ver": 0,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "iss": "giftledger",
        "aud": "giftledger-api",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(key: str = NEW, algorithm: str = "HS256", kid: str | None = "auto", **changes: Any) -> str:
    headers = {"kid": key_id(key) if kid == "auto" else kid} if kid is not None else {}
    return jwt.encode(claims(**changes), key, algorithm=algorithm, headers=headers)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], body: dict[str, Any], signature: str = "") -> str:
    return f"{_b64(header)}.{_b64(body)}.{signature}"


def test_a_token_of_ours_verifies() -> None:
    issuer = TokenIssuer(NEW)
    token = issuer.issue("api_user", 7, 3, 0)
    found = issuer.verify(token)
    assert found == TokenClaims("api_user", 7, 3, 0, found.expires_at if found else 0)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT", "kid": key_id(NEW)}
    body = jwt.decode(token, options={"verify_signature": False})
    assert body["exp"] - body["iat"] == 3600 and body["nbf"] == body["iat"]
    assert (body["iss"], body["aud"], body["sub"], body["acc"]) == ("giftledger", "giftledger-api", "api_user:7", 3)


def _refused() -> dict[str, str]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The HMAC key is")
        return {
            "alg none": unsigned({"alg": "none", "typ": "JWT", "kid": key_id(NEW)}, claims()),
            "alg none without kid": unsigned({"alg": "none", "typ": "JWT"}, claims()),
            "alg None capitalised": unsigned({"alg": "None", "typ": "JWT", "kid": key_id(NEW)}, claims()),
            "HS512 with our key": signed(algorithm="HS512"),
            "HS384 with our key": signed(algorithm="HS384"),
            "RS256 header over an HMAC signature": unsigned(
                {"alg": "RS256", "typ": "JWT", "kid": key_id(NEW)}, claims(), signed().rsplit(".", 1)[1]
            ),
            "bad signature": signed()[:-4] + ("AAAA" if not signed().endswith("AAAA") else "BBBB"),
            "signed with another key under our kid": signed(key=OTHER, kid=key_id(NEW)),
            "signed with another key": signed(key=OTHER),
            "no kid": signed(kid=None),
            "unknown kid": signed(kid="0123456789abcdef"),
            "missing exp": signed(exp=None),
            "missing nbf": signed(nbf=None),
            "missing iat": signed(iat=None),
            "missing iss": signed(iss=None),
            "missing aud": signed(aud=None),
            "missing sub": signed(sub=None),
            "expired": signed(iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200, exp=int(time.time()) - 1),
            "not valid yet": signed(nbf=int(time.time()) + 600),
            "another issuer": signed(iss="toggle"),
            "another audience": signed(aud="giftledger-dashboard"),
            "a system subject": signed(sub="system:0"),
            "a subject without id": signed(sub="api_user:"),
            "garbage": "not.a.token",
            "empty": "",
        }


@pytest.mark.parametrize("name", list(_refused()))
def test_tokens_that_are_not_exactly_right_are_refused(name: str) -> None:
    # Made when the test runs, not when it is collected: "not valid yet" and "expired" are relative to now.
    assert TokenIssuer(NEW).verify(_refused()[name]) is None


def test_only_hs256_is_ever_accepted() -> None:
    assert ALGORITHM == "HS256"
    assert TokenIssuer(NEW).verify(signed(algorithm="HS256")) is not None


def test_a_rotated_key_keeps_verifying_its_tokens_until_they_expire() -> None:
    before = TokenIssuer(OLD)
    after = TokenIssuer(NEW, previous_keys=(OLD,))
    old_token = before.issue("api_user", 7, 3, 0)
    assert after.verify(old_token) is not None
    new_token = after.issue("api_user", 7, 3, 0)
    assert jwt.get_unverified_header(new_token)["kid"] == key_id(NEW)  # new tokens use the new key
    assert before.verify(new_token) is None
    assert after.key_ids == (key_id(NEW), key_id(OLD))
    expired = signed(key=OLD, iat=int(time.time()) - 7200, nbf=int(time.time()) - 7200, exp=int(time.time()) - 1)
    assert after.verify(expired) is None
    assert TokenIssuer(NEW).verify(old_token) is None  # once dropped from the previous keys: refused


def test_a_key_marked_compromised_verifies_nothing_at_once() -> None:
    old_token = TokenIssuer(OLD).issue("api_user", 7, 3, 0)
    issuer = TokenIssuer(NEW, previous_keys=(OLD,), revoked_key_ids=(key_id(OLD),))
    assert issuer.verify(old_token) is None
    assert issuer.key_ids == (key_id(NEW),)
    assert issuer.verify(issuer.issue("api_user", 7, 3, 0)) is not None
    with pytest.raises(RevokedSigningKey):
        TokenIssuer(OLD, revoked_key_ids=(key_id(OLD),))


def test_key_id_is_a_digest_not_the_key() -> None:
    assert key_id(NEW) == hashlib.sha256(NEW.encode()).hexdigest()[:16]
    assert key_id(NEW) != key_id(OLD)


# --- configuration ------------------------------------------------------------------------------------


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    """An environment with these GIFTLEDGER_ values (and the mail settings production requires)."""
    mail = {"GIFTLEDGER_SMTP_URL": "smtp://127.0.0.1:2525", "GIFTLEDGER_MAIL_FROM": "cards@shop.example"}
    return {"GIFTLEDGER_DATA_DIR": str(tmp_path), **mail, **{f"GIFTLEDGER_{k}": v for k, v in values.items()}}


@pytest.mark.parametrize("environment", ["production", "test"])
def test_outside_development_the_key_must_be_configured(tmp_path: Path, environment: str) -> None:
    with pytest.raises(ConfigurationError, match="GIFTLEDGER_SECRET_KEY must be set"):
        load_settings(env(tmp_path, ENV=environment))
    assert not (tmp_path / "secret_key").exists()
    assert load_settings(env(tmp_path, ENV=environment, SECRET_KEY=NEW)).secret_key == NEW


def test_development_mode_makes_a_random_key_of_its_own(tmp_path: Path) -> None:
    first = load_settings(env(tmp_path / "a"))
    again = load_settings(env(tmp_path / "a"))
    other = load_settings(env(tmp_path / "b"))
    assert first.secret_key == again.secret_key  # kept in the data directory across restarts
    assert first.secret_key != other.secret_key  # never a built-in default
    assert len(first.secret_key) >= 64
    mode = stat.S_IMODE((tmp_path / "a" / "secret_key").stat().st_mode)
    assert mode == 0o600


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"SECRET_KEY": "short"}, "at least 32 characters"),
        ({"SECRET_KEY": NEW, "PREVIOUS_SECRET_KEYS": f"{OLD},short"}, "PREVIOUS_SECRET_KEYS"),
        ({"SECRET_KEY": NEW, "REVOKED_KEY_IDS": key_id(NEW)}, "REVOKED_KEY_IDS"),
        ({"SECRET_KEY": NEW, "COST_MAXIMUM": "-1"}, "GIFTLEDGER_COST_MAXIMUM"),
        ({"SECRET_KEY": NEW, "CARD_MISS_LIMIT": "0"}, "GIFTLEDGER_CARD_MISS_LIMIT"),
        ({"SECRET_KEY": NEW, "MAX_QUERY_DEPTH": "ten"}, "GIFTLEDGER_MAX_QUERY_DEPTH"),
    ],
)
def test_bad_security_settings_fail_loudly(tmp_path: Path, values: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(env(tmp_path, ENV="production", **values))


def test_security_settings_come_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        env(
            tmp_path,
            ENV="production",
            SECRET_KEY=NEW,
            PREVIOUS_SECRET_KEYS=f" {OLD} ,{OTHER}",
            REVOKED_KEY_IDS=key_id(OTHER),
            COST_MAXIMUM="100",
            COST_RESTORE="50",
            COST_RESTORE_SECONDS="60",
            CARD_MISS_LIMIT="5",
            CARD_MISS_ADDRESS_LIMIT="9",
            CARD_MISS_WINDOW_SECONDS="120",
            MAX_QUERY_DEPTH="8",
            MAX_QUERY_ALIASES="4",
            MAX_QUERY_TOKENS="500",
            LOGIN_FAILURE_LIMIT="3",
            LOGIN_FAILURE_WINDOW_SECONDS="60",
        )
    )
    assert settings.previous_secret_keys == (OLD, OTHER)
    assert settings.revoked_key_ids == (key_id(OTHER),)
    assert (settings.cost_maximum, settings.cost_restore, settings.cost_restore_seconds) == (100, 50, 60)
    assert (settings.card_miss_limit, settings.card_miss_address_limit, settings.card_miss_window_seconds) == (
        5,
        9,
        120,
    )
    assert (settings.max_query_depth, settings.max_query_aliases, settings.max_query_tokens) == (8, 4, 500)
    assert (settings.login_failure_limit, settings.login_failure_window_seconds) == (3, 60)


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path, ENV="production", SECRET_KEY=NEW))
    assert settings.token_lifetime_seconds == 3600
    assert (settings.cost_maximum, settings.cost_restore, settings.cost_restore_seconds) == (8000, 5000, 600)
    assert (settings.card_miss_limit, settings.card_miss_address_limit, settings.card_miss_window_seconds) == (
        30,
        100,
        600,
    )
    assert (settings.max_query_depth, settings.max_query_aliases, settings.max_query_tokens) == (10, 15, 2000)
    assert (settings.login_failure_limit, settings.login_failure_window_seconds) == (10, 900)
    assert settings.max_body_bytes == 65_536


# --- over HTTP ----------------------------------------------------------------------------------------


def _forged(demo: Demo, api: Api, how: str) -> str:
    sub = str(jwt.decode(api.token or "", options={"verify_signature": False})["sub"])
    now = int(time.time())
    if how == "alg none":
        return unsigned({"alg": "none", "typ": "JWT", "kid": key_id(SECRET)}, claims(sub=sub, acc=demo.account_id))
    if how == "HS512":
        return signed(SECRET, "HS512", sub=sub, acc=demo.account_id)
    if how == "another key":
        return signed(OTHER, kid=key_id(SECRET), sub=sub, acc=demo.account_id)
    if how == "not valid yet":
        return signed(SECRET, sub=sub, acc=demo.account_id, nbf=now + 600)
    if how == "another audience":
        return signed(SECRET, sub=sub, acc=demo.account_id, aud="elsewhere")
    assert how == "no exp"
    return signed(SECRET, sub=sub, acc=demo.account_id, exp=None)


@pytest.mark.parametrize("how", ["alg none", "HS512", "another key", "not valid yet", "another audience", "no exp"])
def test_forged_tokens_are_unauthorized_and_change_nothing(server: LiveServer, demo: Demo, api: Api, how: str) -> None:
    assert "errors" not in api.call(documents.PRODUCTS, {"account_id": demo.account_id})  # the real one works
    forged = Api(server, _forged(demo, api, how))
    with unchanged(server.database_url, demo.account_id):
        body = forged.call(documents.CREATE_ORDER, order_variables(demo, demo.card_references[0], 2500))
    error = only_error(body, "createOrder")
    assert (error["message"], error["customer_facing"], error["extensions"]) == (
        "Unauthorized",
        False,
        {"code": "UNAUTHENTICATED"},
    )


def test_a_verified_token_still_expires_on_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verified tokens are remembered per process (signature and claims are checked once); their time
    claims are checked on every use, so a remembered token is refused the moment it expires."""
    issuer = TokenIssuer(NEW, lifetime_seconds=60)
    token = issuer.issue("api_user", 7, 3, 0)
    first = issuer.verify(token)
    assert first == issuer.verify(token) == TokenClaims("api_user", 7, 3, 0, first.expires_at if first else 0)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 61)
    assert issuer.verify(token) is None
    assert issuer.verify(token) is None  # forgotten, and refused by the full check too
    monkeypatch.setattr(time, "time", real)
    assert issuer.verify(token + "x") is None  # a token that differs in one character is checked afresh
