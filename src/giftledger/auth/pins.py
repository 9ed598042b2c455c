"""How a card's PIN is kept: HMAC-SHA256 under a key derived from the server's secret key, never the PIN.

A PIN has at most 10**8 values, so no hash of it alone (argon2id included) stops someone who has a copy of the
database from trying them all; what stops them is a key the database does not hold. A keyed hash is also cheap
(microseconds), so importing 100,000 cards with PINs costs nothing noticeable, where argon2id (~30 ms of CPU
each) would take most of an hour. The stored text names the key it was made with (`pin1$<key id>$<digest>`,
the key id being the first 8 hex digits of the derived key's own SHA-256), so after a key rotation
(`GIFTLEDGER_PREVIOUS_SECRET_KEYS`) a PIN still verifies for as long as its key stays listed; a PIN whose key
is no longer configured does not verify. The card (its account and number) is part of the hashed message, so one
PIN on two cards hashes differently."""

from __future__ import annotations

import hashlib
import hmac

_PREFIX = "pin1"


def _derived(secret_key: str) -> bytes:
    return hmac.new(secret_key.encode(), b"giftledger card PIN", hashlib.sha256).digest()


def _key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


class PinHasher:
    """Hashes PINs under the current secret key; verifies under it or any previous key still configured."""

    def __init__(self, secret_key: str, previous_keys: tuple[str, ...] = ()) -> None:
        self._current = _derived(secret_key)
        self._keys = {_key_id(k): k for k in (self._current, *(_derived(p) for p in previous_keys))}

    def _digest(self, key: bytes, account_id: int, card_reference: str, pin: str) -> str:
        message = f"{account_id}:{card_reference}:{pin}".encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def hash(self, account_id: int, card_reference: str, pin: str) -> str:
        digest = self._digest(self._current, account_id, card_reference, pin)
        return f"{_PREFIX}${_key_id(self._current)}${digest}"

    def verify(self, stored: str | None, account_id: int, card_reference: str, pin: str) -> bool:
        """True when `pin` is the card's PIN; False for a wrong one, a card without a PIN, or an unknown key."""
        prefix, _, rest = (stored or "").partition("$")
        key_id, _, digest = rest.partition("$")
        key = self._keys.get(key_id)
        if prefix != _PREFIX or key is None:
            return False
        return hmac.compare_digest(digest, self._digest(key, account_id, card_reference, pin))
