"""Setting an account up: accounts, team members, sites, API users, site mapping, products, card stock.

The same functions serve the dashboard and the admin CLI (which acts as the operator: `operator()`)."""

from __future__ import annotations

from dataclasses import dataclass

from giftledger.auth.passwords import generate_password, generate_username, hash_password
from giftledger.domain import card_numbers
from giftledger.domain.catalogue import CURRENCIES
from giftledger.domain.errors import NOT_EXPECTED, REQUIRED, Conflict, Forbidden, NotFound, ValidationFailed
from giftledger.domain.permissions import TEAM_ROLES, Permission
from giftledger.domain.records import ApiUserRow, SiteRow
from giftledger.domain.validation import MAX_AMOUNT, Problems, is_email
from giftledger.services.context import Principal, Services
from giftledger.services.context import operator as operator  # the command line's principal
from giftledger.storage.database import ConstraintBroken
from giftledger.storage.people import Directory

IN_STORE_PRODUCT = "In-Store Gift"
MIN_PASSWORD_LENGTH = 10


async def create_account(services: Services, name: str) -> int:
    """A new account with its "In-Store Gift" product (every account has one)."""
    problems = Problems()
    clean = problems.required_text("name", name, max_length=200)
    problems.raise_if_any()
    assert clean is not None
    async with services.db.transaction() as conn:
        account_id = await Directory(conn).add_account(clean)
    async with services.unit_of_work(operator(account_id)) as uow:
        await uow.catalogue.add_product(IN_STORE_PRODUCT)
    return account_id


def member_input(email: str, name: str, role: str) -> tuple[str, str]:
    """A team member's email and name, cleaned, and their role checked: one of the six."""
    problems = Problems()
    clean_email = problems.required_text("email", email, max_length=320)
    if clean_email and not is_email(clean_email):
        problems.add("email", NOT_EXPECTED)
    clean_name = problems.required_text("name", name, max_length=200)
    if role not in {r.value for r in TEAM_ROLES}:
        problems.add("role", REQUIRED if not role.strip() else NOT_EXPECTED)
    problems.raise_if_any()
    assert clean_email and clean_name
    return clean_email, clean_name


async def add_team_member(
    services: Services, principal: Principal, *, email: str, name: str, role: str, password: str
) -> int:
    """Add a person to the account at once: a new login, or (for the operator at the command line only) an
    existing one joining another account. In the dashboard a Store Owner invites instead (services/team.py):
    a person with a login joins another account only by accepting."""
    principal.require(Permission.TEAM_MANAGE)
    clean_email, clean_name = member_input(email, name, role)
    async with services.unit_of_work(principal) as uow:
        user = await uow.directory.user_by_email(clean_email)
        if user is None:
            if len(password) < MIN_PASSWORD_LENGTH:
                raise ValidationFailed.one("password", f"Must be at least {MIN_PASSWORD_LENGTH} characters.")
            user_id = await uow.directory.add_user(clean_email, clean_name, hash_password(password))
        elif principal.kind != "system":
            raise Forbidden("This address already has a login: invite it from Settings > Team.")
        else:
            user_id = user.id
            if await uow.team.role_of(user_id) is not None:
                raise Conflict("This person is already a member of the account.")
        await uow.team.add_membership(user_id, role)
        return user_id


async def set_user_password(services: Services, email: str, password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed.one("password", f"Must be at least {MIN_PASSWORD_LENGTH} characters.")
    async with services.db.transaction() as conn:
        directory = Directory(conn)
        user = await directory.user_by_email(email)
        if user is None:
            raise NotFound("No such user.")
        await directory.set_user_password(user.id, hash_password(password))


@dataclass(frozen=True)
class SiteInput:
    name: str
    address: str = ""
    reference: str = ""


def _check_site(site: SiteInput) -> SiteInput:
    problems = Problems()
    name = problems.required_text("name", site.name, max_length=200)
    address = problems.optional_text("address", site.address, max_length=500) or ""
    reference = problems.optional_text("reference", site.reference, max_length=100) or ""
    problems.raise_if_any()
    assert name is not None
    return SiteInput(name, address, reference)


# The database's unique indexes behind the rule below (a race another request won): the field each guards.
SITE_UNIQUE_INDEXES = {"uq_sites_account_name": "name", "uq_sites_account_reference": "reference"}


def _site_taken(site: SiteInput, clashing: list[SiteRow]) -> ValidationFailed | None:
    """The refusal when another live site of the account already has this name (ignoring case) or reference."""
    problems = Problems()
    for other in clashing:
        if other.name.lower() == site.name.lower():
            problems.add("name", f"A site named {other.name} already exists.")
        if site.reference and other.reference == site.reference:
            problems.add("reference", f"A site with the reference {site.reference} already exists.")
    return problems.error() if problems else None


def _site_race_lost(broken: ConstraintBroken, site: SiteInput) -> ValidationFailed | None:
    """The same refusal, when another request took the name or reference between our check and our write
    (None for any other constraint)."""
    field = SITE_UNIQUE_INDEXES.get(broken.constraint)
    if field == "name":
        return ValidationFailed.one("name", f"A site named {site.name} already exists.")
    if field == "reference":
        return ValidationFailed.one("reference", f"A site with the reference {site.reference} already exists.")
    return None


async def add_site(services: Services, principal: Principal, site: SiteInput) -> int:
    """A new site. Within an account, live sites' names (ignoring case) and non-empty references are unique."""
    principal.require(Permission.SITE_MANAGE)
    clean = _check_site(site)
    try:
        async with services.unit_of_work(principal) as uow:
            refused = _site_taken(clean, await uow.sites.clashing(clean.name, clean.reference))
            if refused:
                raise refused
            return await uow.sites.add(clean.name, clean.address, clean.reference)
    except ConstraintBroken as broken:
        refusal = _site_race_lost(broken, clean)
        if refusal is None:
            raise
        raise refusal from broken


async def update_site(services: Services, principal: Principal, site_id: int, site: SiteInput) -> None:
    principal.require(Permission.SITE_MANAGE)
    clean = _check_site(site)
    try:
        async with services.unit_of_work(principal) as uow:
            current = await uow.sites.get(site_id)
            if current is None or current.deleted_at is not None:
                raise NotFound("No such site.")
            refused = _site_taken(clean, await uow.sites.clashing(clean.name, clean.reference, excluding=site_id))
            if refused:
                raise refused
            if not await uow.sites.update(site_id, clean.name, clean.address, clean.reference):
                raise NotFound("No such site.")
    except ConstraintBroken as broken:
        refusal = _site_race_lost(broken, clean)
        if refusal is None:
            raise
        raise refusal from broken


async def delete_site(services: Services, principal: Principal, site_id: int) -> None:
    principal.require(Permission.SITE_MANAGE)
    async with services.unit_of_work(principal) as uow:
        if not await uow.sites.delete(site_id):
            raise NotFound("No such site.")


async def list_sites(services: Services, principal: Principal) -> list[SiteRow]:
    async with services.unit_of_work(principal) as uow:
        return await uow.sites.active()


@dataclass(frozen=True)
class NewApiUser:
    id: int
    username: str
    password: str  # shown once; only its hash is stored
    merchant_id: int


async def create_api_user(
    services: Services, principal: Principal, merchant_id: int, *, awaits_note: bool = False
) -> NewApiUser:
    """A username and password for one POS integration. The password is returned here and never again.

    `awaits_note`: the password is shown on a page that asks to confirm it was noted (the dashboard's); until
    `note_api_user_password` records that, the user is listed as not noted (the integration page warns)."""
    principal.require(Permission.INTEGRATION_MANAGE)
    async with services.unit_of_work(principal) as uow:
        merchants = await uow.directory.merchants()
        if merchant_id not in merchants:
            raise ValidationFailed.one("merchant_id", NOT_EXPECTED)
        password = generate_password()
        username = generate_username(merchants[merchant_id])
        api_user_id = await uow.team.add_api_user(
            merchant_id, username, hash_password(password), password_noted=not awaits_note
        )
        return NewApiUser(api_user_id, username, password, merchant_id)


async def note_api_user_password(services: Services, principal: Principal, merchant_id: int, api_user_id: int) -> None:
    """Record that the person who created this API user confirmed they noted its password."""
    principal.require(Permission.INTEGRATION_MANAGE)
    async with services.unit_of_work(principal) as uow:
        if not await uow.team.note_api_user_password(merchant_id, api_user_id):
            raise NotFound("No such API user.")


async def reset_api_user_password(services: Services, principal: Principal, api_user_id: int) -> str:
    """A new password for an API user; its existing tokens stop working at once."""
    principal.require(Permission.INTEGRATION_MANAGE)
    password = generate_password()
    async with services.unit_of_work(principal) as uow:
        if not await uow.team.set_api_user_password(api_user_id, hash_password(password)):
            raise NotFound("No such API user.")
    return password


async def list_api_users(services: Services, principal: Principal, merchant_id: int | None = None) -> list[ApiUserRow]:
    principal.require(Permission.INTEGRATION_MANAGE)
    async with services.unit_of_work(principal) as uow:
        return await uow.team.api_users(merchant_id)


async def delete_api_user(services: Services, principal: Principal, api_user_id: int) -> None:
    principal.require(Permission.INTEGRATION_MANAGE)
    async with services.unit_of_work(principal) as uow:
        if not await uow.team.delete_api_user(api_user_id):
            raise NotFound("No such API user.")


async def set_site_mapping(
    services: Services, principal: Principal, merchant_id: int, references: dict[int, str]
) -> None:
    """Replace the EPOS references (store IDs) of every site for one POS merchant, all together.
    An empty reference unmaps the site; references are unique within the account and merchant."""
    principal.require(Permission.INTEGRATION_MANAGE)
    problems = Problems()
    clean: dict[int, str] = {}
    for site_id, raw in references.items():
        ref = problems.optional_text(f"site_{site_id}", raw, max_length=100)
        if ref:
            if ref in clean.values():
                problems.add(f"site_{site_id}", "Each site needs its own reference.")
            clean[site_id] = ref
    problems.raise_if_any()
    async with services.unit_of_work(principal) as uow:
        if merchant_id not in await uow.directory.merchants():
            raise ValidationFailed.one("merchant_id", NOT_EXPECTED)
        live = {s.id for s in await uow.sites.active()}
        unknown = [site_id for site_id in clean if site_id not in live]
        if unknown:
            raise ValidationFailed({f"site_{i}": ["No such site."] for i in unknown})
        await uow.sites.replace_mapping(merchant_id, clean)


async def site_mapping(services: Services, principal: Principal, merchant_id: int) -> dict[int, str]:
    async with services.unit_of_work(principal) as uow:
        return await uow.sites.mapping(merchant_id)


async def add_product(services: Services, principal: Principal, name: str) -> int:
    principal.require(Permission.PRODUCT_MANAGE)
    problems = Problems()
    clean = problems.required_text("name", name, max_length=200)
    problems.raise_if_any()
    assert clean is not None
    async with services.unit_of_work(principal) as uow:
        return await uow.catalogue.add_product(clean)


def _check_price(price: int | None, description: str | None) -> tuple[int, str | None]:
    problems = Problems()
    if price is None:
        problems.add("price", REQUIRED)
    elif not 0 <= price <= MAX_AMOUNT:
        problems.add("price", NOT_EXPECTED)
    clean = problems.optional_text("description", description, max_length=200)
    problems.raise_if_any()
    assert price is not None
    return price, clean


async def add_price_modifier(
    services: Services, principal: Principal, product_id: int, price: int | None, description: str | None
) -> int:
    principal.require(Permission.PRODUCT_MANAGE)
    price, clean = _check_price(price, description)
    async with services.unit_of_work(principal) as uow:
        if await uow.catalogue.product(product_id) is None:
            raise NotFound("No such product.")
        return await uow.catalogue.add_price_modifier(product_id, price, clean)


async def update_price_modifier(
    services: Services, principal: Principal, modifier_id: int, price: int | None, description: str | None
) -> None:
    principal.require(Permission.PRODUCT_MANAGE)
    price, clean = _check_price(price, description)
    async with services.unit_of_work(principal) as uow:
        if not await uow.catalogue.update_price_modifier(modifier_id, price, clean):
            raise NotFound("No such price modifier.")


async def remove_price_modifier(services: Services, principal: Principal, modifier_id: int) -> None:
    principal.require(Permission.PRODUCT_MANAGE)
    async with services.unit_of_work(principal) as uow:
        if not await uow.catalogue.remove_price_modifier(modifier_id):
            raise NotFound("No such price modifier.")


async def add_card_stock(
    services: Services,
    principal: Principal,
    *,
    count: int = 0,
    references: list[str] | None = None,
    currency: str = "GBP",
) -> list[str]:
    """Blank numbers for physical cards: `count` generated ones, or the given ones (imported stock).
    Returns the numbers added (numbers already in the account are skipped)."""
    principal.require(Permission.PRODUCT_MANAGE)
    if currency not in CURRENCIES:
        raise ValidationFailed.one("currency", NOT_EXPECTED)
    numbers = list(references or []) + [card_numbers.generate() for _ in range(count)]
    problems = Problems()
    for index, number in enumerate(numbers):
        problems.card_reference(f"card_reference.{index}", number)
    if not 0 < len(numbers) <= 100_000:
        problems.add("count", NOT_EXPECTED)
    problems.raise_if_any()
    try:
        async with services.unit_of_work(principal) as uow:
            return await uow.cards.add_stock(numbers, currency)
    except ConstraintBroken as broken:
        raise Conflict("A card number is already in use.") from broken
