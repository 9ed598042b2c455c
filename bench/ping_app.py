"""A bare Starlette JSON endpoint, served like giftledger (uvicorn, uvloop, httptools): the HTTP ceiling."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def ping(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse({"data": {"pong": body.get("ping")}})


app = Starlette(routes=[Route("/ping", ping, methods=["POST"])])
