"""Many tills redeeming the same card at once never overdraw it (both databases, real HTTP)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.api.till import adjust, balance, sold
from tests.support import Api, Demo, LiveServer, ledger_sums, signed_in

NEGATIVE = "Applying this transaction would have resulted in a negative balance. Transaction not applied."


def test_forty_concurrent_redemptions_never_overdraw(server: LiveServer, demo: Demo, api: Api) -> None:
    card = sold(api, demo, 2500)
    tills = [signed_in(server, demo) for _ in range(8)]

    def redeem(index: int) -> dict[str, object]:
        return adjust(tills[index % len(tills)], demo, card, -100)

    with ThreadPoolExecutor(max_workers=40) as pool:
        replies = list(pool.map(redeem, range(40)))
    accepted = [r for r in replies if "errors" not in r]
    refused = [r for r in replies if "errors" in r]
    assert len(accepted) == 25
    assert len(refused) == 15
    assert {r["errors"][0]["message"] for r in refused} == {NEGATIVE}  # type: ignore[index]
    assert balance(api, card) == 0
    assert ledger_sums(server.database_url, demo.account_id)[card] == (0, 0)
