"""Whether a caller's credential is still live, checked by every statement that acts for it.

A token (or a dashboard session) names a caller and the token version it was issued at. Deleting an API user
or a team member, or any credential event that raises its token version, must stop its tokens at once. So
each unit of work checks the credential as its first statement (`is_live`), and each of the tills' single
statements folds the same check in (`CALLER`): a revoked token reads and writes nothing, at no extra round
trip. A `system` credential is the operator's own (the command line), never carried by a token; `NOBODY`
stands for a statement acting for no caller (a client address's cost budget)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

CallerKind = Literal["api_user", "user", "system"]
# No token at all: a statement that acts for nobody in particular (the cost budget of a client address).
NOBODY = ("anonymous", 0, 0)


@dataclass(frozen=True)
class Credential:
    kind: CallerKind
    id: int
    account_id: int
    token_version: int

    @property
    def parameters(self) -> tuple[str, int, int]:
        """`CALLER`'s kind, id and token version parameters (the account is the statement's own)."""
        return self.kind, self.id, self.token_version


# Whether the credential of each kind is live: {kind}, {id}, {version} and {account} are the statement's parameters.
_LIVE = {
    "api_user": """EXISTS (
            SELECT 1 FROM api_users
            WHERE api_users.account_id = {account}::bigint AND api_users.id = {id}::bigint
              AND api_users.token_version = {version}::integer AND api_users.deleted_at IS NULL)""",
    "user": """EXISTS (
            SELECT 1 FROM users
            JOIN memberships ON memberships.account_id = {account}::bigint AND memberships.user_id = users.id
            WHERE users.id = {id}::bigint AND users.token_version = {version}::integer AND users.deleted_at IS NULL)""",
}

# A CTE `caller(live)`: {kind}, {id}, {version} and {account} are the statement's parameters.
CALLER = f"""
caller AS (
    SELECT CASE {{kind}}::text
        WHEN 'api_user' THEN {_LIVE["api_user"]}
        WHEN 'user' THEN {_LIVE["user"]}
        ELSE {{kind}}::text IN ('system', 'anonymous')
    END AS live
)"""

# `CALLER` for a statement prepared for one kind of credential ({of}): the same test of that kind's credential,
# and no caller of another kind is live. A statement run on every request of its kind (a till's redemption)
# then reads only the tables that kind's test needs.
_CALLER_OF = """
caller AS (
    SELECT {{kind}}::text = '{of}' AND {live} AS live
)"""

_IS_LIVE = "WITH " + CALLER.format(kind="$1", id="$2", version="$3", account="$4").strip() + " SELECT live FROM caller"


async def is_live(conn: AsyncConnection, credential: Credential) -> bool:
    """Inside a transaction: whether `credential` may still act on its account."""
    result = await conn.exec_driver_sql(_IS_LIVE, (*credential.parameters, credential.account_id))
    return bool(result.scalar_one())


def caller_statement(account: str, kind: str, id: str, version: str, of: CallerKind | None = None) -> str:
    """`CALLER` bound to a statement's own parameter numbers, e.g. caller_statement("$1", "$8", "$9", "$10");
    with `of`, for a statement prepared for that kind of credential only (`_CALLER_OF`)."""
    if of is None:
        template = CALLER
    else:
        live = _LIVE.get(of, "true")  # the operator's own credential: no row to read
        template = _CALLER_OF.format(of=of, live=live)
    return template.format(account=account, kind=kind, id=id, version=version).strip()
