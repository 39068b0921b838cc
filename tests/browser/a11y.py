"""Accessibility checks for the browser tests: axe-core (our vendored, pinned axe.min.js,
through axe-playwright-python) with the WCAG 2.1 A and AA rules, and keyboard checks.

    assert_no_axe_violations(page)          every WCAG 2.1 A/AA rule, zero violations
    assert_keyboard_usable(page)             skip link first, focus visible on every stop
    assert_usable_zoomed(page)               200% zoom: no horizontal scrolling at 1280 px
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from axe_playwright_python.sync_playwright import Axe

AXE = Axe(axe_script=(Path(__file__).resolve().parent / "vendor" / "axe.min.js").read_text())
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
WIDTHS = (390, 1280)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    results = AXE.run(
        page,
        options={"runOnly": {"type": "tag", "values": WCAG_21_AA}, "resultTypes": ["violations"]},
    )
    return results.response["violations"]


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:5])
        for v in violations
    )


def assert_no_axe_violations(page: Any) -> None:
    violations = axe_violations(page)
    assert violations == [], f"{page.url}\n{describe(violations)}"


FOCUS_STATE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const box = el.getBoundingClientRect();
  return {
    tag: el.tagName, text: (el.innerText || el.value || el.id || '').trim().slice(0, 40),
    cls: el.className || '', href: el.getAttribute('href'),
    outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
    shadow: style.boxShadow !== 'none',
    top: box.top + window.scrollY, left: box.left, visible: box.width > 0 && box.height > 0,
  };
}"""


def assert_keyboard_usable(page: Any, max_stops: int = 60) -> list[dict[str, Any]]:
    """Tab through the page: the skip link comes first and moves the focus to the content;
    every stop is visible, shows a focus indicator, and follows the reading order (down the
    page). Returns the stops."""
    page.keyboard.press("Tab")
    first = page.evaluate(FOCUS_STATE)
    assert first and first["href"] == "#main", f"the first Tab stop is not the skip link: {first}"
    assert first["outline"] or first["shadow"], "the skip link shows no focus"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    stops = []
    for _ in range(max_stops):
        page.keyboard.press("Tab")
        state = page.evaluate(FOCUS_STATE)
        if state is None or state["href"] == "#main":  # past the end, or round to the start
            break
        assert state["visible"], f"focus on an invisible element: {state}"
        assert state["outline"] or state["shadow"], f"no visible focus on {state}"
        if stops:  # one column: the focus moves down the page (or along a row), never back up
            assert state["top"] >= stops[-1]["top"] - 2, f"focus jumps up: {stops[-1]} → {state}"
        stops.append(state)
    return stops


def assert_usable_zoomed(page: Any) -> None:
    """WCAG 1.4.4 / 1.4.10: at 200% zoom of a 1280 px window (640 CSS px) nothing needs
    scrolling sideways. Zoom is emulated with the viewport at half the width and a device
    scale factor of 2, which is what a browser zoom to 200% does to the layout."""
    width = page.evaluate("() => document.documentElement.scrollWidth")
    viewport = page.evaluate("() => window.innerWidth")
    if width > viewport:
        wide = page.evaluate(
            """vw => [...document.querySelectorAll('main *')]
              .filter(el => el.getBoundingClientRect().right > vw + 1)
              .slice(0, 5).map(el => el.tagName + '.' + (el.className.baseVal ?? el.className)
                + ' ' + Math.round(el.getBoundingClientRect().right))""",
            viewport,
        )
        raise AssertionError(
            f"{page.url}: {width} px wide content in a {viewport} px window: {wide}"
        )
