"""The server's log: one JSON object per line on stderr, for giftledger's own records and uvicorn's.

Every record goes through the standard library's `logging` (giftledger's modules, uvicorn, the libraries) and is
rendered by structlog's `ProcessorFormatter` (its documented stdlib integration): the fields bound to the
request being handled (`request_id`: request_log.py, through `structlog.contextvars`), the level, the logger's
name, a UTC timestamp, the record's `extra` fields, the traceback of an exception as text, and then `redact`,
which masks anything that looks like a card number or a token in any field, whatever put it there.

uvicorn's access log stays off: the request line of request_log.py replaces it, with the request id, the
duration and the GraphQL operation, and without the query string (a GET /graphql carries its variables there).

`log_config()` is a `logging.config.dictConfig` dictionary: `giftledger serve` applies it in its own process
and hands it to uvicorn (`log_config`), which applies it again in every worker process it starts. Nothing here
imports the rest of giftledger but the card-number mask."""

from __future__ import annotations

import logging.config
import re
from collections.abc import MutableMapping
from typing import Any

import structlog

from giftledger.domain.card_numbers import mask_card

# A run of 13 to 19 digits (payment cards' lengths; ours have 19) not inside a longer run of digits, or a JSON
# Web Token (three base64url parts, the first a JSON object's: 'eyJ' is '{"').
_SECRET = re.compile(r"(?<!\d)\d{13,19}(?!\d)|eyJ[\w-]*\.[\w-]+\.[\w-]*")
REDACTED = "[redacted]"


def _hidden(match: re.Match[str]) -> str:
    found = match.group()
    return mask_card(found) if found.isdigit() else REDACTED


def scrub(text: str) -> str:
    """`text` with every card-number-like run of digits masked and every token replaced."""
    return _SECRET.sub(_hidden, text)


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10**12:
        return scrub(str(value))
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    return value


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: every string in the record (its message, its fields, a traceback) scrubbed."""
    for key, value in event_dict.items():
        event_dict[key] = _scrubbed(value)
    return event_dict


def json_formatter() -> structlog.stdlib.ProcessorFormatter:
    """The formatter of every handler: a stdlib record as one line of JSON."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(),
        ],
    )


def log_config() -> dict[str, Any]:
    """giftledger's logging, for `logging.config.dictConfig` and uvicorn's `log_config`: every record to
    stderr as JSON; giftledger's from INFO (one line per request), the rest from WARNING (uvicorn's own
    level is its `log_level`). Plain strings only: uvicorn pickles it for its worker processes."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "giftledger.logs.json_formatter"}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "giftledger": {"level": "INFO"},
            # uvicorn's loggers have their own handlers by default: here they go to the root's
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }


def configure() -> None:
    """Apply `log_config()` to this process."""
    logging.config.dictConfig(log_config())
