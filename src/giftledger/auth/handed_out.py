"""Secrets giftledger hands out in a cookie or a link (a dashboard session, an invitation, a card's own page):
random and URL-safe, and stored only as their SHA-256 (`stored_hash`), so that a copy of the database cannot be
replayed as a cookie or a link."""

from __future__ import annotations

import hashlib
import secrets


def new_secret(nbytes: int = 32) -> str:
    """A fresh secret of `nbytes` random bytes, URL-safe base64 (43 characters for 32 bytes)."""
    return secrets.token_urlsafe(nbytes)


def stored_hash(secret: str) -> str:
    """What is kept of a handed-out secret: its SHA-256, 64 hex digits."""
    return hashlib.sha256(secret.encode()).hexdigest()
