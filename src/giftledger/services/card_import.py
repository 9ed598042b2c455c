"""Importing cards from a CSV file (Toggle's "Switch"): check every row, then write the whole file or nothing.

The rows' own rules are domain/card_import.py's; here the file is also checked against the account: a number
the account already has (as a card's number or an alias) is refused on its row. A dry run stops there and
writes nothing. The import itself runs the same checks in its one transaction and writes only when there is no
problem at all: every card, its PIN's hash, its recipient as its contact, its opening balance as an Inbound
Balance Transfer line item of one `import` transaction, and a `card_imports` row keyed by the file's SHA-256,
so the same file (byte for byte) is never imported twice into one account: a second import changes nothing
and says when the first was made."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from giftledger.auth.pins import PinHasher
from giftledger.domain import card_numbers
from giftledger.domain.card_import import ImportRow, RowProblem, parse
from giftledger.domain.catalogue import CURRENCIES
from giftledger.domain.errors import Conflict
from giftledger.domain.permissions import Permission
from giftledger.domain.time_zones import DEFAULT_TIME_ZONE
from giftledger.domain.validity import expires_at
from giftledger.services.audit.recording import Audit, record_accepted
from giftledger.services.context import Principal, Services
from giftledger.storage.card_imports import FILE_IMPORTED, CardImports, ImportedFile, NewCard
from giftledger.storage.clock import utcnow
from giftledger.storage.database import ConstraintBroken
from giftledger.storage.ledger import Actor
from giftledger.storage.unit_of_work import UnitOfWork

ALREADY_A_CARD = "This number is already a card of this account."
ALREADY_AN_ALIAS = "This number is already the alias of a card of this account."
CURRENCY = next(iter(CURRENCIES))  # every card of an account is in its one currency (GBP)
MAX_FILE_NAME = 300


@dataclass(frozen=True)
class ImportReport:
    """What an import (or its dry run) found and did."""

    file_name: str
    file_sha256: str
    dry_run: bool
    problems: list[RowProblem] = field(default_factory=list)
    cards: int = 0  # rows that passed every check (dry run) or cards written (import)
    total: int = 0  # pence: their balances
    aliases: int = 0  # of them, numbers kept as aliases (a new 19-digit number issued)
    imported: bool = False  # True: written by this call
    earlier: ImportedFile | None = None  # this file was imported before: nothing changed

    @property
    def ok(self) -> bool:
        return not self.problems and self.earlier is None


def _name(file_name: str) -> str:
    return (file_name.strip() or "cards.csv")[-MAX_FILE_NAME:]


async def _against_account(imports: CardImports, rows: list[ImportRow]) -> list[RowProblem]:
    """The rows whose number the account already has, as a number or an alias."""
    existing = await imports.existing([r.number for r in rows])
    return [
        RowProblem(r.row, "card_number", ALREADY_A_CARD if existing[r.number] else ALREADY_AN_ALIAS)
        for r in rows
        if r.number in existing
    ]


async def _new_numbers(imports: CardImports, count: int, kept: set[str]) -> list[str]:
    """`count` fresh 19-digit numbers that no card of the account has (as its number or alias) and that are not
    among the file's own numbers that are kept."""
    numbers: dict[str, None] = {}
    while len(numbers) < count:
        wanted = {n: None for n in (card_numbers.generate() for _ in range(count - len(numbers))) if n not in kept}
        taken = await imports.existing(list(wanted))
        numbers.update((n, None) for n in wanted if n not in taken)
    return list(numbers)[:count]


async def _write(
    services: Services, uow: UnitOfWork, principal: Principal, rows: list[ImportRow], name: str, sha: str
) -> tuple[int, int]:
    imports = CardImports(uow.conn, uow.account_id)
    zone = await uow.directory.account_time_zone(uow.account_id) or DEFAULT_TIME_ZONE
    kept = {r.number for r in rows if r.keeps_number}
    issued = iter(await _new_numbers(imports, len(rows) - len(kept), kept))
    pins = PinHasher(services.settings.secret_key, services.settings.previous_secret_keys)
    new: list[NewCard] = []
    for r in rows:
        number = r.number if r.keeps_number else next(issued)
        new.append(
            NewCard(
                card_reference=number,
                alias=None if r.keeps_number else r.number,
                pin_hash=pins.hash(uow.account_id, number, r.pin) if r.pin else None,
                tender=r.tender,
                discount=r.discount,
                expiry_time=expires_at(r.expiry_date, zone) if r.expiry_date else None,
                row_number=r.row,
                purchaser_name=r.purchaser_name,
                purchaser_email=r.purchaser_email,
                recipient_name=r.recipient_name,
                recipient_email=r.recipient_email,
                notes=r.notes,
            )
        )
    total = sum(r.tender + r.discount for r in rows)
    now = utcnow()
    actor = Actor(user_id=principal.user_id)
    transaction_id = await uow.ledger.open_transaction("import", actor, None, f"Imported from {name}")
    import_id = await imports.record(
        file_sha256=sha,
        file_name=name,
        cards=len(rows),
        total=total,
        transaction_id=transaction_id,
        user_id=principal.user_id,
        now=now,
    )
    written = await imports.add_cards(import_id, transaction_id, CURRENCY, principal.user_id, now, new)
    return import_id, written


async def import_cards(
    services: Services,
    principal: Principal,
    data: bytes,
    file_name: str,
    *,
    dry_run: bool,
    audit: Audit | None = None,
) -> ImportReport:
    """Check (and unless `dry_run`, import) a CSV file of cards; see the module's docstring. A file with any
    problem is not imported: the report lists every problem, by row and column, and nothing changed."""
    principal.require(Permission.CARD_ADJUST)
    name = _name(file_name)
    sha = hashlib.sha256(data).hexdigest()
    parsed = parse(data)
    try:
        async with services.unit_of_work(principal) as uow:
            imports = CardImports(uow.conn, uow.account_id)
            earlier = await imports.find(sha)
            if earlier is not None:
                return ImportReport(name, sha, dry_run, earlier=earlier)
            problems = sorted(
                parsed.problems + await _against_account(imports, parsed.rows), key=lambda p: (p.row, p.column)
            )
            refused = {p.row for p in problems}
            good = [r for r in parsed.rows if r.row not in refused]
            total = sum(r.tender + r.discount for r in good)
            aliases = sum(1 for r in good if not r.keeps_number)
            if dry_run or problems:
                return ImportReport(name, sha, dry_run, problems, len(good), total, aliases)
            import_id, written = await _write(services, uow, principal, good, name, sha)
            await record_accepted(
                uow, principal, audit, detail={"card_import_id": import_id, "cards": written, "total": total}
            )
            return ImportReport(name, sha, False, [], written, total, aliases, imported=True)
    except ConstraintBroken as broken:
        if broken.constraint == FILE_IMPORTED:
            async with services.unit_of_work(principal) as uow:
                return ImportReport(name, sha, dry_run, earlier=await CardImports(uow.conn, uow.account_id).find(sha))
        raise Conflict("Another change added one of these card numbers meanwhile: nothing was imported.") from broken
