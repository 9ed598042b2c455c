"""JWT access tokens: HS256 only, issuer and audience checked, 60-minute lifetime, key rotation by `kid`."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"


@dataclass(frozen=True)
class TokenClaims:
    subject_kind: str  # "api_user" or "user"
    subject_id: int
    account_id: int
    version: int
    expires_at: int


def _kid(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


class TokenIssuer:
    def __init__(
        self,
        secret_key: str,
        *,
        previous_keys: tuple[str, ...] = (),
        lifetime_seconds: int = 3600,
        refresh_window_seconds: int = 600,
        issuer: str = "giftledger",
        audience: str = "giftledger-api",
    ) -> None:
        self._signing_key = secret_key
        self._keys = {_kid(k): k for k in (secret_key, *previous_keys)}
        self.lifetime_seconds = lifetime_seconds
        self.refresh_window_seconds = refresh_window_seconds
        self._issuer = issuer
        self._audience = audience

    def issue(self, subject_kind: str, subject_id: int, account_id: int, version: int) -> str:
        now = int(time.time())
        claims = {
            "sub": f"{subject_kind}:{subject_id}",
            "acc": account_id,
            "ver": version,
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_seconds,
            "iss": self._issuer,
            "aud": self._audience,
        }
        return jwt.encode(claims, self._signing_key, algorithm=ALGORITHM, headers={"kid": _kid(self._signing_key)})

    def verify(self, token: str) -> TokenClaims | None:
        """The token's claims, or None for any token that is not exactly right."""
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(str(header.get("kid", "")))
            if key is None or header.get("alg") != ALGORITHM:
                return None
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "iat", "nbf", "sub", "iss", "aud"]},
            )
            kind, _, raw_id = str(claims["sub"]).partition(":")
            if kind not in ("api_user", "user"):
                return None
            return TokenClaims(kind, int(raw_id), int(claims["acc"]), int(claims["ver"]), int(claims["exp"]))
        except (jwt.PyJWTError, ValueError, KeyError, TypeError):
            return None

    def needs_refresh(self, claims: TokenClaims) -> bool:
        return claims.expires_at - time.time() <= self.refresh_window_seconds
