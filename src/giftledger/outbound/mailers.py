"""Mailers: deliver one finished message (the bytes the outbox holds) to one recipient.

`SmtpMailer` speaks SMTP through aiosmtplib: `smtp://user:pass@host:port` (STARTTLS when the server offers it)
or `smtps://...` (TLS from the first byte). `DirectoryMailer` writes each message as an `.eml` file (named by
its Message-ID, so a resend rewrites the same file): development's way to see what would be sent."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib

SMTP_TIMEOUT_S = 30.0


class DeliveryFailed(Exception):
    """A message was not delivered. `permanent`: trying again cannot help (the server refused it for good)."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Mailer(Protocol):
    async def deliver(self, content: bytes, *, sender: str, recipient: str, message_id: str) -> None: ...

    def describe(self) -> str: ...


class SmtpMailer:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("an SMTP URL is smtp://[user:pass@]host[:port] or smtps://...")
        self._tls = parts.scheme == "smtps"
        self._host = parts.hostname
        self._port = parts.port or (465 if self._tls else 25)
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None

    def describe(self) -> str:
        return f"{'smtps' if self._tls else 'smtp'}://{self._host}:{self._port}"  # never the password

    async def deliver(self, content: bytes, *, sender: str, recipient: str, message_id: str) -> None:
        # An address with characters beyond ASCII (josé@example.com: the API takes it) needs SMTPUTF8, which
        # aiosmtplib asks for only when told: without it, it fails to encode the address (UnicodeEncodeError).
        utf8 = not (sender + recipient).isascii()
        try:
            await aiosmtplib.send(
                content,
                sender=sender,
                recipients=[recipient],
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._tls,
                start_tls=None if not self._tls else False,  # None: STARTTLS when the server offers it
                timeout=SMTP_TIMEOUT_S,
                mail_options=["SMTPUTF8"] if utf8 else None,
            )
        except aiosmtplib.SMTPNotSupported as error:
            # a server without SMTPUTF8 never takes this address; any other missing extension is its set-up's
            permanent = utf8 and "SMTPUTF8" in str(error)
            raise DeliveryFailed(f"{type(error).__name__}: {error}", permanent=permanent) from error
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise DeliveryFailed(_reason(error), permanent=_permanent(error)) from error
        except aiosmtplib.SMTPResponseException as error:
            raise DeliveryFailed(f"{error.code} {error.message}", permanent=500 <= error.code < 600) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from error


def _reason(error: aiosmtplib.SMTPRecipientsRefused) -> str:
    return "; ".join(f"{r.code} {r.message}" for r in error.recipients) or str(error)


def _permanent(error: aiosmtplib.SMTPRecipientsRefused) -> bool:
    return all(500 <= r.code < 600 for r in error.recipients)


class DirectoryMailer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self) -> str:
        return f"files in {self.directory}"

    def path_for(self, message_id: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", message_id.strip("<>"))[:120]
        digest = hashlib.sha256(message_id.encode()).hexdigest()[:8]
        return self.directory / f"{safe}-{digest}.eml"

    async def deliver(self, content: bytes, *, sender: str, recipient: str, message_id: str) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.path_for(message_id)
            partial = path.with_suffix(".eml.partial")
            partial.write_bytes(content)
            os.replace(partial, path)  # whole or not at all
        except OSError as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from error
