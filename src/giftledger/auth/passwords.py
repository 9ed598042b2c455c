"""argon2id password hashing (OWASP minimum: m=19 MiB, t=2, p=1) and generated secrets."""

from __future__ import annotations

import secrets
import string

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1, hash_len=32, type=Type.ID)
# A hash of a random password: verifying against it costs what a real check costs, so a login
# for a user that does not exist takes as long as one with a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))

_ALPHABET = string.ascii_letters + string.digits


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def generate_password(length: int = 24) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def generate_username(prefix: str) -> str:
    slug = "".join(ch for ch in prefix.lower() if ch.isalnum())[:12] or "api"
    return f"{slug}-{secrets.token_hex(4)}"
