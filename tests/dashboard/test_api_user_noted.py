"""docs/dashboard.md: the "I have noted this password" tick is required by the form; if someone leaves without it,
the integration page says so and suggests deleting the user and creating a new one. The warning lasts until the
tick is confirmed (or the user is deleted); users created at the command line never carry it."""

from __future__ import annotations

import re

from starlette.applications import Starlette

from giftledger.domain.catalogue import POINTONE, POLARIS
from giftledger.services import setup
from giftledger.services.context import Services
from tests.dashboard.browser import off_loop, unchanged
from tests.dashboard.test_http import owner_web
from tests.dashboard.web import Web, text_of
from tests.support import Demo, new_demo


def warnings(body: str) -> list[str]:
    return [text_of(w) for w in re.findall(r'data-testid="password-not-noted">(.*?)</p>', body, flags=re.S)]


def warning_for(username: str) -> str:
    return (
        f"The password of {username} was never confirmed as noted. If it was not copied, delete this user and "
        "create a new one: a password cannot be shown again."
    )


async def create(web: Web, merchant_id: int) -> tuple[int, str]:
    created = await web.post(f"/settings/integrations/{merchant_id}/api-users")
    assert created.status_code == 200
    found = re.search(r'name="api_user_id" value="(\d+)"', created.text)
    username = re.search(r'data-testid="api-username">([^<]+)<', created.text)
    assert found and username
    return int(found.group(1)), username.group(1)


async def noted_flags(services: Services, demo: Demo) -> dict[str, bool]:
    users = await setup.list_api_users(services, setup.operator(demo.account_id))
    return {u.username: u.password_noted for u in users}


async def test_a_password_never_noted_is_warned_about_until_it_is(
    app: Starlette, services: Services, demo: Demo
) -> None:
    web = await owner_web(app, services, demo)
    page = f"/settings/integrations/{POLARIS}"
    assert warnings((await web.get(page)).text) == []
    assert warnings((await web.get(f"/settings/integrations/{POINTONE}")).text) == []  # the demo's, from the CLI

    left, left_name = await create(web, POLARIS)  # the browser went elsewhere without sending the form
    unticked, unticked_name = await create(web, POLARIS)
    response = await web.post(f"{page}/api-users/noted", {"api_user_id": str(unticked)})  # Done, no tick
    assert response.headers["location"] == f"{page}?done=api-user-unconfirmed"
    shown = await web.get(f"{page}?done=api-user-unconfirmed")
    assert warnings(shown.text) == [warning_for(left_name), warning_for(unticked_name)]
    assert warnings((await web.get(page)).text) == [warning_for(left_name), warning_for(unticked_name)]  # it stays

    ticked, ticked_name = await create(web, POLARIS)
    response = await web.post(f"{page}/api-users/noted", {"api_user_id": str(ticked), "noted": "yes"})
    assert response.headers["location"] == f"{page}?done=api-user-created"
    listing = await web.get(f"{page}?done=api-user-created")
    assert "API user created." in text_of(listing.text)
    assert warnings(listing.text) == [warning_for(left_name), warning_for(unticked_name)]

    # noting later (the password was copied after all) clears the warning; deleting the user does too
    await web.post(f"{page}/api-users/noted", {"api_user_id": str(left), "noted": "yes"})
    await web.post(f"{page}/api-users/{unticked}/delete")
    assert warnings((await web.get(page)).text) == []
    flags = await noted_flags(services, demo)
    assert (flags[left_name], flags[ticked_name], unticked_name in flags) == (True, True, False)

    # the command line's users (the operator sees the password there) are noted from the start
    made = await setup.create_api_user(services, setup.operator(demo.account_id), POLARIS)
    assert (await noted_flags(services, demo))[made.username] is True


async def test_noting_only_a_live_user_of_this_account_and_merchant(
    app: Starlette, services: Services, demo: Demo, database_url: str
) -> None:
    web = await owner_web(app, services, demo)
    mine, mine_name = await create(web, POLARIS)
    other: Demo = off_loop(new_demo, database_url)
    theirs = await setup.create_api_user(services, setup.operator(other.account_id), POLARIS, awaits_note=True)
    before = (await noted_flags(services, demo), await noted_flags(services, other))
    with unchanged(database_url, demo.account_id):
        for path, api_user_id in (
            (f"/settings/integrations/{POLARIS}", str(theirs.id)),  # another account's
            (f"/settings/integrations/{POINTONE}", str(mine)),  # another merchant's page
            (f"/settings/integrations/{POLARIS}", "x"),
            (f"/settings/integrations/{POLARIS}", ""),
        ):
            response = await web.post(f"{path}/api-users/noted", {"api_user_id": api_user_id, "noted": "yes"})
            assert response.status_code == 404, (path, api_user_id)
            assert "No such API user." in text_of(response.text)
    assert (await noted_flags(services, demo), await noted_flags(services, other)) == before
    assert before[0][mine_name] is False and before[1][theirs.username] is False
