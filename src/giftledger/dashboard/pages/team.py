"""Settings > Team: invite people with one of six roles (and cancel invitations), change roles, remove people
(Store Owner only)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.help import permission_rows
from giftledger.dashboard.web import Dashboard, Page
from giftledger.domain.errors import Conflict, NotFound, ValidationFailed
from giftledger.domain.permissions import TEAM_ROLES
from giftledger.services import team

PAGE = "/settings/team"


def routes(dashboard: Dashboard) -> list[Route]:
    async def _page(page: Page, *, status: int = 200, **context: object) -> Response:
        members = await team.team_members(page.services, page.principal)
        invitations = await team.pending_invitations(page.services, page.principal)
        return page.render(
            "team.html",
            status=status,
            members=members,
            invitations=invitations,
            roles=TEAM_ROLES,
            permissions=permission_rows(),
            role_errors=context.pop("role_errors", {}),
            **context,
        )

    async def show(page: Page) -> Response:
        return await _page(page, values={"role": ""})

    async def invite(page: Page) -> Response:
        values = {"email": page.field("email"), "name": page.field("name"), "role": page.field("role")}
        page.note(email=values["email"], name=values["name"], role=values["role"])
        try:
            invitation = await team.invite_member(
                page.services, page.principal, email=values["email"], name=values["name"], role=values["role"]
            )
        except ValidationFailed as error:
            return await _page(page, status=400, errors=error.fields, values=values)
        except Conflict as error:
            return await _page(page, status=409, errors={"email": [error.message]}, values=values)
        page.note(invitation_id=invitation.id)
        return page.render("team_invited.html", invitation=invitation)

    async def cancel_invitation(page: Page) -> Response:
        invitation_id = page.path_int("invitation_id")
        page.note(invitation_id=invitation_id)
        await team.cancel_invitation(page.services, page.principal, invitation_id)
        return page.redirect(PAGE, "invitation-cancelled")

    async def _member(page: Page) -> team.Member:
        user_id = page.path_int("user_id")
        page.note(user_id=user_id)
        for member in await team.team_members(page.services, page.principal):
            if member.user_id == user_id:
                page.note(email=member.email)
                return member
        raise NotFound("No such team member.")

    async def change_role(page: Page) -> Response:
        page.note(role=page.field("role"))
        member = await _member(page)
        page.note(previous_role=member.role.value)
        try:
            await team.change_role(page.services, page.principal, member.user_id, page.field("role"))
        except ValidationFailed as error:
            role_errors = {f"role_{member.user_id}": error.fields.get("role", [])}
            return await _page(page, status=400, role_errors=role_errors, values={"role": ""})
        except Conflict as error:
            return await _page(page, status=409, role_errors={f"role_{member.user_id}": [error.message]}, values={})
        return page.redirect(PAGE, "role-changed")

    async def confirm_remove(page: Page) -> Response:
        member = await _member(page)
        return page.render(
            "confirm.html",
            title=f"Remove {member.name} from {page.session.account_name}?",
            message=(
                f"{member.name} ({member.email}) loses access to this account at once; their other accounts, "
                "if any, are not affected. Their past actions stay in card histories."
            ),
            action=f"{PAGE}/{member.user_id}/remove",
            button="Remove from team",
            back=PAGE,
        )

    async def remove(page: Page) -> Response:
        member = await _member(page)
        await team.remove_member(page.services, page.principal, member.user_id)
        return page.redirect(PAGE, "member-removed")

    p, c = dashboard.page, dashboard.change
    return [
        Route(PAGE, p(show), methods=["GET"]),
        Route(PAGE, c("dashboard.team.invite", invite), methods=["POST"]),
        Route(
            PAGE + "/invitations/{invitation_id}/cancel",
            c("dashboard.team.cancel_invitation", cancel_invitation),
            methods=["POST"],
        ),
        Route(PAGE + "/{user_id}/role", c("dashboard.team.change_role", change_role), methods=["POST"]),
        Route(PAGE + "/{user_id}/remove", p(confirm_remove), methods=["GET"]),
        Route(PAGE + "/{user_id}/remove", c("dashboard.team.remove", remove), methods=["POST"]),
    ]
