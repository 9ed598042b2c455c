"""The balance check's floor: the least any implementation of the guide's balance check can do per request
on this HTTP stack and this database, served like giftledger (uvicorn, uvloop, httptools).

Each request reads the JSON body, runs the server's own balance-check statement (`storage.tills._FIND_CARD`,
the credential check and the card-guessing count included, through giftledger's own pool, `Database`, as the
server's balance check does) for the card the body names, and replies with the guide's five fields as JSON.
No GraphQL, no authentication, no audit: what is left is HTTP, one prepared statement and JSON, so its
requests/s beside the bare endpoint's is the highest balance-check / HTTP-ceiling ratio this machine allows
(bench/run.py prints it).

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

from giftledger.storage.database import Database
from giftledger.storage.tills import _FIND_CARD

ACCOUNT = int(os.environ.get("FLOOR_ACCOUNT", "1"))
API_USER = int(os.environ.get("FLOOR_API_USER", "1"))
SUBJECT = f"api_user:{API_USER}"
# As the server builds its pool (app.build_services) at the default settings.
db = Database(os.environ.get("FLOOR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"), pool_size=10)


async def floor(request: Request) -> Response:
    body = orjson.loads(await request.body())
    reference = body["variables"]["card_reference"]
    since = datetime.now(UTC) - timedelta(minutes=10)
    # The till's credential (an API user at token version 0), sold cards only: as services/queries.py binds it.
    rows = await db.fetch(
        _FIND_CARD, ACCOUNT, reference, SUBJECT, "127.0.0.1", since, 1, 0, "api_user", API_USER, 0, False
    )
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
    if not cards:  # every card the bench asks for exists: the statement's parameters no longer match the server's
        return Response(orjson.dumps({"errors": [{"message": "no card read"}]}), media_type="application/json")
    return Response(orjson.dumps({"data": {"Cards": {"data": cards}}}), media_type="application/json")


@asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    yield
    await db.dispose()


app = Starlette(routes=[Route("/graphql", floor, methods=["POST"])], lifespan=lifespan)
