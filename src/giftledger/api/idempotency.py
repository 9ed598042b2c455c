"""The `Idempotency-Key` request header on POST /graphql (an extension beyond the guide).

- Same key, same request (the JSON body, compared after parsing with sorted keys): the stored reply,
  byte for byte, with `Idempotent-Replayed: true`.
- Same key, different request: 422, code IDEMPOTENCY_KEY_REUSED; nothing runs.
- Same key while the first request still runs: 409, code IDEMPOTENCY_IN_PROGRESS, `Retry-After: 1`.
- Keys belong to the caller's account; requests without a valid token ignore the header, and so do queries
  (a key is for a change: a balance check with a key is answered afresh, never replayed stale).
- A reply is stored whatever its shape once its mutation may have written anything, an internal error (500)
  included: a retry is never applied a second time. Only replies to requests that applied nothing and depend on
  the moment (not authenticated, throttled, retryable) are not stored: the key is given back and a retry
  runs afresh.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from giftledger.api.errors import request_error
from giftledger.domain.errors import Retryable, Unauthorized
from giftledger.domain.validation import MAX_KEY_LENGTH
from giftledger.services import idempotency
from giftledger.services.access import recognise
from giftledger.services.context import Services

log = logging.getLogger("giftledger.api")

HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
JSON = "application/json"
# Error codes of replies to requests that applied nothing and may fare otherwise on a retry: never stored.
TRANSIENT_CODES = frozenset({"UNAUTHENTICATED", "THROTTLED", "RETRYABLE"})
STORED_STATUSES = (200, 500)  # a 500 may follow a committed change: its reply is kept, so no retry applies it again

IN_PROGRESS = "A request with this Idempotency-Key is still being processed. Retry shortly."
REUSED = "This Idempotency-Key was already used for a different request. Nothing was applied."
INVALID = "The Idempotency-Key header must be 1 to 255 visible ASCII characters."


def _error(message: str, code: str, status: int, headers: dict[str, str] | None = None) -> Response:
    body = {"errors": [request_error(message, code)], "data": None}
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and all(33 <= ord(ch) <= 126 for ch in key)


def request_hash(payload: Any) -> str:
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _storable(response: Response) -> bool:
    if response.status_code not in STORED_STATUSES:
        return False
    try:
        body = orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return False
    errors = body.get("errors") if isinstance(body, dict) else None
    codes = {(e.get("extensions") or {}).get("code") for e in errors or [] if isinstance(e, dict)}
    return not codes & TRANSIENT_CODES


class IdempotencyGuard:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._instance = uuid.uuid4().hex
        # Keys running in this process: a retry arriving meanwhile is answered without waiting for the
        # database (it would wait for the first request's lock on the key's row).
        self._running: dict[tuple[int, str], str] = {}

    async def guard(
        self, request: Request, payload: Any, run: Callable[[], Awaitable[Response]], bearer: str | None
    ) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return await run()
        if not valid_key(key):
            return _error(INVALID, "IDEMPOTENCY_KEY_INVALID", 400)
        claims = self.services.tokens.verify(bearer) if bearer else None
        if claims is None or bearer is None:
            return await run()  # not authenticated: the request is refused anyway, nothing to remember
        account_id = claims.account_id
        digest = request_hash(payload)
        running = self._running.get((account_id, key))
        if running is not None:
            return self._refusal(idempotency.InProgress() if running == digest else idempotency.Mismatch())
        self._running[(account_id, key)] = digest
        try:
            return await self._guarded(account_id, bearer, key, digest, run)
        finally:
            del self._running[(account_id, key)]

    async def _guarded(
        self, account_id: int, bearer: str, key: str, digest: str, run: Callable[[], Awaitable[Response]]
    ) -> Response:
        owner = f"{self._instance}:{uuid.uuid4().hex}"
        try:
            # a stored reply is only for a caller who may still act on the account (not a revoked token)
            principal = await recognise(self.services, bearer)
            outcome = await idempotency.claim(self.services, principal, key, digest, owner)
        except Unauthorized:
            return await run()
        except Retryable as exc:
            return _error(exc.message, exc.code, 503)
        if isinstance(outcome, idempotency.Replay):
            return Response(
                outcome.body, status_code=outcome.status, media_type=JSON, headers={REPLAYED_HEADER: "true"}
            )
        if not isinstance(outcome, idempotency.Claimed):
            return self._refusal(outcome)
        try:
            response = await run()
        except Exception:
            await self._give_back(account_id, key, owner)
            raise
        if _storable(response):
            try:
                if not await idempotency.finish(
                    self.services, account_id, key, owner, response.status_code, bytes(response.body)
                ):
                    log.warning(
                        "idempotency key %r of account %s was taken over before its reply was stored", key, account_id
                    )
            except Retryable:
                # The request's own work is done; only remembering its reply failed. The key stays claimed
                # until its lease ends, then a retry runs afresh (merchant_transaction_reference still guards it).
                log.warning("could not store the reply for idempotency key %r of account %s", key, account_id)
        else:
            await self._give_back(account_id, key, owner)
        return response

    async def _give_back(self, account_id: int, key: str, owner: str) -> None:
        try:
            await idempotency.release(self.services, account_id, key, owner)
        except Retryable:
            log.warning("could not release idempotency key %r of account %s; its lease will expire", key, account_id)

    @staticmethod
    def _refusal(outcome: idempotency.Claim) -> Response:
        if isinstance(outcome, idempotency.Mismatch):
            return _error(REUSED, "IDEMPOTENCY_KEY_REUSED", 422)
        return _error(IN_PROGRESS, "IDEMPOTENCY_IN_PROGRESS", 409, {"Retry-After": "1"})
