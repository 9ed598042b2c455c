"""Issue 15 F3: a shared login never lets one tenant read or change anything of another.

Before: inviting account 2's owner from account 1 showed account 2's stored name and that the login existed,
added them at once without consent, and (logins acting on the lowest account id) their next token was for
account 1. Now an invitation is pending until the person accepts it with their own password, the inviter's
page reads the same whether or not the address has a login, and a person in several accounts chooses one."""

from __future__ import annotations

import email as email_parser
import email.policy as email_policy
import re
import uuid
from email.message import EmailMessage

import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from giftledger.domain.errors import Forbidden, NotFound, Unauthorized
from giftledger.domain.permissions import Role
from giftledger.services import access, dashboard_sessions, invitations, setup, team
from giftledger.services.context import Services
from giftledger.storage.outbox import outbox_messages
from giftledger.storage.people import Directory
from tests.dashboard.browser import off_loop, unchanged
from tests.dashboard.helpers import PASSWORD, invitation_path
from tests.dashboard.web import Web, field_error, text_of
from tests.support import Demo, new_demo

SECRET_NAME = "Bettina Secretname"


async def memberships(services: Services, email: str) -> list[tuple[int, str]]:
    async with services.db.read() as conn:
        directory = Directory(conn)
        user = await directory.user_by_email(email)
        assert user is not None
        return [(m.account_id, m.role) for m in await directory.memberships(user.id)]


async def other_tenant(services: Services, database_url: str) -> tuple[Demo, str]:
    """A second account, with an owner whose stored name the first account must never see."""
    other: Demo = off_loop(new_demo, database_url)
    email = f"bettina-{uuid.uuid4().hex[:8]}@other.example"
    await setup.add_team_member(
        services, setup.operator(other.account_id), email=email, name=SECRET_NAME, role="store_owner", password=PASSWORD
    )
    return other, email


async def owner_of(app: Starlette, demo: Demo) -> Web:
    web = Web(app)
    assert (await web.log_in(demo.owner_email, demo.owner_password)).status_code == 303
    return web


def invited_page(body: str, email: str) -> str:
    """The inviter's page with what differs by design blanked: the address typed, and the invitations' times (the
    two requests may fall either side of a second's boundary)."""
    return re.sub(r"\d{2}:\d{2}:\d{2}", "HH:MM:SS", text_of(body).replace(email, "EMAIL"))


async def test_inviting_another_tenants_login_reveals_nothing_and_changes_nothing(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    other, email = await other_tenant(services, database_url)
    owner = await owner_of(app, demo)
    before = await memberships(services, email)
    assert before == [(other.account_id, "store_owner")]

    with unchanged(database_url, other.account_id):
        existing = await owner.post("/settings/team", {"name": "Typed Name", "email": email, "role": "store_manager"})
        fresh_email = f"nobody-{uuid.uuid4().hex[:8]}@other.example"
        fresh = await owner.post(
            "/settings/team", {"name": "Typed Name", "email": fresh_email, "role": "store_manager"}
        )
    assert existing.status_code == fresh.status_code == 200
    # the same page, whether or not the address has a login; the stored name is nowhere; the link only in the
    # email to the address invited, never on the inviter's page
    assert invited_page(existing.text, email) == invited_page(fresh.text, fresh_email)
    for address, page in ((email, existing), (fresh_email, fresh)):
        path = await invitation_path(services, demo.account_id, address)
        assert path.removeprefix("/invitations/") not in page.text
    team_page = await owner.get("/settings/team")
    for body in (existing.text, team_page.text):
        assert SECRET_NAME not in body
    assert await memberships(services, email) == before  # not added without consent

    # the person's own sign-ins still act on their own account: the dashboard, and a token through the API
    theirs = Web(app)
    signed_in = await theirs.log_in(email, PASSWORD)
    assert signed_in.headers["location"] == "/"
    home = await theirs.get("/")
    assert re.search(rf'data-testid="account-id">{other.account_id}<', home.text)
    login = await access.log_in(services, username=None, email=email, password=PASSWORD, client_address="till")
    assert (login.principal.account_id, login.principal.role) == (other.account_id, Role.STORE_OWNER)


async def test_joining_takes_the_invited_logins_own_password(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    other, email = await other_tenant(services, database_url)
    owner = await owner_of(app, demo)
    invited = await owner.post("/settings/team", {"name": "Typed Name", "email": email, "role": "guest_service"})
    assert invited.status_code == 200
    path = await invitation_path(services, demo.account_id, email)

    holder = Web(app)  # whoever holds the link: without the login's password, nothing happens
    shown = await holder.get(path)
    assert "Typed Name" in shown.text and SECRET_NAME not in shown.text
    for password in ("wrong-password-1", ""):
        with unchanged(database_url, other.account_id), unchanged(database_url, demo.account_id):
            refused = await holder.post(path, {"password": password, "name": "Hijacker"})
        assert refused.status_code == 200
        assert "This is not the password of the login for this address." in text_of(refused.text)
        assert "gl_session" not in refused.headers.get("set-cookie", "")
    assert await memberships(services, email) == [(other.account_id, "store_owner")]
    assert [i.email for i in await team.pending_invitations(services, setup.operator(demo.account_id))] == [email]

    accepted = await holder.post(path, {"password": PASSWORD, "name": "Ignored for an existing login"})
    assert (accepted.status_code, accepted.headers["location"]) == (303, "/?done=invitation-accepted")
    home = await holder.get("/")
    assert re.search(rf'data-testid="account-id">{demo.account_id}<', home.text)
    assert sorted(await memberships(services, email)) == sorted(
        [(other.account_id, "store_owner"), (demo.account_id, "guest_service")]
    )
    async with services.db.read() as conn:
        user = await Directory(conn).user_by_email(email)
    assert user is not None and user.name == SECRET_NAME  # the person's own name is theirs to keep
    assert (await Web(app).get(path)).status_code == 404  # used up

    # in two accounts now: every sign-in names the account, never "the lowest id"
    with pytest.raises(Forbidden) as several:
        await access.log_in(services, username=None, email=email, password=PASSWORD, client_address="till")
    assert several.value.message == access.SEVERAL_ACCOUNTS
    for account_id, role in ((demo.account_id, Role.GUEST_SERVICE), (other.account_id, Role.STORE_OWNER)):
        login = await access.log_in(
            services, username=None, email=email, password=PASSWORD, client_address="till", account_id=account_id
        )
        assert (login.principal.account_id, login.principal.role) == (account_id, role)
        claims = services.tokens.verify(login.token)
        assert claims is not None and claims.account_id == account_id
    stranger: Demo = off_loop(new_demo, database_url)
    with pytest.raises(Forbidden) as outside:
        await access.log_in(
            services,
            username=None,
            email=email,
            password=PASSWORD,
            client_address="till",
            account_id=stranger.account_id,
        )
    assert outside.value.message == access.NOT_A_MEMBER
    again = await Web(app).log_in(email, PASSWORD)
    assert again.headers["location"] == "/accounts?next=%2F"


async def test_the_api_login_names_the_account_of_a_person_in_several(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    other, email = await other_tenant(services, database_url)
    await setup.add_team_member(
        services, setup.operator(demo.account_id), email=email, name="x", role="store_manager", password=""
    )
    web = Web(app)
    query = (
        "query($email:String,$password:String!,$account:Int)"
        "{loginUser(email:$email,password:$password,account_id:$account){id email}}"
    )

    async def login(account: int | None) -> tuple[dict[str, object], str | None]:
        variables: dict[str, object] = {"email": email, "password": PASSWORD}
        if account is not None:
            variables["account"] = account
        response = await web.http.post("/graphql", json={"query": query, "variables": variables})
        assert response.status_code == 200
        return response.json(), response.headers.get("x-authorization")

    body, token = await login(None)
    assert token is None and body["data"] == {"loginUser": None}
    assert [e["message"] for e in body["errors"]] == [access.SEVERAL_ACCOUNTS]  # type: ignore[union-attr,index]
    for account_id in (demo.account_id, other.account_id):
        body, token = await login(account_id)
        assert "errors" not in body and token is not None
        claims = services.tokens.verify(token.removeprefix("Bearer "))
        assert claims is not None and claims.account_id == account_id


async def test_a_signed_in_person_accepts_or_declines_from_the_account_chooser(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    other, email = await other_tenant(services, database_url)
    owner = await owner_of(app, demo)
    await owner.post("/settings/team", {"name": "Typed Name", "email": email, "role": "foh_manager"})
    person = Web(app)
    await person.log_in(email, PASSWORD)
    chooser = await person.get("/accounts")
    invitation_ids = re.findall(r'data-invitation-id="(\d+)"', chooser.text)
    assert len(invitation_ids) == 1
    async with services.db.read() as conn:
        account_name = await Directory(conn).account_name(demo.account_id)
    assert f"{account_name} invites you to join as Front of House manager." in text_of(chooser.text)

    declined = await person.post("/accounts", {"action": "decline", "invitation_id": invitation_ids[0]})
    assert declined.headers["location"] == "/accounts?done=invitation-declined"
    assert await team.pending_invitations(services, setup.operator(demo.account_id)) == []
    assert await memberships(services, email) == [(other.account_id, "store_owner")]
    for action in ("accept", "decline"):  # gone: refused, nothing changes
        gone = await person.post("/accounts", {"action": action, "invitation_id": invitation_ids[0]})
        assert (gone.status_code, invitations.NO_SUCH_INVITATION in text_of(gone.text)) == (404, True)
    assert await memberships(services, email) == [(other.account_id, "store_owner")]

    await owner.post("/settings/team", {"name": "Typed Name", "email": email, "role": "foh_manager"})
    chooser = await person.get("/accounts")
    [invitation_id] = re.findall(r'data-invitation-id="(\d+)"', chooser.text)
    accepted = await person.post("/accounts", {"action": "accept", "invitation_id": invitation_id})
    assert accepted.headers["location"] == "/?done=invitation-accepted"
    home = await person.get("/")
    assert re.search(rf'data-testid="account-id">{demo.account_id}<', home.text)
    assert sorted(await memberships(services, email)) == sorted(
        [(other.account_id, "store_owner"), (demo.account_id, "foh_manager")]
    )


async def test_a_cancelled_or_replaced_link_no_longer_works(app: Starlette, services: Services, demo: Demo) -> None:
    owner = await owner_of(app, demo)
    email = f"carl-{uuid.uuid4().hex[:8]}@example.com"
    await owner.post("/settings/team", {"name": "Carl", "email": email, "role": "foh_staff"})
    first = (await invitation_path(services, demo.account_id, email)).removeprefix("/invitations/")
    await owner.post("/settings/team", {"name": "Carl", "email": email, "role": "foh_staff"})
    second = (await invitation_path(services, demo.account_id, email)).removeprefix("/invitations/")
    assert first != second
    assert (await Web(app).get(f"/invitations/{first}")).status_code == 404  # replaced
    [pending] = await team.pending_invitations(services, setup.operator(demo.account_id))
    cancelled = await owner.post(f"/settings/team/invitations/{pending.id}/cancel")
    assert cancelled.headers["location"] == "/settings/team?done=invitation-cancelled"
    for link in (first, second):
        holder = Web(app)
        page = await holder.get(f"/invitations/{link}")
        assert page.status_code == 404 and invitations.INVALID_LINK in text_of(page.text)
        posted = await holder.post(f"/invitations/{link}", {"password": "a-long-password", "name": "Carl"}, csrf=False)
        assert posted.status_code == 404
    with pytest.raises(NotFound):
        await invitations.accept_by_link(
            services, second, password="a-long-password", name="C", client_address="x"
        )
    with pytest.raises(NotFound):
        await team.cancel_invitation(services, setup.operator(demo.account_id), pending.id)
    async with services.db.read() as conn:
        assert await Directory(conn).user_by_email(email) is None
    with pytest.raises(Unauthorized):
        await dashboard_sessions.start_session(services, email=email, password="a-long-password", client_address="x")


async def test_a_new_login_chooses_its_own_name_and_password(app: Starlette, services: Services, demo: Demo) -> None:
    owner = await owner_of(app, demo)
    email = f"dana-{uuid.uuid4().hex[:8]}@example.com"
    await owner.post("/settings/team", {"name": "Dana", "email": email, "role": "foh_staff"})
    path = await invitation_path(services, demo.account_id, email)
    holder = Web(app)
    await holder.get(path)
    blank = await holder.post(path, {"password": "long-enough-password", "name": "  "})
    assert (blank.status_code, field_error(blank.text, "name")) == (400, "This field is required")
    async with services.db.read() as conn:
        assert await Directory(conn).user_by_email(email) is None
    joined = await holder.post(path, {"password": "long-enough-password", "name": "Dana D"})
    assert joined.status_code == 303
    assert await memberships(services, email) == [(demo.account_id, "foh_staff")]
    assert await dashboard_sessions.start_session(
        services, email=email, password="long-enough-password", client_address="x"
    )


async def test_the_link_goes_by_email_to_the_invited_address(app: Starlette, services: Services, demo: Demo) -> None:
    owner = await owner_of(app, demo)
    email = f"erin-{uuid.uuid4().hex[:8]}@example.com"
    await owner.post("/settings/team", {"name": "Erin", "email": email, "role": "financial_manager"})
    async with services.db.read() as conn:
        name = await Directory(conn).account_name(demo.account_id)
        rows = (
            await conn.execute(
                select(outbox_messages.c.recipient, outbox_messages.c.subject, outbox_messages.c.content).where(
                    outbox_messages.c.account_id == demo.account_id, outbox_messages.c.kind == team.INVITATION_EMAIL
                )
            )
        ).all()
    [(recipient, subject, content)] = [r for r in rows if r.recipient == email]
    assert (recipient, subject) == (email, f"Join {name} on giftledger")
    parsed = email_parser.message_from_bytes(bytes(content), policy=email_policy.default)
    body = parsed.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage) and parsed["To"] == email
    text = body.get_content()
    path = await invitation_path(services, demo.account_id, email)
    assert f"http://127.0.0.1:8000{path}" in text and "as Financial Manager" in text
