"""A municipality's house style as an NL Design System theme, and its installable app.

The component CSS (``@utrecht/component-library-css``) reads only ``--utrecht-*`` tokens; the
theme model (derived from the voorbeeld example theme, see web/vendoring.py) maps those to
``--basis-*`` tokens. A municipality's theme overrides the ``--basis-*`` colours from its
branding — the primary colour becomes the action colours (buttons, the header), a version of it
dark enough for text on white the link colours — and leaves the focus colours fixed (black on
yellow, legible whatever the brand). Each theme is one small CSS file with its own hash.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from web.static_files import Asset, make_asset

WHITE, BLACK = "#FFFFFF", "#0B0C0C"
AA_TEXT = 4.5


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def to_hex(channels: Iterable[float]) -> str:
    return "#" + "".join(f"{max(0, min(255, round(c))):02X}" for c in channels)


def luminance(hex_colour: str) -> float:
    """WCAG 2.x relative luminance."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = rgb(hex_colour)
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def mix(colour: str, other: str, share: float) -> str:
    """``share`` of ``other`` mixed into ``colour`` (sRGB, good enough for hover shades)."""
    a, b = rgb(colour), rgb(other)
    return to_hex(tuple(x + (y - x) * share for x, y in zip(a, b, strict=True)))


def readable_on(background: str, colour: str, ratio: float = AA_TEXT) -> str:
    """``colour``, darkened (or lightened) in steps until it reaches ``ratio`` on
    ``background``: the brand colour as text."""
    towards = BLACK if luminance(background) > 0.18 else WHITE
    for step in range(21):
        candidate = mix(colour, towards, step * 0.05)
        if contrast(candidate, background) >= ratio:
            return candidate
    return towards


def basis_tokens(branding: dict[str, Any]) -> dict[str, str]:
    primary = branding["primary_color"].upper()
    on_primary = (branding.get("text_on_primary") or WHITE).upper()
    shade = BLACK if luminance(primary) > 0.18 else WHITE
    hover, active = mix(primary, shade, 0.15), mix(primary, shade, 0.3)
    # Hover and active shades must stay legible under the same text colour.
    if contrast(hover, on_primary) < AA_TEXT:
        hover = mix(primary, BLACK if on_primary == WHITE else WHITE, 0.15)
    if contrast(active, on_primary) < AA_TEXT:
        active = mix(primary, BLACK if on_primary == WHITE else WHITE, 0.3)
    link = readable_on("#FFFFFF", primary)
    tokens: dict[str, str] = {}
    for family in ("action-1", "accent-1"):
        tokens |= {
            f"--basis-color-{family}-inverse-bg-default": primary,
            f"--basis-color-{family}-inverse-bg-hover": hover,
            f"--basis-color-{family}-inverse-bg-active": active,
            f"--basis-color-{family}-inverse-color-default": on_primary,
            f"--basis-color-{family}-inverse-color-hover": on_primary,
            f"--basis-color-{family}-inverse-color-active": on_primary,
            f"--basis-color-{family}-color-default": link,
            f"--basis-color-{family}-color-hover": mix(link, BLACK, 0.25),
            f"--basis-color-{family}-color-active": mix(link, BLACK, 0.4),
            f"--basis-color-{family}-border-default": link,
            f"--basis-color-{family}-bg-default": mix(primary, "#FFFFFF", 0.9),
            f"--basis-color-{family}-bg-subtle": mix(primary, "#FFFFFF", 0.95),
        }
    # Links in the municipality's colour (voorbeeld uses action-2 for links).
    tokens |= {
        "--basis-color-action-2-color-default": link,
        "--basis-color-action-2-color-hover": mix(link, BLACK, 0.25),
        "--basis-color-action-2-color-active": mix(link, BLACK, 0.4),
        # Our own layout reads these: the header bar in the brand colour.
        "--bp-brand-bg": primary,
        "--bp-brand-color": on_primary,
        "--bp-brand-subtle-bg": mix(primary, "#FFFFFF", 0.92),
    }
    return tokens


def theme_css(code: str, branding: dict[str, Any]) -> str:
    lines = [f"  {name}: {value};" for name, value in basis_tokens(branding).items()]
    return (
        f"/* Buurtpeil theme for {code}, from its branding. */\n.bp-theme {{\n"
        + "\n".join(lines)
        + "\n}\n"
    )


def theme_asset(code: str, branding: dict[str, Any]) -> Asset:
    return make_asset(f"theme/{code}.css", theme_css(code, branding).encode())


def icon_svg(branding: dict[str, Any], name: str) -> str:
    """The app icon: the municipality's initial on its colour (a maskable square)."""
    initial = (name.strip()[:1] or "B").upper()
    primary = branding["primary_color"]
    on_primary = branding.get("text_on_primary") or WHITE
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512" role="img" '
        f'aria-label="{_xml(name)}"><rect width="512" height="512" fill="{primary}"/>'
        f'<text x="256" y="340" font-family="sans-serif" font-size="260" font-weight="700" '
        f'text-anchor="middle" fill="{on_primary}">{_xml(initial)}</text></svg>'
    )


def manifest(code: str, branding: dict[str, Any], name: str, icon_url: str, lang: str) -> str:
    """The web app manifest: installs as the municipality's own app, scoped to it."""
    return json.dumps(
        {
            "id": f"/app/{code}/",
            "name": branding.get("app_name") or name,
            "short_name": name[:12],
            "lang": lang,
            "start_url": f"/app/{code}/",
            "scope": f"/app/{code}/",
            "display": "standalone",
            "background_color": "#FFFFFF",
            "theme_color": branding["primary_color"],
            "icons": [
                {"src": icon_url, "sizes": "any", "type": "image/svg+xml", "purpose": "any"},
                {"src": icon_url, "sizes": "any", "type": "image/svg+xml", "purpose": "maskable"},
            ],
        },
        ensure_ascii=False,
    )


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
