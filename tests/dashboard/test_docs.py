"""docs/dashboard.md shows the permission table exactly as the code has it."""

from __future__ import annotations

from giftledger.dashboard.help import PERMISSION_LABELS, permission_table_markdown
from giftledger.domain.permissions import Permission, Role
from tests.support import ROOT


def test_the_docs_show_the_one_permission_table() -> None:
    text = (ROOT / "docs" / "dashboard.md").read_text()
    start, end = "<!-- permission-table:start -->\n", "\n<!-- permission-table:end -->"
    shown = text[text.index(start) + len(start) : text.index(end)]
    assert shown == permission_table_markdown(tuple(Role))


def test_every_permission_has_a_label() -> None:
    assert set(PERMISSION_LABELS) == set(Permission)
    lines = permission_table_markdown(tuple(Role)).splitlines()
    assert lines[0] == (
        "| Permission | Store Owner | Store Manager | Financial Manager | Guest Service | Front of House manager "
        "| Front of House Staff | API user (POS integration) |"
    )
    assert "| Create and delete API users; site mapping | yes |  |  |  |  |  |  |" in lines
    assert "| Invite, change and remove team members | yes |  |  |  |  |  |  |" in lines
