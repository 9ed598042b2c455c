"""A webhook receiver for the bench (bench/webhook_delivery.py), served like giftledger (uvicorn, uvloop,
httptools): it checks each delivery's `Toggle-Signature` with the secret in the file WEBHOOK_SECRET_FILE names
(written once the endpoint exists), as a receiver written for Toggle would, answers 200 (401 when the signature
is wrong), and keeps nothing. `/hang` is a dead endpoint: it answers nothing within the sender's timeout."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
from functools import cache
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@cache
def secret() -> bytes:
    return Path(os.environ["WEBHOOK_SECRET_FILE"]).read_bytes().strip()


async def hooks(request: Request) -> Response:
    if request.method != "POST":
        return Response("ready")
    body = await request.body()
    expected = hmac.new(secret(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("toggle-signature", "")):
        return Response("bad signature", status_code=401)
    return Response('{"ok": true}', media_type="application/json")


async def hang(request: Request) -> Response:
    """An endpoint that never answers in time: it holds each delivery `HANG_S`, past the sender's 10-second
    timeout (the bench's dead endpoint)."""
    if request.method == "POST":
        await asyncio.sleep(HANG_S)
    return Response("ready")


HANG_S = 15  # past the sender's 10-second timeout, and within the bench's 30 s wait for the receiver to stop

app = Starlette(routes=[Route("/hooks", hooks, methods=["GET", "POST"]), Route("/hang", hang, methods=["GET", "POST"])])
