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
server name, could otherwise serve another host at that IP)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

from giftledger.domain.webhooks import RESPONSE_EXCERPT, TIMEOUT_S, address_allowed

USER_AGENT = "giftledger-webhooks/1.0"


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
    """Posts deliveries (one instance per sender: its HTTP clients are shared by its deliveries)."""

    def __init__(self, *, production: bool, timeout_s: float = TIMEOUT_S) -> None:
        self._production = production
        self._timeout_s = timeout_s
        timeout = httpx.Timeout(timeout_s)
        self._plain = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
        self._tls = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def close(self) -> None:
        await self._plain.aclose()
        await self._tls.aclose()

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
        address = await resolve(host, port, production=self._production)
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
        client = self._tls if tls else self._plain
        request = client.build_request(
            "POST", target, content=body, headers=headers, extensions={"sni_hostname": host} if tls else None
        )
        try:
            response = await client.send(request, stream=True)
            try:
                excerpt = await _excerpt(response)
            finally:
                await response.aclose()
        except httpx.HTTPError as error:
            raise AttemptFailed(f"{type(error).__name__}: {error or 'no detail'}") from error
        if not 200 <= response.status_code < 300:
            raise AttemptFailed(f"HTTP {response.status_code}", status=response.status_code, excerpt=excerpt)
        return Reply(response.status_code, excerpt)


async def _excerpt(response: httpx.Response) -> str:
    """The start of the reply's body, as text (at most `RESPONSE_EXCERPT` characters)."""
    taken = b""
    async for chunk in response.aiter_raw():
        taken += chunk
        if len(taken) >= RESPONSE_EXCERPT * 4:
            break
    return taken.decode("utf-8", errors="replace")[:RESPONSE_EXCERPT]
