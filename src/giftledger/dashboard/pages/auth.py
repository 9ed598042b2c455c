"""Logging in and out, choosing and switching account, accepting an invitation, changing one's own password."""

from __future__ import annotations

import secrets
from dataclasses import replace
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from giftledger.dashboard.forms import whole_number
from giftledger.dashboard.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Dashboard,
    Page,
    client_address,
    double_submit_cookie,
    harden,
    is_https,
    posted_form,
    safe_next,
)
from giftledger.domain.errors import Conflict, Forbidden, NotFound, Throttled, Unauthorized, ValidationFailed
from giftledger.domain.permissions import Role
from giftledger.services import dashboard_sessions, invitations
from giftledger.services.access import NOT_A_MEMBER
from giftledger.services.dashboard_sessions import (
    SESSION_LIFETIME,
    AccountChoice,
    account_choice,
    choose_account,
    open_session,
)
from giftledger.services.invitations import NO_SUCH_INVITATION
from giftledger.services.setup import MIN_PASSWORD_LENGTH

WRONG_LOGIN = "The email or password is incorrect."
WRONG_INVITATION_PASSWORD = "This is not the password of the login for this address."
LOGIN = "dashboard.login"
SWITCH = "dashboard.account.switch"
ACCEPT = "dashboard.invitation.accept"
INVITATION_CSRF_COOKIE = "gl_invitation_csrf"


def routes(dashboard: Dashboard) -> list[Route]:
    async def login_form(request: Request) -> Response:
        if await open_session(dashboard.services, request.cookies.get(SESSION_COOKIE)) is not None:
            return harden(RedirectResponse(safe_next(request.query_params.get("next")), status_code=303))
        choice = await account_choice(dashboard.services, request.cookies.get(SESSION_COOKIE))
        if choice is not None and choice.chosen is None:  # signed in, with no account chosen yet
            target = quote(safe_next(request.query_params.get("next")), safe="")
            return harden(RedirectResponse(f"/accounts?next={target}", status_code=303))
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
        double_submit_cookie(response, request, LOGIN_CSRF_COOKIE, token, "/login")
        return response

    async def login(request: Request) -> Response:
        """Signing in. A login that succeeds is written to the account's audit trail (`dashboard.login`). A
        refused one names no account (the email may be anyone's, or nobody's): it is counted by the login
        throttle instead (per email and per address; the Audit Trail page shows those failures), so that
        guessing cannot fill the audit log without limit."""
        posted = await posted_form(request, request.cookies.get(LOGIN_CSRF_COOKIE))
        email, password = posted.field("email"), posted.field("password")
        if posted.refusal is not None:
            status, message, _ = posted.refusal
            return _login_page(request, status=status, error=message, email=email)
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
        target = safe_next(posted.field("next"))
        if session is not None:
            await dashboard.audit(request, session.principal, LOGIN, None)
        else:  # several accounts: the person chooses one (the login is recorded in the account chosen)
            target = f"/accounts?next={quote(target, safe='')}"
        response = _signed_in(request, token, target)
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    def _signed_in(request: Request, token: str, target: str) -> Response:
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
        return response

    def _signed_out() -> Response:
        response = harden(RedirectResponse("/login", status_code=303))
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
        return response

    def _accounts_page(
        request: Request, choice: AccountChoice, *, status: int = 200, error: str | None = None
    ) -> Response:
        return dashboard.render(
            request,
            "accounts.html",
            status=status,
            choice=choice,
            choice_error=error,
            roles={role.value: role.label for role in Role},
            next=safe_next(request.query_params.get("next")),
        )

    async def accounts(request: Request) -> Response:
        """The account chooser: after signing in (a person in several accounts), or any time from the sidebar.
        It also lists the invitations waiting for the person's own address."""
        choice = await account_choice(dashboard.services, request.cookies.get(SESSION_COOKIE))
        if choice is None:
            return harden(RedirectResponse("/login?next=%2Faccounts", status_code=303))
        return _accounts_page(request, choice)

    async def account_action(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        choice = await account_choice(dashboard.services, token)
        if choice is None:
            return harden(RedirectResponse("/login", status_code=303))
        posted = await posted_form(request, choice.csrf_token)
        if posted.refusal is not None:
            status, message, _ = posted.refusal
            return _accounts_page(request, choice, status=status, error=message)
        action = posted.field("action")
        services = dashboard.services
        try:
            if action == "choose":
                account_id = whole_number(posted.field("account_id"))
                if account_id is None or account_id not in choice.accounts:
                    raise Forbidden(NOT_A_MEMBER)
                principal = await choose_account(services, choice.session_id, choice.user_id, account_id)
                chosen = replace(principal, client_address=client_address(request))
                await dashboard.audit(request, chosen, LOGIN if choice.chosen is None else SWITCH, None)
                return harden(RedirectResponse(safe_next(posted.field("next")), status_code=303))
            if action in ("accept", "decline"):
                invitation_id = whole_number(posted.field("invitation_id"))
                if invitation_id is None:
                    raise NotFound(NO_SUCH_INVITATION)
                if action == "decline":
                    await invitations.decline(services, choice.user_id, invitation_id)
                    return harden(RedirectResponse("/accounts?done=invitation-declined", status_code=303))
                joined = await invitations.accept_signed_in(services, choice.session_id, choice.user_id, invitation_id)
                principal = replace(joined.principal, client_address=client_address(request))
                await dashboard.audit(request, principal, ACCEPT, None)
                return harden(RedirectResponse("/?done=invitation-accepted", status_code=303))
            if action == "logout":
                await dashboard_sessions.end_session_by_id(services, choice.session_id)
                return _signed_out()
        except Forbidden as error:
            return _accounts_page(request, choice, status=403, error=error.message)
        except NotFound as error:
            return _accounts_page(request, choice, status=404, error=error.message)
        return _accounts_page(request, choice, status=400, error="Choose an account or an invitation.")

    def _invitation_page(
        request: Request,
        view: invitations.InvitationView,
        *,
        status: int = 200,
        error: str | None = None,
        errors: dict[str, list[str]] | None = None,
        name: str | None = None,
    ) -> Response:
        token = request.cookies.get(INVITATION_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = dashboard.render(
            request,
            "invitation.html",
            status=status,
            invitation=view,
            invitation_error=error,
            errors=errors or {},
            name=view.name if name is None else name,
            csrf_token=token,
            action=request.url.path,
            min_password=MIN_PASSWORD_LENGTH,
        )
        double_submit_cookie(response, request, INVITATION_CSRF_COOKIE, token, "/invitations")
        return response

    def _invalid_link(request: Request) -> Response:
        return dashboard.error_page(request, None, 404, invitations.INVALID_LINK)

    async def invitation(request: Request) -> Response:
        """An invitation's link: who invites whom, and the form that accepts it."""
        view = await invitations.invitation_by_link(dashboard.services, request.path_params["link"])
        return _invitation_page(request, view) if view else _invalid_link(request)

    async def accept_invitation(request: Request) -> Response:
        link = request.path_params["link"]
        view = await invitations.invitation_by_link(dashboard.services, link)
        if view is None:
            return _invalid_link(request)
        posted = await posted_form(request, request.cookies.get(INVITATION_CSRF_COOKIE))
        name = posted.field("name")
        if posted.refusal is not None:
            status, message, _ = posted.refusal
            return _invitation_page(request, view, status=status, error=message, name=name)
        try:
            joined = await invitations.accept_by_link(
                dashboard.services,
                link,
                password=posted.field("password"),
                name=name,
                client_address=client_address(request) or "unknown",
            )
        except Unauthorized:
            return _invitation_page(request, view, error=WRONG_INVITATION_PASSWORD, name=name)
        except Throttled as error:
            return _invitation_page(request, view, status=429, error=error.message, name=name)
        except ValidationFailed as error:
            return _invitation_page(request, view, status=400, errors=error.fields, name=name)
        except Conflict as error:
            return _invitation_page(request, view, status=409, error=error.message, name=name)
        except NotFound:
            return _invalid_link(request)
        principal = replace(joined.principal, client_address=client_address(request))
        await dashboard.audit(request, principal, ACCEPT, None)
        assert joined.session_token is not None
        response = _signed_in(request, joined.session_token, "/?done=invitation-accepted")
        response.delete_cookie(INVITATION_CSRF_COOKIE, path="/invitations")
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
            raise Forbidden(NOT_A_MEMBER)
        await dashboard_sessions.choose_account(page.services, page.session.session_id, page.principal.id, account_id)
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
        Route("/account", dashboard.change(SWITCH, switch), methods=["POST"]),
        Route("/accounts", accounts, methods=["GET"]),
        Route("/accounts", account_action, methods=["POST"]),
        Route("/invitations/{link}", invitation, methods=["GET"]),
        Route("/invitations/{link}", accept_invitation, methods=["POST"]),
        Route("/account/password", dashboard.page(password_form), methods=["GET"]),
        Route("/account/password", dashboard.change("dashboard.password.change", password), methods=["POST"]),
    ]
