"""Settings > Site Settings and Settings > Integrations (API users and site mapping per POS merchant)."""

from __future__ import annotations

from dataclasses import asdict

from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.forms import whole_number
from giftledger.dashboard.web import Dashboard, Page
from giftledger.domain.errors import NotFound, ValidationFailed
from giftledger.security_headers import COPY_BUTTON_CSP
from giftledger.services import account_settings, setup


def routes(dashboard: Dashboard) -> list[Route]:
    # Site Settings -------------------------------------------------------------------------------
    async def sites(page: Page) -> Response:
        return page.render("sites.html", sites=await account_settings.site_settings(page.services, page.principal))

    def _site_input(page: Page) -> setup.SiteInput:
        site = setup.SiteInput(page.field("name"), page.field("address"), page.field("reference"))
        page.note(name=site.name, address=site.address, reference=site.reference)
        return site

    async def add_site(page: Page) -> Response:
        site = _site_input(page)
        try:
            site_id = await setup.add_site(page.services, page.principal, site)
        except ValidationFailed as error:
            rows = await account_settings.site_settings(page.services, page.principal)
            return page.render("sites.html", status=400, sites=rows, errors=error.fields, values=asdict(site))
        page.note(site_id=site_id)
        return page.redirect("/settings/sites", "site-added")

    async def edit_site(page: Page) -> Response:
        site = await account_settings.site(page.services, page.principal, page.path_int("site_id"))
        return page.render("site_edit.html", site=site, values=asdict(site))

    async def save_site(page: Page) -> Response:
        site_id = page.path_int("site_id")
        site = _site_input(page)
        page.note(site_id=site_id)
        try:
            await setup.update_site(page.services, page.principal, site_id, site)
        except ValidationFailed as error:
            row = await account_settings.site(page.services, page.principal, site_id)
            return page.render("site_edit.html", status=400, site=row, values=asdict(site), errors=error.fields)
        return page.redirect("/settings/sites", "site-saved")

    async def confirm_delete_site(page: Page) -> Response:
        site = await account_settings.site(page.services, page.principal, page.path_int("site_id"))
        return page.render(
            "confirm.html",
            title=f"Delete {site.name}?",
            message=(
                "The site leaves the list and its EPOS references (store IDs) stop working at once. "
                "Cards sold and redeemed there keep the site's name in their history and reports."
            ),
            action=f"/settings/sites/{site.id}/delete",
            button="Delete site",
            back="/settings/sites",
        )

    async def delete_site(page: Page) -> Response:
        site_id = page.path_int("site_id")
        page.note(site_id=site_id)
        await setup.delete_site(page.services, page.principal, site_id)
        return page.redirect("/settings/sites", "site-deleted")

    # Integrations --------------------------------------------------------------------------------
    async def integrations(page: Page) -> Response:
        tiles = await account_settings.integrations(page.services, page.principal)
        return page.render("integrations.html", tiles=tiles)

    async def integration(page: Page) -> Response:
        view = await account_settings.integration(page.services, page.principal, page.path_int("merchant_id"))
        return page.render(
            "integration.html", integration=view, values={f"site_{k}": v for k, v in view.mapping.items()}
        )

    async def create_api_user(page: Page) -> Response:
        merchant_id = page.path_int("merchant_id")
        page.note(merchant_id=merchant_id)
        view = await account_settings.integration(page.services, page.principal, merchant_id)
        created = await setup.create_api_user(page.services, page.principal, merchant_id, awaits_note=True)
        page.note(api_user_id=created.id, username=created.username)  # never its password
        response = page.render("api_user_created.html", integration=view, created=created)
        response.headers["Content-Security-Policy"] = COPY_BUTTON_CSP  # its copy buttons' script, from here only
        return response

    async def api_user_noted(page: Page) -> Response:
        merchant_id = page.path_int("merchant_id")
        await account_settings.integration(page.services, page.principal, merchant_id)
        if page.field("noted") != "yes":  # the user stays "not noted": its integration page keeps warning
            return page.redirect(f"/settings/integrations/{merchant_id}", "api-user-unconfirmed")
        api_user_id = whole_number(page.field("api_user_id"))
        if api_user_id is None:
            raise NotFound("No such API user.")
        await setup.note_api_user_password(page.services, page.principal, merchant_id, api_user_id)
        return page.redirect(f"/settings/integrations/{merchant_id}", "api-user-created")

    async def _api_user(page: Page) -> tuple[account_settings.Integration, int, str]:
        merchant_id, api_user_id = page.path_int("merchant_id"), page.path_int("api_user_id")
        page.note(merchant_id=merchant_id, api_user_id=api_user_id)
        view = await account_settings.integration(page.services, page.principal, merchant_id)
        match = next((u for u in view.api_users if u.id == api_user_id), None)
        if match is None:
            raise NotFound("No such API user.")
        return view, match.id, match.username

    async def confirm_delete_api_user(page: Page) -> Response:
        view, api_user_id, username = await _api_user(page)
        return page.render(
            "confirm.html",
            title=f"Delete API user {username}?",
            message=(
                f"Tills using {username} stop working at once: its password and tokens are revoked. "
                "This cannot be undone; create a new user to reconnect them."
            ),
            action=f"/settings/integrations/{view.merchant_id}/api-users/{api_user_id}/delete",
            button="Delete API user",
            back=f"/settings/integrations/{view.merchant_id}",
        )

    async def delete_api_user(page: Page) -> Response:
        view, api_user_id, username = await _api_user(page)
        page.note(username=username)
        await setup.delete_api_user(page.services, page.principal, api_user_id)
        return page.redirect(f"/settings/integrations/{view.merchant_id}", "api-user-deleted")

    async def site_mapping(page: Page) -> Response:
        merchant_id = page.path_int("merchant_id")
        page.note(merchant_id=merchant_id)
        view = await account_settings.integration(page.services, page.principal, merchant_id)
        references = {site.id: page.field(f"site_{site.id}") for site in view.sites}
        page.note(
            epos_references=[f"{site_id}={reference}" for site_id, reference in references.items() if reference.strip()]
        )
        try:
            await setup.set_site_mapping(page.services, page.principal, merchant_id, references)
        except ValidationFailed as error:
            values = {f"site_{k}": v for k, v in references.items()}
            return page.render("integration.html", status=400, integration=view, values=values, errors=error.fields)
        return page.redirect(f"/settings/integrations/{merchant_id}#site-mapping", "mapping-saved")

    p, c = dashboard.page, dashboard.change
    return [
        Route("/settings/sites", p(sites), methods=["GET"]),
        Route("/settings/sites", c("dashboard.site.add", add_site), methods=["POST"]),
        Route("/settings/sites/{site_id}/edit", p(edit_site), methods=["GET"]),
        Route("/settings/sites/{site_id}", c("dashboard.site.edit", save_site), methods=["POST"]),
        Route("/settings/sites/{site_id}/delete", p(confirm_delete_site), methods=["GET"]),
        Route("/settings/sites/{site_id}/delete", c("dashboard.site.delete", delete_site), methods=["POST"]),
        Route("/settings/integrations", p(integrations), methods=["GET"]),
        Route("/settings/integrations/{merchant_id}", p(integration), methods=["GET"]),
        Route(
            "/settings/integrations/{merchant_id}/api-users",
            c("dashboard.api_user.create", create_api_user),
            methods=["POST"],
        ),
        Route("/settings/integrations/{merchant_id}/api-users/noted", p(api_user_noted), methods=["POST"]),
        Route(
            "/settings/integrations/{merchant_id}/api-users/{api_user_id}/delete",
            p(confirm_delete_api_user),
            methods=["GET"],
        ),
        Route(
            "/settings/integrations/{merchant_id}/api-users/{api_user_id}/delete",
            c("dashboard.api_user.delete", delete_api_user),
            methods=["POST"],
        ),
        Route(
            "/settings/integrations/{merchant_id}/site-mapping",
            c("dashboard.site_mapping.save", site_mapping),
            methods=["POST"],
        ),
    ]
