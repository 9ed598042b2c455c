"""argon2id password hashing (OWASP minimum: m=19 MiB, t=2, p=1) and generated secrets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import string
import threading
from concurrent.futures import ThreadPoolExecutor

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


def _lower_priority() -> None:
    """Run this thread at a lower CPU priority than the event loop (Linux schedules threads one by one)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


# Password checks run one at a time per process, in a thread of their own at a lower CPU priority: argon2id
# (~30 ms of CPU) runs in C without the GIL, so the worker keeps serving tills while a login is checked
# beside it, and a burst of logins queues here for the CPU the tills leave instead of taking it from them.
HASHING_NICENESS = 19
_hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="giftledger-argon2", initializer=_lower_priority)


async def check_password(password_hash: str | None, password: str) -> bool:
    """`verify_password` off the event loop (see `_hashing`)."""
    return await asyncio.get_running_loop().run_in_executor(_hashing, verify_password, password_hash, password)


def generate_password(length: int = 24) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def generate_username(prefix: str) -> str:
    slug = "".join(ch for ch in prefix.lower() if ch.isalnum())[:12] or "api"
    return f"{slug}-{secrets.token_hex(4)}"
