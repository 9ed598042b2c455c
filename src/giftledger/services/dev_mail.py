"""Development's mail page: the messages this server wrote as `.eml` files (no SMTP server configured, so the
outbox's `DirectoryMailer` writes them under the data directory's `mail/`), listed and read back.

Only in development and test (`enabled`), and only to Store Owners: the directory holds every account's
messages. To anyone else, and in production, there is no such page (NotFound). A name taken from a URL is only
ever looked up among the names the directory lists (regular files named as `DirectoryMailer` names them:
letters, digits, `.`, `_` and `-`, ending `.eml`), never joined to a path as given, so `../x` reads nothing.

What a message shows is its headers, its plain-text part and its images (PNG, JPEG or GIF: never SVG, which
can hold script); its HTML part is never handed to the browser to interpret (see docs/dashboard.md)."""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from giftledger.config import Settings
from giftledger.domain.errors import NotFound
from giftledger.domain.permissions import Role
from giftledger.services.context import Principal, Services

MAX_LISTED = 200  # the newest this many are listed
MAX_BYTES = 25 * 1024 * 1024  # a bigger file is listed but not read
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,250}\.eml")
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif"})
NO_SUCH_PAGE = "No such page."
NO_SUCH_MESSAGE = "No such message."
# What the email package can raise on a damaged file: an unknown charset (LookupError), a bad encoding, and
# IndexError or AttributeError from its header parser on some malformed headers.
_UNREADABLE = (ValueError, LookupError, IndexError, AttributeError, UnicodeError)


@dataclass(frozen=True)
class MailFile:
    name: str  # the file's name in the directory
    written_at: datetime  # when the file was written (UTC)
    date: datetime | None  # the message's Date header
    sender: str
    recipient: str
    subject: str


@dataclass(frozen=True)
class Part:
    number: int  # its place in the message's walk (the URL of an image names it)
    content_type: str
    filename: str | None
    size: int

    @property
    def image(self) -> bool:
        return self.content_type in IMAGE_TYPES


@dataclass(frozen=True)
class MailView:
    file: MailFile
    message_id: str
    text: str | None  # the plain-text part, None when the message has none (or it cannot be read)
    parts: list[Part]  # every part that is not a container


def enabled(settings: Settings) -> bool:
    """Whether this server has a mail page at all."""
    return settings.environment in ("development", "test")


def available(settings: Settings, principal: Principal) -> bool:
    """Whether `principal` sees the mail page (the sidebar asks; every read checks again)."""
    return enabled(settings) and principal.role is Role.STORE_OWNER


async def _check(services: Services, principal: Principal) -> None:
    if not enabled(services.settings):
        raise NotFound(NO_SUCH_PAGE)
    await services.confirm(principal)
    if principal.role is not Role.STORE_OWNER:
        raise NotFound(NO_SUCH_PAGE)


def _entries(directory: Path) -> dict[str, os.stat_result]:
    try:
        with os.scandir(directory) as found:
            return {
                entry.name: entry.stat(follow_symlinks=False)
                for entry in found
                if NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False)
            }
    except (FileNotFoundError, NotADirectoryError):  # nothing written yet
        return {}


def _header(message: EmailMessage, name: str) -> str:
    try:
        return str(message.get(name, "") or "")
    except _UNREADABLE:
        return ""


def _date(message: EmailMessage) -> datetime | None:
    try:
        value = message.get("Date")
        moment = getattr(value, "datetime", None)
    except _UNREADABLE:
        return None
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def _parse(data: bytes, *, headers_only: bool = False) -> EmailMessage:
    parser = email.parser.BytesParser(policy=email.policy.default)
    parsed = parser.parsebytes(data, headersonly=headers_only)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _described(name: str, stat: os.stat_result, message: EmailMessage | None) -> MailFile:
    written = datetime.fromtimestamp(stat.st_mtime, UTC)
    if message is None:
        return MailFile(name, written, None, "", "", "(this file could not be read)")
    return MailFile(
        name, written, _date(message), _header(message, "From"), _header(message, "To"), _header(message, "Subject")
    )


def _read(directory: Path, name: str, stat: os.stat_result, *, headers_only: bool) -> tuple[bytes, EmailMessage | None]:
    if stat.st_size > MAX_BYTES:
        return b"", None
    try:
        data = (directory / name).read_bytes()
    except OSError:
        return b"", None
    try:
        return data, _parse(data, headers_only=headers_only)
    except _UNREADABLE:
        return data, None


def _list(directory: Path) -> tuple[list[MailFile], int]:
    entries = _entries(directory)
    newest = sorted(entries.items(), key=lambda item: (-item[1].st_mtime_ns, item[0]))[:MAX_LISTED]
    return [_described(name, stat, _read(directory, name, stat, headers_only=True)[1]) for name, stat in newest], len(
        entries
    )


def _open(directory: Path, name: str) -> tuple[MailFile, bytes, EmailMessage | None]:
    stat = _entries(directory).get(name)
    if stat is None:
        raise NotFound(NO_SUCH_MESSAGE)
    data, message = _read(directory, name, stat, headers_only=False)
    return _described(name, stat, message), data, message


def _leaves(message: EmailMessage) -> list[tuple[int, EmailMessage]]:
    return [(n, part) for n, part in enumerate(message.walk()) if not part.is_multipart()]


def _bytes_of(part: EmailMessage) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except _UNREADABLE:
        return b""
    return payload if isinstance(payload, bytes) else b""


def _text(message: EmailMessage) -> str | None:
    try:
        body = message.get_body(preferencelist=("plain",))
        if body is None:
            return None
        content = body.get_content()
    except _UNREADABLE:
        return None
    return content if isinstance(content, str) else None


async def listed(services: Services, principal: Principal) -> tuple[list[MailFile], int]:
    """The newest `MAX_LISTED` messages, newest written first, and how many there are in all."""
    await _check(services, principal)
    return await asyncio.to_thread(_list, services.settings.mail_directory)


async def opened(services: Services, principal: Principal, name: str) -> MailView:
    await _check(services, principal)
    file, _, message = await asyncio.to_thread(_open, services.settings.mail_directory, name)
    if message is None:
        return MailView(file, "", None, [])
    parts = [
        Part(n, part.get_content_type(), part.get_filename(), len(_bytes_of(part))) for n, part in _leaves(message)
    ]
    return MailView(file, _header(message, "Message-ID"), _text(message), parts)


async def image(services: Services, principal: Principal, name: str, number: int) -> tuple[bytes, str]:
    """Part `number` of a message, when it is a PNG, JPEG or GIF image: its bytes and type."""
    await _check(services, principal)
    _, _, message = await asyncio.to_thread(_open, services.settings.mail_directory, name)
    found = dict(_leaves(message)).get(number) if message is not None else None
    if found is None or found.get_content_type() not in IMAGE_TYPES:
        raise NotFound("No such image in this message.")
    return _bytes_of(found), found.get_content_type()


async def raw(services: Services, principal: Principal, name: str) -> bytes:
    """A message's file as it was written (to open in a mail client)."""
    await _check(services, principal)
    _, data, _ = await asyncio.to_thread(_open, services.settings.mail_directory, name)
    return data
