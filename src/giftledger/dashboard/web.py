"""The dashboard's HTTP plumbing: templates, the session cookie, CSRF checks, and how refusals look.

Pages are plain functions of a `Page` (request + session + parsed form). `Dashboard.page` wraps them:
it finds the session (or sends the browser to log in), checks the CSRF token of every POST, and turns
the services' refusals into pages (403, 404, 409, 429, 503). `Dashboard.change` wraps a form that changes
something the same way and writes exactly one audit record per form received, accepted or refused, after
the page is done (so a refusal's record is not rolled back with the refused change). No business rule
lives here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Message

from giftledger.dashboard import navigation
from giftledger.dashboard.forms import whole_number
from giftledger.domain import time_zones
from giftledger.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    Retryable,
    Throttled,
    Unauthorized,
    ValidationFailed,
)
from giftledger.domain.permissions import Permission, allows
from giftledger.domain.time_zones import DEFAULT_TIME_ZONE
from giftledger.security_headers import DASHBOARD_HEADERS
from giftledger.services import audit, dev_mail
from giftledger.services.audit import Audit, Scalar
from giftledger.services.context import Principal, Services
from giftledger.services.dashboard_sessions import DashboardSession, account_choice, csrf_matches, open_session

log = logging.getLogger("giftledger.dashboard")

SESSION_COOKIE = "gl_session"
LOGIN_CSRF_COOKIE = "gl_login_csrf"
CSRF_FIELD = "csrf_token"
FORM_EXPIRED = "This form has expired. Go back, reload the page and try again."
FORM_UNREADABLE = "This form could not be read. Go back, reload the page and try again."
# What an upload form may carry besides its file (the CSRF token, a few short fields, the multipart headers).
UPLOAD_FORM_OVERHEAD = 16_384
FORM_LIMIT = 65_536  # the largest form the dashboard sends (the site mapping of many sites) is far below this
FORM_TOO_LARGE = "This form is too large. Go back and try again with less in it."
PAGE_NOT_FOUND = "There is no page at this address. Check it, or start again from the overview."
METHOD_NOT_ALLOWED = "This page cannot be used that way. Go back, reload the page and try again."
MAX_NOTE_LENGTH = 200  # a typed value kept in an audit record is cut to this many characters

# The audit record's error code for a refusal a page showed itself (a form with its problems next to the
# fields, say), when the page did not name the refusal (`Page.refused`).
REFUSAL_CODES = {400: "VALIDATION", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT", 429: "THROTTLED"}

# Messages shown after a form redirects (Post/Redirect/Get): fixed texts chosen by key, never echoed input.
NOTICES = {
    "site-added": "Site added.",
    "site-saved": "Site saved.",
    "site-deleted": "Site deleted. Its history keeps its name.",
    "api-user-created": "API user created.",
    "api-user-unconfirmed": (
        "API user created, but you did not confirm you noted its password. If you did not, delete it and "
        "create a new one: the password cannot be shown again."
    ),
    "api-user-deleted": "API user deleted. Its tokens no longer work.",
    "mapping-saved": "Site mapping saved.",
    "modifier-added": "Price modifier added.",
    "modifier-saved": "Price modifier saved.",
    "modifier-removed": "Price modifier removed.",
    "adjusted": "Balance adjusted.",
    "validity-saved": "Validity and expiry saved: they apply to cards sold from now on.",
    "card-blocked": "Card blocked: tills are refused until it is unblocked.",
    "card-unblocked": "Card unblocked.",
    "expiry-changed": "Expiry changed.",
    "reversed": "Line item reversed.",
    "card-replaced": "Card replaced: this is the new card, holding the old card's whole balance.",
    "pin-saved": "PIN setting saved: it applies to the cards sold from now on.",
    "resent": "A copy of the e-gift is queued: it is listed under Messages with how far it got.",
    "role-changed": "Role changed.",
    "member-removed": "Team member removed.",
    "invitation-cancelled": "Invitation cancelled: its link no longer works.",
    "invitation-accepted": "Invitation accepted: you are now a member of this account.",
    "invitation-declined": "Invitation declined.",
    "password-changed": "Password changed. Your other sessions have ended.",
    "switched": "Switched account.",
    "branding-saved": "Branding saved.",
    "logo-removed": "Logo removed.",
    "time-zone-saved": "Time zone saved: every time on the dashboard is now shown in it.",
    "webhook-test-queued": "Test event queued: it is listed below with how far it got.",
    "webhook-disabled": "Endpoint disabled: nothing is sent to it, and its queued deliveries stopped as failed.",
    "webhook-enabled": "Endpoint enabled.",
    "webhook-redelivered": "Delivery queued again, with the same event id.",
}


def money(pence: int | None, currency: str = "GBP") -> str:
    if pence is None:
        return ""
    symbol = "£" if currency == "GBP" else f"{currency} "
    sign = "-" if pence < 0 else ""
    whole, part = divmod(abs(pence), 100)
    return f"{sign}{symbol}{whole:,}.{part:02d}"


def pounds(pence: int | None) -> str:
    """Pence as a form value ("12.50")."""
    if pence is None:
        return ""
    sign = "-" if pence < 0 else ""
    whole, part = divmod(abs(pence), 100)
    return f"{sign}{whole}.{part:02d}"


@pass_context
def when(context: Context, value: datetime | None) -> str:
    """A stored (UTC) time as the account's wall-clock time (`time_zone` of the page: its session's account)."""
    if not value:
        return ""
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # stored times are UTC
    return time_zones.local(moment, context.get("time_zone") or DEFAULT_TIME_ZONE).strftime("%Y-%m-%d %H:%M:%S")


def build_environment() -> Environment:
    env = Environment(
        loader=PackageLoader("giftledger.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = money
    env.filters["pounds"] = pounds
    env.filters["when"] = when
    return env


def harden(response: Response) -> Response:
    """A dashboard page's hardening headers: no script at all, no framing, no caching (security_headers.py)."""
    for name, value in DASHBOARD_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def safe_next(target: str | None) -> str:
    """Only same-site paths are followed after logging in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def client_address(request: Request) -> str | None:
    """Where the request came from (behind a proxy: run uvicorn with `--proxy-headers`)."""
    return request.client.host if request.client else None


@dataclass
class Change:
    """What a form's audit record says besides who, when, from where and the outcome: filled in by the page
    (`Page.note`) as it learns it, so a refused attempt says as much as it got to."""

    site_id: int | None = None
    card_ids: list[int] = field(default_factory=list)
    account_id: int | None = None  # record in this account rather than the principal's (switching account)
    detail: dict[str, Scalar | list[Scalar]] = field(default_factory=dict)


def _cut(value: Scalar) -> Scalar:
    if isinstance(value, str) and len(value) > MAX_NOTE_LENGTH:
        return value[: MAX_NOTE_LENGTH - 1] + "…"
    return value


def _short(value: Scalar | list[Scalar]) -> Scalar | list[Scalar]:
    return [_cut(v) for v in value] if isinstance(value, list) else _cut(value)


@dataclass
class Page:
    """One request to a signed-in page."""

    request: Request
    dashboard: Dashboard
    session: DashboardSession
    form: FormData | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    change: Change = field(default_factory=Change)
    refusal: DomainError | None = None  # a refusal the page showed itself (for the audit record's code)
    operation: str | None = None  # the change this form makes, as its audit record names it
    handed_over: bool = False  # the use case records the change itself when it is accepted (`audit`)

    @property
    def services(self) -> Services:
        return self.dashboard.services

    @property
    def principal(self) -> Principal:
        return self.session.principal

    def note(
        self,
        *,
        site_id: int | None = None,
        card_id: int | None = None,
        account_id: int | None = None,
        **detail: Scalar | list[Scalar],
    ) -> None:
        """Facts for this form's audit record: the site and card it concerns (ids of this account), and plain
        details (ids, names, amounts; never a password, and keys naming a secret are dropped anyway)."""
        if site_id is not None:
            self.change.site_id = site_id
        if card_id is not None and card_id not in self.change.card_ids:
            self.change.card_ids.append(card_id)
        if account_id is not None:
            self.change.account_id = account_id
        for key, value in detail.items():
            self.change.detail[key] = _short(value)

    def audit(self) -> Audit:
        """For a use case that moves money: the record it writes in the movement's own transaction when it is
        accepted (with what the page has noted so far); the form's wrapper then writes no accepted record."""
        assert self.operation is not None, "only a form that changes something has an audit record"
        self.handed_over = True
        return Audit(self.operation, dict(self.change.detail))

    def refused(self, error: DomainError) -> DomainError:
        """Name the refusal a page shows itself, so the audit record carries its exact code."""
        self.refusal = error
        return error

    def field(self, name: str) -> str:
        """A text field of the posted form ("" when absent)."""
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else ""

    async def file(self, name: str) -> bytes | None:
        """The bytes of a file field of an upload form (`Dashboard.change(max_upload=...)`); None when no file
        was chosen (a browser then sends an empty part with no file name)."""
        value = self.form.get(name) if self.form is not None else None
        if not isinstance(value, UploadFile) or (not value.filename and not value.size):
            return None
        return await value.read()

    def path_int(self, name: str) -> int:
        number = whole_number(str(self.request.path_params.get(name, "")))
        if number is None:
            raise NotFound("No such page.")
        return number

    def render(self, template: str, *, status: int = 200, **context: Any) -> Response:
        return self.dashboard.render(self.request, template, session=self.session, status=status, **context)

    def redirect(self, path: str, notice: str | None = None) -> Response:
        if notice is not None:
            assert notice in NOTICES
            path, hash_, fragment = path.partition("#")
            path += ("&" if "?" in path else "?") + f"done={notice}" + hash_ + fragment
        return harden(RedirectResponse(path, status_code=303))


Handler = Callable[[Page], Awaitable[Response]]


class Dashboard:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.env = build_environment()

    def render(
        self,
        request: Request,
        template: str,
        *,
        session: DashboardSession | None = None,
        status: int = 200,
        **context: Any,
    ) -> Response:
        base: dict[str, Any] = {
            "request_path": request.url.path,
            "session": session,
            "nav": self._nav(session, request.url.path) if session else [],
            "notice": NOTICES.get(request.query_params.get("done", "")),
            "errors": {},
            "values": {},
            "can": (lambda permission: allows(session.principal.role, Permission(permission))) if session else None,
            "time_zone": session.time_zone if session else DEFAULT_TIME_ZONE,
        }
        base.update(context)
        html = self.env.get_template(template).render(**base)
        return harden(HTMLResponse(html, status_code=status))

    def _nav(self, session: DashboardSession, path: str) -> list[navigation.Section]:
        mail = dev_mail.available(self.services.settings, session.principal)
        return navigation.sections(session.principal, path, dev_mail=mail)

    def error_page(self, request: Request, session: DashboardSession | None, status: int, message: str) -> Response:
        titles = {
            400: "Not possible",
            403: "Not allowed",
            404: "Not found",
            409: "Not possible",
            405: "Not possible",
            413: "Too large",
            429: "Try again later",
            503: "Try again",
        }
        return self.render(
            request, "error.html", session=session, status=status, title=titles.get(status, "Error"), message=message
        )

    async def unmatched(self, request: Request, error: Exception) -> Response:
        """The answer to a path no route has (404) or a method a page does not take (405): the styled error
        page, with the dashboard's navigation when the browser is signed in. Nothing is written (`open_session`
        only reads)."""
        assert isinstance(error, HTTPException)
        try:
            session = await open_session(
                self.services, request.cookies.get(SESSION_COOKIE), client_address=client_address(request)
            )
        except Retryable:
            session = None  # the page still says what is wrong with the address
        message = PAGE_NOT_FOUND if error.status_code == 404 else METHOD_NOT_ALLOWED
        response = self.error_page(request, session, error.status_code, message)
        response.headers.update(error.headers or {})  # a 405's Allow
        return response

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a page that changes nothing: sign-in required, CSRF-checked POSTs, refusals shown as pages."""
        return self._endpoint(handler, None)

    def change(
        self, operation: str, handler: Handler, *, max_upload: int | None = None
    ) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a form that changes something, as `page` does, and write one audit record for every form a
        signed-in person sends, under `operation`: accepted when the page answered with a success or a
        redirect, refused (with the refusal's code) when it was refused anywhere: an expired or unreadable
        form, a permission, a validation problem, a conflict, throttling, or an unexpected error.

        `max_upload`: this form may carry one file of up to that many bytes (`Page.file`); its whole body is
        then bounded to that plus `UPLOAD_FORM_OVERHEAD`, and a larger one is refused (413) unread. Every other
        form carries no file at all."""
        return self._endpoint(handler, operation, max_upload)

    def _endpoint(
        self, handler: Handler, operation: str | None, max_upload: int | None = None
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            address = client_address(request)
            try:
                session = await open_session(self.services, request.cookies.get(SESSION_COOKIE), client_address=address)
            except Retryable as error:
                return self.error_page(request, None, 503, error.message)
            if session is None:
                # Nobody to record: a form posted without a session names no one and no account, and
                # writing a record for each would let anyone fill the log without limit.
                return await self.sign_in_first(request)
            form = None
            if request.method == "POST":
                limit = max_upload + UPLOAD_FORM_OVERHEAD if max_upload else FORM_LIMIT
                posted = await posted_form(request, session.csrf_token, limit=limit, max_files=1 if max_upload else 0)
                if posted.refusal is not None:
                    status, message, refused = posted.refusal
                    await self.audit(request, session.principal, operation, refused)
                    if status == 413 and max_upload:
                        message = _too_large(max_upload)
                    return self.error_page(request, session, status, message)
                form = posted.form
            page = Page(request, self, session, form, operation=operation)
            try:
                response = await handler(page)
            except DomainError as error:
                response = self.refusal_page(request, session, error)
                code: str | None = refusal_code(page.refusal or error)
            except Exception:
                await self.audit(request, session.principal, operation, "INTERNAL", page.change)
                raise
            else:
                code = None
                if response.status_code >= 400:
                    code = page.refusal.code if page.refusal else REFUSAL_CODES.get(response.status_code, "REFUSED")
            if code is not None or not page.handed_over:
                await self.audit(request, session.principal, operation, code, page.change)
            return response

        return endpoint

    async def sign_in_first(self, request: Request) -> Response:
        """Where a request without a session on an account goes: the account chooser when the browser is
        signed in but has not chosen an account yet, else the login page (back to this page afterwards)."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        following = f"?next={quote(target, safe='')}" if request.method == "GET" else ""
        token = request.cookies.get(SESSION_COOKIE)
        choice = await account_choice(self.services, token) if token else None
        page = "/accounts" if choice is not None and choice.chosen is None else "/login"
        return harden(RedirectResponse(page + following, status_code=303))

    def refusal_page(self, request: Request, session: DashboardSession, error: DomainError) -> Response:
        """How a refusal the page did not show itself looks."""
        if isinstance(error, Unauthorized):
            return harden(RedirectResponse("/login", status_code=303))
        if isinstance(error, Forbidden):
            return self.error_page(request, session, 403, error.message)
        if isinstance(error, NotFound):
            return self.error_page(request, session, 404, error.message)
        if isinstance(error, Conflict):
            return self.error_page(request, session, 409, error.message)
        if isinstance(error, Throttled):
            return self.error_page(request, session, 429, error.message)
        if isinstance(error, Retryable):
            return self.error_page(request, session, 503, error.message)
        if isinstance(error, ValidationFailed):  # its message is only "validation": say what was wrong
            problems = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in error.fields.items())
            return self.error_page(request, session, 400, problems or error.message)
        return self.error_page(request, session, 400, error.message)

    async def audit(
        self,
        request: Request,
        principal: Principal | None,
        operation: str | None,
        code: str | None,
        change: Change | None = None,
    ) -> None:
        """Write the audit record of one form (nothing for a page that changes nothing). `code` is None
        for an accepted change, else the refusal's code. A record that cannot be written is logged: the
        answer the person gets does not change (an accepted change is already committed)."""
        if operation is None:
            return
        change = change or Change()
        try:
            await audit.record_change(
                self.services,
                principal,
                operation=operation,
                outcome=audit.REFUSED if code else audit.ACCEPTED,
                account_id=change.account_id if code is None else None,
                site_id=change.site_id,
                card_ids=change.card_ids,
                error_code=code,
                client_address=client_address(request),
                detail=change.detail,
            )
        except _RECORD_FAILURES as error:
            log.error("audit record of %s (%s) not written: %s", operation, code or "accepted", type(error).__name__)


class FormTooLarge(Exception):
    """A form's body is larger than its route allows."""


def _too_large(max_upload: int) -> str:
    return f"This file is too large: at most {max_upload // 1000} kB. Go back and choose a smaller one."


@dataclass(frozen=True)
class Posted:
    """A posted form as read by `posted_form`: the form (None when it could not be read), and the refusal
    (status, message, audit code) when it may not be used."""

    form: FormData | None
    refusal: tuple[int, str, str] | None = None

    def field(self, name: str) -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else ""


async def posted_form(
    request: Request, expected_csrf: str | None, *, limit: int = FORM_LIMIT, max_files: int = 0
) -> Posted:
    """Every form the dashboard receives, read one way: bounded (`read_form`: 413), readable (400), and carrying
    the CSRF token expected (the session's, or a double-submit cookie's before there is a session: 403)."""
    try:
        form = await read_form(request, limit=limit, max_files=max_files)
    except HTTPException:  # not a form this dashboard sends (files, too many fields)
        return Posted(None, (400, FORM_UNREADABLE, "BAD_FORM"))
    except FormTooLarge:
        return Posted(None, (413, FORM_TOO_LARGE, "TOO_LARGE"))
    offered = form.get(CSRF_FIELD)
    if not expected_csrf or not csrf_matches(expected_csrf, offered if isinstance(offered, str) else None):
        return Posted(form, (403, FORM_EXPIRED, "CSRF"))
    return Posted(form)


def double_submit_cookie(response: Response, request: Request, name: str, token: str, path: str) -> None:
    """The cookie a form without a session is matched against (its CSRF token), for an hour, on `path` only."""
    response.set_cookie(name, token, max_age=3600, path=path, httponly=True, samesite="lax", secure=is_https(request))


async def read_form(request: Request, *, limit: int = FORM_LIMIT, max_files: int = 0) -> FormData:
    """A posted form, its body read whole up to `limit` bytes (`FormTooLarge` as soon as it is larger, by its
    Content-Length or by what arrived, before any of it is parsed), then parsed with at most `max_files` files.
    Every form of the dashboard is read through here: Starlette alone bounds only each field (1 MB) and their
    number, so one form could hold hundreds of megabytes in memory."""
    declared = whole_number(request.headers.get("content-length"))
    if declared is not None and declared > limit:
        raise FormTooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise FormTooLarge()
    received = bytes(body)

    async def replay() -> Message:
        return {"type": "http.request", "body": received, "more_body": False}

    return await Request(request.scope, replay).form(max_files=max_files, max_fields=500, max_part_size=limit)


_RECORD_FAILURES: tuple[type[Exception], ...] = (DomainError, *audit.AUDIT_WRITE_ERRORS)


def refusal_code(error: DomainError) -> str:
    """The code of the refusal behind `error` (a page may pass a service's refusal on as a Conflict)."""
    while isinstance(error.__cause__, DomainError):
        error = error.__cause__
    return error.code
