"""The balance check's floor: the least any implementation of the guide's balance check can do per request
on this HTTP stack and this database, served like giftledger (uvicorn, uvloop, httptools).

Each request reads the JSON body, runs the server's own balance-check statement (`storage.tills._FIND_CARD`,
the token check and the card-guessing count included, through giftledger's connection pool) for the card the
body names, and replies with the guide's five fields as JSON. No GraphQL, no authentication, no audit: what
is left is HTTP, one prepared statement and JSON, so its requests/s beside the bare endpoint's is the highest
balance-check / HTTP-ceiling ratio this machine allows (bench/run.py prints it).

Configured by the bench: FLOOR_DATABASE_URL, FLOOR_ACCOUNT, FLOOR_API_USER."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from giftledger.storage.native import NativePool
from giftledger.storage.tills import _FIND_CARD

ACCOUNT = int(os.environ.get("FLOOR_ACCOUNT", "1"))
API_USER = int(os.environ.get("FLOOR_API_USER", "1"))
SUBJECT = f"api_user:{API_USER}"
pool = NativePool(os.environ.get("FLOOR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"), size=10)


async def floor(request: Request) -> Response:
    body = orjson.loads(await request.body())
    reference = body["variables"]["card_reference"]
    since = datetime.now(UTC) - timedelta(minutes=10)
    rows = await pool.fetch(_FIND_CARD, ACCOUNT, reference, SUBJECT, "127.0.0.1", since, 1, 0, API_USER, 0)
    cards = [
        {
            "card_reference": r["card_reference"],
            "balance": r["balance"],
            "initial_balance": r["initial_balance"],
            "created_at": r["card_created_at"].isoformat(),
            "updated_at": r["card_updated_at"].isoformat(),
        }
        for r in rows
        if r["card_id"] is not None and r["caller_live"]
    ]
    return Response(orjson.dumps({"data": {"Cards": {"data": cards}}}), media_type="application/json")


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    yield
    await pool.close()


app = Starlette(routes=[Route("/graphql", floor, methods=["POST"])], lifespan=lifespan)
