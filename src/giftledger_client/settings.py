"""Terminal settings: what a till stores to talk to a Toggle-compatible endpoint (PointOne's "Toggle" tab)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

from .card_numbers import DEFAULT_CARD_LENGTH, DEFAULT_CARD_PREFIX
from .errors import ConfigurationError


@dataclass(frozen=True, kw_only=True)
class TerminalSettings:
    """One terminal's gift card settings. Checked when built: a wrong value raises `ConfigurationError`.

    Attributes:
        endpoint: URL of the GraphQL endpoint, e.g. `https://api.mytoggle.io/graphql`.
        account_id: the Toggle account ID.
        username: the API user's username.
        password: the API user's password (never shown by `repr`; included by `to_dict`).
        site_reference: the site's EPOS reference, sent as `unit_epos_reference`.
        merchant_id: the POS company's merchant ID.
        product_id: the product sold at the till ("In-Store Gift"); needed only to sell cards.
        validate_card_number: check digits, length, prefix and check digit before sending a card number.
        card_prefix: the IIN prefix a valid card number starts with.
        card_length: the number of digits in a valid card number.
        enabled: when False every operation raises `IntegrationDisabled` and nothing is sent.
        currency: the ISO currency code sent with every sale and adjustment.
        timeout: seconds to wait for the server on each request.
    """

    endpoint: str
    account_id: int
    username: str
    password: str = field(repr=False)
    site_reference: str
    merchant_id: int
    product_id: int | None = None
    validate_card_number: bool = True
    card_prefix: str = DEFAULT_CARD_PREFIX
    card_length: int = DEFAULT_CARD_LENGTH
    enabled: bool = True
    currency: str = "GBP"
    timeout: float = 10.0

    _TEXT: ClassVar[tuple[str, ...]] = ("endpoint", "username", "password", "site_reference", "currency")
    _IDS: ClassVar[tuple[str, ...]] = ("account_id", "merchant_id")
    _FLAGS: ClassVar[tuple[str, ...]] = ("validate_card_number", "enabled")

    def __post_init__(self) -> None:
        for name in self._TEXT:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigurationError(f"{name} must be non-empty text.")
        for name in self._IDS:
            if not _is_positive_int(getattr(self, name)):
                raise ConfigurationError(f"{name} must be a whole number greater than zero.")
        if self.product_id is not None and not _is_positive_int(self.product_id):
            raise ConfigurationError("product_id must be a whole number greater than zero, or None.")
        for name in self._FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(f"{name} must be true or false.")
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError("endpoint must be an http(s) URL, for example https://api.mytoggle.io/graphql.")
        prefix = self.card_prefix
        if not isinstance(prefix, str) or (prefix and not _is_digits(prefix)):
            raise ConfigurationError("card_prefix must be digits (or empty for no prefix check).")
        if not _is_positive_int(self.card_length) or self.card_length <= len(self.card_prefix):
            raise ConfigurationError("card_length must be a whole number longer than card_prefix.")
        timeout = self.timeout
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600:
            raise ConfigurationError("timeout must be a number of seconds between 0 and 600.")
        object.__setattr__(self, "timeout", float(timeout))

    def to_dict(self) -> dict[str, object]:
        """All settings as a JSON-ready dict, password included: store it where only the till can read it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> TerminalSettings:
        """Build settings from `to_dict()` output. Unknown or missing keys raise `ConfigurationError`."""
        if not isinstance(data, Mapping):
            raise ConfigurationError("Terminal settings must be a mapping of names to values.")
        known = {item.name: item for item in dataclasses.fields(cls)}
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise ConfigurationError(f"Unknown terminal setting(s): {', '.join(unknown)}.")
        missing = [
            name
            for name, item in known.items()
            if name not in data and item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING
        ]
        if missing:
            raise ConfigurationError(f"Missing terminal setting(s): {', '.join(missing)}.")
        return cls(**{str(key): value for key, value in data.items()})  # type: ignore[arg-type]


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()
