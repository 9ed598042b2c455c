"""One terminal's HTTP conversation with the endpoint: JWT login, token refresh, error mapping.

This module sends exactly what it is asked to and never retries anything except one fresh login when the
server rejects the token; retries and reconciliation live in `reconciliation.py`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import httpx

from . import documents
from .errors import (
    UNAUTHORIZED_MESSAGE,
    AuthenticationFailed,
    ConfigurationError,
    GiftLedgerError,
    ServerError,
    Throttled,
    TransportError,
    error_from_graphql,
)
from .responses import UNEXPECTED_RESPONSE
from .settings import TerminalSettings

logger = logging.getLogger("giftledger_client")

USER_AGENT = "giftledger-client"
TOKEN_HEADERS = ("X-Authorization", "Authorization")  # in order of preference
INVALID_RESPONSE = "INVALID_RESPONSE"


class GraphQLSession:
    """Posts GraphQL documents for one terminal, logged in lazily, sending `Authorization: Bearer <jwt>`.

    Not safe for concurrent use: give each till (thread) its own client.
    """

    def __init__(self, settings: TerminalSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self._settings = settings
        self._token: str | None = None
        self._http = httpx.Client(
            transport=transport,
            timeout=settings.timeout,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        )

    @property
    def logged_in(self) -> bool:
        """True once a token is held."""
        return self._token is not None

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def log_in(self) -> None:
        """Call `loginUser` and keep the token from the `X-Authorization` (or `Authorization`) header."""
        self._token = None
        variables = {"username": self._settings.username, "password": self._settings.password}
        try:
            data = self._exchange(documents.LOG_IN, variables)
        except (ServerError, Throttled, TransportError, ConfigurationError):
            self._token = None
            raise
        except GiftLedgerError as exc:
            self._token = None
            raise AuthenticationFailed(
                exc.message, code=exc.code, validation=exc.validation, customer_facing=exc.customer_facing
            ) from exc
        if data.get("loginUser") is None:
            self._token = None
            raise AuthenticationFailed("The server refused the login.")
        if self._token is None:
            raise AuthenticationFailed("The server accepted the login but sent no token.")

    def execute(self, document: str, variables: Mapping[str, object]) -> dict[str, Any]:
        """Send one document and return its `data`; GraphQL errors are raised as `GiftLedgerError`s.

        Logs in first if needed. If the server answers "Unauthorized", logs in again and sends the same
        request once more; a second "Unauthorized" raises `AuthenticationFailed`.
        """
        if self._token is None:
            self.log_in()
        try:
            return self._exchange(document, variables)
        except AuthenticationFailed as exc:
            if not _token_rejected(exc):
                raise
        logger.info("giftledger_client: token rejected; logging in again")
        self.log_in()
        return self._exchange(document, variables)

    def _exchange(self, document: str, variables: Mapping[str, object]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            body = {"query": document, "variables": dict(variables)}
            response = self._http.post(self._settings.endpoint, json=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransportError(
                f"Could not connect to the gift card server ({type(exc).__name__}).", request_sent=False
            ) from exc
        except httpx.TimeoutException as exc:
            raise TransportError(f"The gift card server did not answer in time ({type(exc).__name__}).") from exc
        except httpx.RequestError as exc:
            raise TransportError(f"The connection to the gift card server failed ({type(exc).__name__}).") from exc
        self._adopt_token(response)
        return _read(response)

    def _adopt_token(self, response: httpx.Response) -> None:
        for name in TOKEN_HEADERS:
            value = response.headers.get(name, "").strip()
            if value:
                scheme, _, credentials = value.partition(" ")
                token = credentials.strip() if scheme.lower() == "bearer" else value
                if token:
                    self._token = token
                    return


def _has_data(payload: object) -> bool:
    data = payload.get("data") if isinstance(payload, dict) else None
    return isinstance(data, dict) and any(value is not None for value in data.values())


def _token_rejected(error: AuthenticationFailed) -> bool:
    return error.code == AuthenticationFailed.default_code


def _read(response: httpx.Response) -> dict[str, Any]:
    status = response.status_code
    try:
        payload: object = response.json()
    except ValueError:
        payload = None
    errors = payload.get("errors") if isinstance(payload, dict) else None
    first_error = error_from_graphql(errors[0]) if isinstance(errors, list) and errors else None

    if status >= 500:
        # A recognised refusal stands; an unrecognised message on a 5xx (a proxy's or a framework's error
        # page in GraphQL shape) says nothing about the outcome: temporary, to be reconciled.
        if first_error is not None and type(first_error) not in (GiftLedgerError, ServerError):
            raise first_error
        if first_error is not None:
            raise ServerError(first_error.message, retryable=True, code=first_error.code)
        raise ServerError(f"The gift card server failed (HTTP {status}).", retryable=True)
    if status == 429:
        if isinstance(first_error, Throttled):
            raise first_error
        raise Throttled("Too many requests. Try again later.")
    if first_error is not None:
        if _has_data(payload):
            # The operation ran and only part of the reply failed: for a mutation that means "applied".
            raise ServerError(first_error.message, code=UNEXPECTED_RESPONSE)
        raise first_error
    if 300 <= status < 400:
        location = response.headers.get("Location", "another address")
        raise ConfigurationError(f"The endpoint redirects to {location}: set the endpoint to that URL.")
    if status == 401:
        raise AuthenticationFailed(UNAUTHORIZED_MESSAGE)
    if status == 403:
        raise AuthenticationFailed("Forbidden", code="FORBIDDEN")
    if status in (404, 405):
        raise ConfigurationError(f"No GraphQL endpoint at {response.request.url} (HTTP {status}).")
    if status >= 400:
        raise ServerError(f"The gift card server refused the request (HTTP {status}).", code=f"HTTP_{status}")
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        # Nothing says whether the server acted on it: treat it like a lost reply.
        raise ServerError(
            "The gift card server sent a reply that is not GraphQL JSON.",
            retryable=True,
            code=INVALID_RESPONSE,
        )
    return data
