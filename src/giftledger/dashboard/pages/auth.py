"""Logging in and out, switching account, changing one's own password."""

from __future__ import annotations

import secrets

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from giftledger.dashboard.forms import whole_number
from giftledger.dashboard.web import (
    FORM_EXPIRED,
    FORM_UNREADABLE,
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Dashboard,
    Page,
    client_address,
    harden,
    is_https,
    safe_next,
)
from giftledger.domain.errors import Forbidden, Throttled, Unauthorized, ValidationFailed
from giftledger.services import dashboard_sessions
from giftledger.services.dashboard_sessions import SESSION_LIFETIME, csrf_matches, open_session

WRONG_LOGIN = "The email or password is incorrect."
LOGIN = "dashboard.login"
LOGIN_CSRF_SECONDS = 3600


def routes(dashboard: Dashboard) -> list[Route]:
    async def login_form(request: Request) -> Response:
        if await open_session(dashboard.services, request.cookies.get(SESSION_COOKIE)) is not None:
            return harden(RedirectResponse(safe_next(request.query_params.get("next")), status_code=303))
        return _login_page(request, status=200)

    def _login_page(request: Request, *, status: int, error: str | None = None, email: str = "") -> Response:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = dashboard.render(
            request,
            "login.html",
            status=status,
            csrf_token=token,
            login_error=error,
            email=email,
            next=safe_next(request.query_params.get("next")),
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            max_age=LOGIN_CSRF_SECONDS,
            path="/login",
            httponly=True,
            samesite="lax",
            secure=is_https(request),
        )
        return response

    async def login(request: Request) -> Response:
        """Signing in. A login that succeeds is written to the account's audit trail (`dashboard.login`). A
        refused one names no account (the email may be anyone's, or nobody's): it is counted by the login
        throttle instead (per email and per address; the Audit Trail page shows those failures), so that
        guessing cannot fill the audit log without limit."""
        try:
            form = await request.form(max_files=0, max_fields=10)
        except HTTPException:
            return _login_page(request, status=400, error=FORM_UNREADABLE)
        email = str(form.get("email") or "")
        password = str(form.get("password") or "")
        offered = form.get("csrf_token")
        expected = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not expected or not csrf_matches(expected, offered if isinstance(offered, str) else None):
            return _login_page(request, status=403, error=FORM_EXPIRED, email=email)
        client = client_address(request) or "unknown"
        try:
            token = await dashboard_sessions.start_session(
                dashboard.services, email=email, password=password, client_address=client
            )
        except Throttled as error:
            return _login_page(request, status=429, error=error.message, email=email)
        except (Unauthorized, Forbidden):
            return _login_page(request, status=200, error=WRONG_LOGIN, email=email)
        session = await open_session(dashboard.services, token, client_address=client_address(request))
        if session is not None:
            await dashboard.audit(request, session.principal, LOGIN, None)
        target = safe_next(str(form.get("next") or ""))
        response = harden(RedirectResponse(target, status_code=303))
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path="/",
            httponly=True,
            samesite="lax",
            secure=is_https(request),
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    async def logout(page: Page) -> Response:
        await dashboard_sessions.end_session(page.services, page.session)
        response = harden(RedirectResponse("/login", status_code=303))
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=is_https(page.request))
        return response

    async def switch(page: Page) -> Response:
        account_id = whole_number(page.field("account_id"))
        page.note(to_account_id=account_id if account_id is not None else page.field("account_id"))
        if account_id is None:
            raise Forbidden("You are not a member of that account.")
        await dashboard_sessions.switch_account(page.services, page.session, account_id)
        page.note(account_id=account_id)  # recorded in the account switched to: it says nothing of the other
        return page.redirect("/", "switched")

    async def password_form(page: Page) -> Response:
        return page.render("password.html")

    async def password(page: Page) -> Response:
        try:
            await dashboard_sessions.change_password(
                page.services,
                page.session,
                current=page.field("current_password"),
                new=page.field("new_password"),
            )
        except ValidationFailed as error:
            return page.render("password.html", status=400, errors=error.fields)
        return page.redirect("/account/password", "password-changed")

    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", dashboard.change("dashboard.logout", logout), methods=["POST"]),
        Route("/account", dashboard.change("dashboard.account.switch", switch), methods=["POST"]),
        Route("/account/password", dashboard.page(password_form), methods=["GET"]),
        Route("/account/password", dashboard.change("dashboard.password.change", password), methods=["POST"]),
    ]
