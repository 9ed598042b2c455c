"""A merchant's branding as its customers see it (e-gift emails, card pages): which colours and logos are
accepted, and which text colour reads on the brand colour.

A logo is recognised by its bytes (its magic number), never by a file name or a browser's content type: only
PNG and JPEG, which every mail client and browser shows and none runs (an SVG may carry script)."""

from __future__ import annotations

import re

DEFAULT_COLOUR = "#1b7f3b"
MAX_LOGO_BYTES = 200_000  # "200 kB": a logo is shown at most 200 px wide, in every e-gift sent
LOGO_LIMIT_TEXT = "200 kB"
PNG, JPEG = "image/png", "image/jpeg"

COLOUR_HINT = "Enter a colour as # and six hexadecimal digits, like #1b7f3b."
LOGO_NOT_AN_IMAGE = "The logo must be a PNG or JPEG image."
LOGO_TOO_LARGE = f"The logo must be at most {LOGO_LIMIT_TEXT}."
LOGO_EMPTY = "The chosen file is empty."

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
DARK_INK, LIGHT_INK = "#1d2430", "#ffffff"


def colour(raw: str) -> str | None:
    """A colour typed as `#rrggbb` (either case), as stored (lower case); None for anything else."""
    text = raw.strip()
    return text.lower() if _COLOUR.fullmatch(text) else None


def logo_type(data: bytes) -> str | None:
    """The image type of a logo's bytes: PNG (its signature, then its IHDR header chunk) or JPEG (its start-of-image
    marker FF D8, then the FF of the next marker); None for anything else."""
    if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR":
        return PNG
    if data.startswith(_JPEG_SIGNATURE) and len(data) > 3:
        return JPEG
    return None


def _luminance(value: str) -> float:
    """WCAG 2 relative luminance of a `#rrggbb` colour."""
    channels = []
    for i in (1, 3, 5):
        c = int(value[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
    red, green, blue = channels
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two `#rrggbb` colours (1 to 21)."""
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def ink_on(background: str) -> str:
    """The text colour that reads best on `background`: white, or near-black on a light brand colour."""
    return LIGHT_INK if contrast(LIGHT_INK, background) >= contrast(DARK_INK, background) else DARK_INK
