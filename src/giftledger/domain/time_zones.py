"""An account's time zone: stored times are UTC; what a merchant reads (dashboard pages, exports) and the
3 am expiry rule are in the account's zone, an IANA name (Europe/London unless the Store Owner sets another)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DEFAULT_TIME_ZONE = "Europe/London"


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """The zone named `name`; raises ValueError for a name that is not an IANA zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as unknown:
        raise ValueError(f"unknown time zone: {name!r}") from unknown


def is_time_zone(name: str) -> bool:
    return name in _names()


@lru_cache(maxsize=1)
def _names() -> frozenset[str]:
    return frozenset(available_timezones())


def choices() -> list[str]:
    """Every IANA zone name, sorted (the Store Owner's list)."""
    return sorted(_names())


def local(moment: datetime, time_zone: str) -> datetime:
    """`moment` (aware) as the account's wall-clock time."""
    return moment.astimezone(zone(time_zone))
