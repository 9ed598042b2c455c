"""JWT access tokens: HS256 only, issuer and audience checked, 60-minute lifetime, key rotation by `kid`.

Rotation: the current key signs; keys listed as previous still verify the tokens they signed until those
expire. A key id (`key_id(key)`) listed as revoked verifies nothing at once (a compromised key)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
# Every claim a token of ours carries; a token missing any of them is refused.
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "sub", "iss", "aud")
VERIFIED_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class TokenClaims:
    subject_kind: str  # "api_user" or "user"
    subject_id: int
    account_id: int
    version: int
    expires_at: int


def key_id(key: str) -> str:
    """The `kid` header of tokens signed with `key`: 16 hex digits of its SHA-256 (the key is not recoverable)."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


_kid = key_id  # the name the rest of the code used first


class RevokedSigningKey(ValueError):
    """The configured signing key is listed as revoked."""


class TokenIssuer:
    def __init__(
        self,
        secret_key: str,
        *,
        previous_keys: tuple[str, ...] = (),
        revoked_key_ids: tuple[str, ...] = (),
        lifetime_seconds: int = 3600,
        refresh_window_seconds: int = 600,
        issuer: str = "giftledger",
        audience: str = "giftledger-api",
    ) -> None:
        revoked = set(revoked_key_ids)
        if key_id(secret_key) in revoked:
            raise RevokedSigningKey("the signing key is listed as revoked: configure a new one")
        self._signing_key = secret_key
        self._keys = {key_id(k): k for k in (secret_key, *previous_keys) if key_id(k) not in revoked}
        self.lifetime_seconds = lifetime_seconds
        self.refresh_window_seconds = refresh_window_seconds
        self._issuer = issuer
        self._audience = audience
        # Tokens already verified, with the time from which they are valid: a till sends the same token with
        # every request for an hour, and checking its signature and claims costs more than the rest of a
        # balance check. Only the time claims can change their verdict, and they are checked on every use.
        self._verified: dict[str, tuple[TokenClaims, int]] = {}

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of the keys that verify tokens, the signing key's first."""
        return tuple(self._keys)

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
        return jwt.encode(claims, self._signing_key, algorithm=ALGORITHM, headers={"kid": key_id(self._signing_key)})

    def verify(self, token: str) -> TokenClaims | None:
        """The token's claims, or None for any token that is not exactly right: another algorithm (`none`
        included), an unknown or revoked key, a bad signature, a missing, past or not-yet-valid time claim,
        another issuer or audience, or a subject that is not an API user or a user."""
        known = self._verified.get(token)
        if known is None:
            known = self._verify(token)
            if known is None:
                return None
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                del self._verified[next(iter(self._verified))]  # the oldest entry
            self._verified[token] = known
        claims, valid_from = known
        if valid_from <= time.time() < claims.expires_at:
            return claims
        del self._verified[token]
        return None

    def _verify(self, token: str) -> tuple[TokenClaims, int] | None:
        """The claims and the time from which they are valid (the later of `nbf` and `iat`)."""
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
                options={"require": list(REQUIRED_CLAIMS)},
            )
            kind, _, raw_id = str(claims["sub"]).partition(":")
            if kind not in ("api_user", "user"):
                return None
            found = TokenClaims(kind, int(raw_id), int(claims["acc"]), int(claims["ver"]), int(claims["exp"]))
            return found, max(int(claims["nbf"]), int(claims["iat"]))
        except (jwt.PyJWTError, ValueError, KeyError, TypeError):
            return None

    def needs_refresh(self, claims: TokenClaims) -> bool:
        return claims.expires_at - time.time() <= self.refresh_window_seconds
