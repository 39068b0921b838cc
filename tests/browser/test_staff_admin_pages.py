"""The staff dashboard's administrative pages (web/staff_admin.py) in Chromium, for two
municipalities with different colours, at 390 px and 1280 px wide: zero axe violations
(WCAG 2.1 A/AA), usable by keyboard (skip link first, focus visible on every stop), nothing to
scroll sideways at 390 px; the house style's live preview follows the colour typed; letter codes
made through the form are downloaded once."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.a11y import (
    WIDTHS,
    assert_keyboard_usable,
    assert_no_axe_violations,
    assert_usable_zoomed,
)
from tests.browser.system import AMERSFOORT, UTRECHT, System


@pytest.fixture(scope="session")
def admin_world(system: System) -> dict[str, dict[str, Any]]:
    """Per municipality: an invited colleague (a staff account page to visit)."""
    world = {}
    for code in (UTRECHT, AMERSFOORT):
        invited = system.api.request(
            "POST",
            "/admin/v1/staff",
            token=system.admin(code),
            json={"email": f"analist@{code.lower()}.example", "role": "viewer"},
        )
        assert invited.status_code == 201, invited.text
        world[code] = {"account": invited.json()["id"]}
    return world


def admin_context(browser: Any, system: System, code: str, width: int) -> Any:
    """A browser signed in as an administrator of ``code`` (the seeded account is an editor)."""
    context = browser.new_context(base_url=system.base, viewport={"width": width, "height": 900})
    context.add_cookies(
        [{"name": "bp_staff_access", "value": system.admin(code), "url": system.base + "/staff/"}]
    )
    return context


def check(page: Any, width: int) -> None:
    assert_no_axe_violations(page)
    if width == 1280:
        assert_keyboard_usable(page, max_stops=200)
    else:
        assert_usable_zoomed(page)


@pytest.mark.parametrize("code", [UTRECHT, AMERSFOORT])
@pytest.mark.parametrize("width", WIDTHS)
def test_every_administrative_page_passes_axe_and_the_keyboard(
    browser, system, admin_world, code, width
):
    context = admin_context(browser, system, code, width)
    page = context.new_page()
    try:
        for path in (
            "/staff/beheer",
            "/staff/beheer/medewerkers",
            f"/staff/beheer/medewerkers/{admin_world[code]['account']}",
            "/staff/beheer/huisstijl",
            "/staff/beheer/uitnodigingen",
            "/staff/beheer/meldingen",
        ):
            response = page.goto(path)
            assert response.status == 200, path
            check(page, width)

        # An error summary on the invitation form is accessible too.
        page.goto("/staff/beheer/medewerkers")
        page.get_by_role("button", name="Uitnodiging versturen").click()
        assert "Er is een probleem" in page.inner_text(".bp-error-summary")
        assert_no_axe_violations(page)

        # The live preview follows the colour as it is typed (htmx), and stays accessible.
        page.goto("/staff/beheer/huisstijl")
        page.fill("#f-primary_color", "")
        page.locator("#f-primary_color").press_sequentially("#5C2D91")
        expect(page.locator("#preview")).to_contain_text("#5C2D91")  # the page's CSP: no eval
        header = page.locator(".bp-preview__header")
        assert header.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(92, 45, 145)"
        assert_no_axe_violations(page)

        # Letter codes through the form: the batch page, the one download, then the refusal.
        page.goto("/staff/beheer/uitnodigingen")
        page.fill("#f-total", "3")
        page.get_by_role("button", name="Codes maken").click()
        page.wait_for_url("**/staff/beheer/uitnodigingen/*")
        check(page, width)
        with page.expect_download() as download:
            page.get_by_role("button", name="Download de codes (CSV)").click()
        lines = open(download.value.path(), encoding="utf-8").read().strip().splitlines()
        assert len(lines) == 4 and lines[0] == "code,wijk_code,batch_id"
        page.reload()
        assert page.get_by_role("button", name="Download de codes (CSV)").count() == 0
        assert_no_axe_violations(page)
    finally:
        context.close()
