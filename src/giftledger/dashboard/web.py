"""The dashboard's HTTP plumbing: templates, the session cookie, CSRF checks, and how refusals look.

Pages are plain functions of a `Page` (request + session + parsed form). `Dashboard.page` wraps them:
it finds the session (or sends the browser to log in), checks the CSRF token of every POST, and turns
the services' refusals into pages (403, 404, 409, 503). No business rule lives here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from giftledger.dashboard import navigation
from giftledger.domain.errors import Conflict, DomainError, Forbidden, NotFound, Retryable, Unauthorized
from giftledger.domain.permissions import Permission, allows
from giftledger.services.context import Principal, Services
from giftledger.services.dashboard_sessions import DashboardSession, csrf_matches, open_session

log = logging.getLogger("giftledger.dashboard")

SESSION_COOKIE = "gl_session"
LOGIN_CSRF_COOKIE = "gl_login_csrf"
CSRF_FIELD = "csrf_token"
FORM_EXPIRED = "This form has expired. Go back, reload the page and try again."

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

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
    "reversed": "Line item reversed.",
    "role-changed": "Role changed.",
    "member-removed": "Team member removed.",
    "password-changed": "Password changed. Your other sessions have ended.",
    "switched": "Switched account.",
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


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


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
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def safe_next(target: str | None) -> str:
    """Only same-site paths are followed after logging in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@dataclass
class Page:
    """One request to a signed-in page."""

    request: Request
    dashboard: Dashboard
    session: DashboardSession
    form: FormData | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        return self.dashboard.services

    @property
    def principal(self) -> Principal:
        return self.session.principal

    def field(self, name: str) -> str:
        """A text field of the posted form ("" when absent)."""
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else ""

    def path_int(self, name: str) -> int:
        raw = str(self.request.path_params.get(name, ""))
        if not raw.isdigit() or len(raw) > 18:
            raise NotFound("No such page.")
        return int(raw)

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
            "nav": navigation.sections(session.principal, request.url.path) if session else [],
            "notice": NOTICES.get(request.query_params.get("done", "")),
            "errors": {},
            "values": {},
            "can": (lambda permission: allows(session.principal.role, Permission(permission))) if session else None,
        }
        base.update(context)
        html = self.env.get_template(template).render(**base)
        return harden(HTMLResponse(html, status_code=status))

    def error_page(self, request: Request, session: DashboardSession | None, status: int, message: str) -> Response:
        titles = {400: "Not possible", 403: "Not allowed", 404: "Not found", 409: "Not possible", 503: "Try again"}
        return self.render(
            request, "error.html", session=session, status=status, title=titles.get(status, "Error"), message=message
        )

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a page: sign-in required, CSRF-checked POSTs, refusals shown as pages."""

        async def endpoint(request: Request) -> Response:
            try:
                session = await open_session(self.services, request.cookies.get(SESSION_COOKIE))
            except Retryable as error:
                return self.error_page(request, None, 503, error.message)
            if session is None:
                if request.method == "GET":
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return harden(RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303))
                return harden(RedirectResponse("/login", status_code=303))
            form = None
            if request.method == "POST":
                form = await request.form(max_files=0, max_fields=500)
                offered = form.get(CSRF_FIELD)
                if not csrf_matches(session.csrf_token, offered if isinstance(offered, str) else None):
                    return self.error_page(request, session, 403, FORM_EXPIRED)
            page = Page(request, self, session, form)
            try:
                return await handler(page)
            except Unauthorized:
                return harden(RedirectResponse("/login", status_code=303))
            except Forbidden as error:
                return self.error_page(request, session, 403, error.message)
            except NotFound as error:
                return self.error_page(request, session, 404, error.message)
            except Conflict as error:
                return self.error_page(request, session, 409, error.message)
            except Retryable as error:
                return self.error_page(request, session, 503, error.message)
            except DomainError as error:
                return self.error_page(request, session, 400, error.message)

        return endpoint
