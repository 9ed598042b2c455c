"""A merchant's branding rules: colours as `#rrggbb`, logos recognised by their bytes, and readable text."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from giftledger.domain import branding


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("#1B7F3B", "#1b7f3b"), (" #abcdef ", "#abcdef"), ("#000000", "#000000")],
)
def test_a_colour_is_six_hexadecimal_digits(typed: str, stored: str) -> None:
    assert branding.colour(typed) == stored


FULL_WIDTH_DIGITS = "#\uff11\uff12\uff13\uff14\uff15\uff16"


@pytest.mark.parametrize("typed", ["", "red", "#12345g", "#1234567", "#12345", "123456", FULL_WIDTH_DIGITS, "#12 456"])
def test_anything_else_is_not_a_colour(typed: str) -> None:
    assert branding.colour(typed) is None


def picture(kind: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "#123456").save(out, format=kind)
    return out.getvalue()


def test_a_logo_is_known_by_its_bytes() -> None:
    assert branding.logo_type(picture("PNG")) == branding.PNG
    assert branding.logo_type(picture("JPEG")) == branding.JPEG
    for other in (picture("GIF"), picture("BMP"), picture("WEBP"), b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"):
        assert branding.logo_type(other) is None
    assert branding.logo_type(b'<svg xmlns="http://www.w3.org/2000/svg"/>') is None
    assert branding.logo_type(b"\x89PNG\r\n\x1a\n" + b"\0" * 4 + b"tEXt") is None  # a PNG starts with IHDR


@pytest.mark.parametrize(
    ("background", "ink"),
    [
        ("#1b7f3b", branding.LIGHT_INK),
        ("#000000", branding.LIGHT_INK),
        ("#7a1f3d", branding.LIGHT_INK),
        ("#ffffff", branding.DARK_INK),
        ("#f5d90a", branding.DARK_INK),
        ("#8fd3fe", branding.DARK_INK),
    ],
)
def test_text_on_the_brand_colour_is_the_more_readable_of_white_and_near_black(background: str, ink: str) -> None:
    assert branding.ink_on(background) == ink
    other = branding.DARK_INK if ink == branding.LIGHT_INK else branding.LIGHT_INK
    assert branding.contrast(ink, background) >= branding.contrast(other, background)


def test_contrast_is_the_wcag_ratio() -> None:
    assert branding.contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert branding.contrast("#777777", "#777777") == pytest.approx(1.0)
    assert branding.contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
