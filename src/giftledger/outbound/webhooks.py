"""Posting one webhook delivery: the body the outbox holds, signed, to its endpoint, within `TIMEOUT_S`.

`Toggle-Signature` is the HMAC-SHA256 of the raw body with the endpoint's secret, in lower-case hex (what a
receiver written for Toggle checks); during a rotation's overlap `Toggle-Signature-Previous` carries the same
with the previous secret. A 2xx reply is success; anything else, or no reply in time, is a failed attempt.
Redirects are not followed.

Server-side request forgery: the URL's host is resolved here, and in production every address it resolves to
must be a public one (`domain.webhooks.address_allowed`), or nothing is sent. The request then goes to the
address that was checked, never to a second resolution: the URL is rewritten to that IP, with the `Host`
header, and for https the TLS server name (SNI, and the name the certificate is checked against), set to the
URL's host. https connections are not kept open between deliveries (a kept connection to one IP, made for one
server name, could otherwise serve another host at that IP). A host's checked address is kept for
`RESOLVED_TTL_S` (10 s, as long as aiohttp's own DNS cache keeps a name by default), so that a busy endpoint
is not looked up at every delivery (0.10 ms of CPU per look-up of `localhost`, a round trip to the resolver for
a real name: docs/webhooks.md, "Cost"); a change of the name's address reaches the sender within that, and
every address connected to is one that was checked. A refusal is not kept: the next delivery looks again.

The client is aiohttp's, not httpx's (which the till SDK uses): posting to a local receiver, 4 at a time, an
httpx post cost 0.81-0.86 ms of CPU and an aiohttp one 0.13-0.15 ms, in alternating runs (docs/webhooks.md,
"Cost"), and the sender runs beside the tills' requests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from cachetools import TTLCache
from yarl import URL

from giftledger.domain.webhooks import RESPONSE_EXCERPT, TIMEOUT_S, address_allowed

USER_AGENT = "giftledger-webhooks/1.0"
RESOLVED_TTL_S = 10.0


def signature(secret: str, body: bytes) -> str:
    """HMAC-SHA256 of `body` with `secret`, lower-case hex: PHP's hash_hmac('sha256', $payload, $secret)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class AttemptFailed(Exception):
    """A delivery attempt that did not get a 2xx reply: why, and the reply's status and excerpt if one came."""

    def __init__(self, reason: str, *, status: int | None = None, excerpt: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.excerpt = excerpt


class Refused(AttemptFailed):
    """Not sent at all: the host resolves to an address webhooks may not go to."""


@dataclass(frozen=True)
class Reply:
    status: int
    excerpt: str


async def resolve(host: str, port: int, *, production: bool) -> str:
    """The address to connect to for `host`: refused (`Refused`) when it resolves to nothing, or, in
    production, when any address it resolves to is not a public one."""
    try:
        literal = ipaddress.ip_address(host)
        addresses = [str(literal)]
    except ValueError:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise AttemptFailed(f"The host {host} could not be resolved: {error}.") from error
        addresses = list(dict.fromkeys(str(info[4][0]) for info in found))
    if not addresses:
        raise AttemptFailed(f"The host {host} resolves to no address.")
    barred = [a for a in addresses if not address_allowed(a, production=production)]
    if barred:
        raise Refused(
            f"Not sent: {host} resolves to {', '.join(barred)}, a private, loopback, link-local or otherwise "
            "non-public address."
        )
    return addresses[0]


class WebhookPoster:
    """Posts deliveries (one instance per sender: its HTTP sessions are shared by its deliveries)."""

    def __init__(self, *, production: bool, timeout_s: float = TIMEOUT_S) -> None:
        self._production = production
        self._timeout_s = timeout_s
        self._sessions: dict[bool, aiohttp.ClientSession] = {}  # by tls; made on first use (needs a running loop)
        self._addresses: TTLCache[tuple[str, int], str] = TTLCache(maxsize=10_000, ttl=RESOLVED_TTL_S)

    def _session(self, tls: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(tls)
        if session is None:
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=tls, use_dns_cache=False),
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
                trust_env=False,
                auto_decompress=False,
            )
            self._sessions[tls] = session
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()

    async def post(self, url: str, body: bytes, *, secret: str, previous_secret: str | None = None) -> Reply:
        """One attempt: the reply when it is a 2xx; otherwise `AttemptFailed` (`Refused`: nothing was sent)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._post(url, body, secret, previous_secret)
        except TimeoutError as error:
            raise AttemptFailed(f"No reply within {self._timeout_s:g} seconds.") from error

    async def _post(self, url: str, body: bytes, secret: str, previous_secret: str | None) -> Reply:
        parts = urlsplit(url)
        host = parts.hostname or ""
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        address = self._addresses.get((host, port))
        if address is None:
            address = self._addresses[host, port] = await resolve(host, port, production=self._production)
        shown = f"[{address}]" if ":" in address else address
        target = urlunsplit((parts.scheme, f"{shown}:{port}", parts.path or "/", parts.query, ""))
        headers = {
            "Host": parts.netloc.rsplit("@", 1)[-1],
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Toggle-Signature": signature(secret, body),
        }
        if previous_secret is not None:
            headers["Toggle-Signature-Previous"] = signature(previous_secret, body)
        try:
            async with self._session(tls).post(
                URL(target, encoded=True),
                data=body,
                headers=headers,
                allow_redirects=False,
                server_hostname=host if tls else None,
            ) as response:
                status = response.status
                excerpt = await _excerpt(response)
        except aiohttp.ClientError as error:
            raise AttemptFailed(f"{type(error).__name__}: {error or 'no detail'}") from error
        if not 200 <= status < 300:
            raise AttemptFailed(f"HTTP {status}", status=status, excerpt=excerpt)
        return Reply(status, excerpt)


async def _excerpt(response: aiohttp.ClientResponse) -> str:
    """The start of the reply's body, as text (at most `RESPONSE_EXCERPT` characters)."""
    wanted = RESPONSE_EXCERPT * 4
    taken = b""
    while len(taken) < wanted:
        chunk = await response.content.read(wanted - len(taken))
        if not chunk:
            break
        taken += chunk
    return taken.decode("utf-8", errors="replace")[:RESPONSE_EXCERPT]
