"""Site names (ignoring case and surrounding spaces) and non-empty references are unique among an account's live
sites: refused on add and edit with a message next to the field, changing nothing; the database's unique indexes
refuse a race the same way; a deleted site's name and reference are free again."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette

from giftledger.domain.errors import NotFound, ValidationFailed
from giftledger.services import setup
from giftledger.services.context import Services
from giftledger.storage.sites import Sites
from tests.dashboard.browser import off_loop, unchanged
from tests.dashboard.helpers import site_ids
from tests.dashboard.test_http import owner_web, settings_state
from tests.dashboard.web import field_error
from tests.support import Demo, new_demo


async def test_a_second_site_with_a_live_sites_name_or_reference_is_refused(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    web = await owner_web(app, services, demo)
    before = await settings_state(services, demo)
    with unchanged(database_url, demo.account_id):
        response = await web.post("/settings/sites", {"name": "  soho ", "address": "9 Greek Street"})
        assert response.status_code == 400
        assert field_error(response.text, "name") == "A site named Soho already exists."
        assert 'value="  soho "' in response.text and 'value="9 Greek Street"' in response.text

        response = await web.post("/settings/sites", {"name": "Bath", "reference": "SOHO"})
        assert response.status_code == 400
        assert field_error(response.text, "reference") == "A site with the reference SOHO already exists."
        assert field_error(response.text, "name") is None

        leeds = (await site_ids(services, demo))["Leeds"]
        response = await web.post(f"/settings/sites/{leeds}", {"name": "SOHO", "reference": "SOHO"})
        assert response.status_code == 400
        assert field_error(response.text, "name") == "A site named Soho already exists."
        assert field_error(response.text, "reference") == "A site with the reference SOHO already exists."
    assert await settings_state(services, demo) == before

    # a site keeps its own name and reference (here in other letters' case), and empty references never clash
    response = await web.post(f"/settings/sites/{leeds}", {"name": "LEEDS", "reference": "LEEDS"})
    assert response.headers["location"] == "/settings/sites?done=site-saved"
    for name in ("Bath", "York"):
        response = await web.post("/settings/sites", {"name": name})
        assert response.headers["location"] == "/settings/sites?done=site-added"
    # a reference equal except for case is another reference
    response = await web.post("/settings/sites", {"name": "Soho Square", "reference": "soho"})
    assert response.headers["location"] == "/settings/sites?done=site-added"
    assert sorted(await site_ids(services, demo)) == ["Bath", "LEEDS", "Soho", "Soho Square", "York"]


async def test_a_deleted_sites_name_and_reference_are_free_again(services: Services, demo: Demo) -> None:
    op = setup.operator(demo.account_id)
    soho = (await site_ids(services, demo))["Soho"]
    await setup.delete_site(services, op, soho)
    again = await setup.add_site(services, op, setup.SiteInput("Soho", "1 Dean Street, London", "SOHO"))
    assert again != soho
    # and a deleted site cannot be edited into a clash (it is not there to edit)
    with pytest.raises(NotFound):
        await setup.update_site(services, op, soho, setup.SiteInput("Leeds"))


async def test_sites_in_other_accounts_do_not_clash(services: Services, demo: Demo, database_url: str) -> None:
    other = off_loop(new_demo, database_url)
    site_id = await setup.add_site(services, setup.operator(other.account_id), setup.SiteInput("Bath", "", "BTH"))
    assert await setup.add_site(services, setup.operator(demo.account_id), setup.SiteInput("BATH", "", "BTH")) > 0
    assert site_id > 0


async def test_a_race_lost_to_the_unique_indexes_is_the_same_refusal(
    services: Services, demo: Demo, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests that both checked before either wrote: the database refuses the second, with the same words."""

    async def nothing_clashes(self: Sites, name: str, reference: str, excluding: int | None = None) -> list[object]:
        return []

    monkeypatch.setattr(Sites, "clashing", nothing_clashes)
    op = setup.operator(demo.account_id)
    leeds = (await site_ids(services, demo))["Leeds"]
    before = await setup.list_sites(services, op)
    with unchanged(database_url, demo.account_id):
        with pytest.raises(ValidationFailed) as refused:
            await setup.add_site(services, op, setup.SiteInput("SOHO "))
        assert refused.value.fields == {"name": ["A site named SOHO already exists."]}
        with pytest.raises(ValidationFailed) as refused:
            await setup.add_site(services, op, setup.SiteInput("Bath", "", "SOHO"))
        assert refused.value.fields == {"reference": ["A site with the reference SOHO already exists."]}
        with pytest.raises(ValidationFailed) as refused:
            await setup.update_site(services, op, leeds, setup.SiteInput("soho"))
        assert refused.value.fields == {"name": ["A site named soho already exists."]}
    assert await setup.list_sites(services, op) == before
