"""Cards > Import cards: upload a CSV file of cards with their balances (Toggle's "Switch"), check it (a dry run:
every problem listed by row and column, nothing written), then import it: the whole file or nothing
(services/card_import.py; the columns: docs/card-import.md)."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.responses import Response
from starlette.routing import Route

from giftledger.dashboard.web import Dashboard, Page
from giftledger.domain.card_import import COLUMNS
from giftledger.domain.permissions import Permission
from giftledger.services import card_import

PAGE = "/cards/import"
MAX_FILE_BYTES = 32_000_000  # about 200,000 rows (domain/card_import.MAX_ROWS) of a typical file
NO_FILE = "Choose a CSV file."


def routes(dashboard: Dashboard) -> list[Route]:
    async def show(page: Page) -> Response:
        page.principal.require(Permission.CARD_ADJUST)
        return page.render(
            "card_import.html", columns=COLUMNS, limit_mb=MAX_FILE_BYTES // 1_000_000, report=None, errors={}
        )

    async def upload(page: Page) -> Response:
        dry_run = page.field("action") != "import"
        data = await page.file("file")
        chosen = page.form.get("file") if page.form is not None else None
        name = chosen.filename or "" if isinstance(chosen, UploadFile) else ""
        page.note(dry_run=dry_run, file_name=name[-200:])
        if data is None:
            page.principal.require(Permission.CARD_ADJUST)
            return page.render(
                "card_import.html",
                status=400,
                columns=COLUMNS,
                limit_mb=MAX_FILE_BYTES // 1_000_000,
                errors={"file": [NO_FILE]},
                report=None,
            )
        audit = None if dry_run else page.audit()
        report = await card_import.import_cards(page.services, page.principal, data, name, dry_run=dry_run, audit=audit)
        page.note(problems=len(report.problems), cards=report.cards, already=report.earlier is not None)
        if not report.imported:
            page.handed_over = False  # a dry run, a refusal or a file imported before: the wrapper records it
        status = 400 if report.problems else 200
        return page.render(
            "card_import.html",
            status=status,
            columns=COLUMNS,
            limit_mb=MAX_FILE_BYTES // 1_000_000,
            report=report,
            errors={},
        )

    p, c = dashboard.page, dashboard.change
    return [
        Route(PAGE, p(show), methods=["GET"]),
        Route(PAGE, c("dashboard.cards.import", upload, max_upload=MAX_FILE_BYTES), methods=["POST"]),
    ]
