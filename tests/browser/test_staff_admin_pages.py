"""The staff dashboard's administrative pages (web/staff_admin.py, web/staff_regions.py) and
the trend of a series (web/staff_trends.py) in Chromium, for two municipalities with different
colours, at 390 px and 1280 px wide: zero axe violations (WCAG 2.1 A/AA), usable by keyboard
(skip link first, focus visible on every stop), nothing to scroll sideways at 390 px; the house
style's live preview follows the colour typed; letter codes made through the form are
downloaded once; a region is made from the list by keyboard alone, and by clicking buurten on
the map; regions proposed from a GeoJSON file."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.a11y import (
    WIDTHS,
    assert_keyboard_usable,
    assert_no_axe_violations,
    assert_usable_zoomed,
)
from tests.browser.conftest import SCREENSHOTS
from tests.browser.system import AMERSFOORT, UTRECHT, System
from tests.browser.test_resident_loop import tab_to
from tests.browser.world import neighbours_answer, open_poll, until


def region_buurten(code: str) -> list[str]:
    """Four buurten of wijk 01 (Oog in Al and Halve Maan in Utrecht's files): a region."""
    return [f"BU{code[2:]}01{n}" for n in ("11", "12", "13", "14")]


def series(system: System, code: str) -> tuple[str, str]:
    """Two closed waves to wijk 01, each answered by 22 residents of two of its buurten."""
    admin = system.admin(code)
    audience = {"kind": "areas", "area_codes": [f"WK{code[2:]}01"]}
    waves: list[str] = []
    for values in ((4, 2), (5, 4)):
        if not waves:
            poll_id = open_poll(system, code, audience)
        else:
            made = system.api.request(
                "POST",
                "/admin/v1/polls",
                token=admin,
                json={"previous_poll_id": waves[-1], "audience": audience},
            )
            assert made.status_code == 201, made.text
            poll_id = made.json()["id"]
            opened = system.api.request("POST", f"/admin/v1/polls/{poll_id}/publish", token=admin)
            assert opened.status_code == 200, opened.text
        neighbours_answer(system, code, poll_id, region_buurten(code)[:2], 22, values)
        closed = system.api.request("POST", f"/admin/v1/polls/{poll_id}/close", token=admin)
        assert closed.status_code == 200, closed.text
        waves.append(poll_id)
    return waves[0], waves[1]


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
        region = system.api.request(
            "POST",
            "/admin/v1/regions",
            token=system.admin(code),
            json={"name": "Oog in Al en Halve Maan", "buurt_codes": region_buurten(code)},
        )
        assert region.status_code == 201, region.text
        first, second = series(system, code)
        world[code] = {
            "account": invited.json()["id"],
            "region": region.json()["code"],
            "first": first,
            "second": second,
        }
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
            "/staff/beheer/regios",
            "/staff/beheer/regios/nieuw",
            f"/staff/beheer/regios/{admin_world[code]['region']}",
            f"/staff/beheer/regios/{admin_world[code]['region']}/archiveren",
            "/staff/beheer/regios/importeren",
        ):
            response = page.goto(path)
            assert response.status == 200, path
            check(page, width)
        trend = f"/staff/peilingen/{admin_world[code]['second']}/verloop"
        for path in (trend, trend + "?gebied=" + region_buurten(code)[3]):
            response = until(
                "the waves' results computed",
                lambda path=path: (lambda r: r if r.status == 200 else None)(page.goto(path)),
            )
            assert response.status == 200 and page.locator("svg.bp-chart").count() == 1
            check(page, width)
        if code == UTRECHT and width == 1280:
            page.goto(trend + f"?optie=2&gebied=WK{code[2:]}01")  # half 2, then none
            page.locator("#question-title").evaluate("el => el.scrollIntoView()")
            page.screenshot(path=str(SCREENSHOTS / "staff-trend.png"))

        # A refused region: the error summary on the region form is accessible too.
        page.goto("/staff/beheer/regios/nieuw")
        page.get_by_role("button", name="Regio maken").click()
        assert "Er is een probleem" in page.inner_text(".bp-error-summary")
        assert_no_axe_violations(page)

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


def test_a_region_is_made_from_the_list_by_keyboard_alone(browser, system, admin_world):
    """From the list of regions: Tab to "Nieuwe regio", Enter, type the name, open a wijk's
    buurten with Enter, tick one with Space, Tab to "Regio maken", Enter: the region is made
    and listed."""
    code = UTRECHT
    context = admin_context(browser, system, code, 1280)
    page = context.new_page()
    try:
        page.goto("/staff/beheer/regios")
        tab_to(page, text="Nieuwe regio")
        page.keyboard.press("Enter")
        page.wait_for_url("**/staff/beheer/regios/nieuw")
        tab_to(page, id="f-name")
        page.keyboard.type("Dorpskern per toetsenbord")
        for _ in range(40):  # to the first wijk's list of buurten (a <summary>)
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.tagName") == "SUMMARY":
                break
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        ticked = page.evaluate("() => document.activeElement.value")
        assert ticked.startswith("BU")
        page.keyboard.press("Space")
        assert page.locator(f"#a-{ticked}").is_checked()
        # The map follows the list.
        page.locator(f'svg.bp-map-svg path[data-code="{ticked}"][fill="#1f4e79"]').wait_for()
        tab_to(page, text="Regio maken")
        page.keyboard.press("Enter")
        page.wait_for_url("**/staff/beheer/regios?opgeslagen=*")
        assert "Dorpskern per toetsenbord" in page.inner_text("table")
        assert_no_axe_violations(page)
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_buurten_are_picked_on_the_map_and_regions_imported_from_geojson(
    browser, system, admin_world, width
):
    code = UTRECHT
    context = admin_context(browser, system, code, width)
    page = context.new_page()
    try:
        page.goto("/staff/beheer/regios/nieuw")
        buurt = region_buurten(code)[0]
        # A click on the buurt (dispatched: a buurt is a few pixels wide at 390 px).
        page.locator(f"path[data-code={buurt}]").dispatch_event("click")
        assert page.locator(f"#a-{buurt}").is_checked()
        page.locator(f'path[data-code="{buurt}"][fill="#1f4e79"]').wait_for()
        page.locator(f"path[data-code={buurt}]").dispatch_event("click")
        assert not page.locator(f"#a-{buurt}").is_checked()
        assert_no_axe_violations(page)
        if code == UTRECHT and width == 1280:
            page.screenshot(path=str(SCREENSHOTS / "staff-region.png"))

        shapes = system.api.request("GET", f"/api/v1/municipalities/{code}/buurten.geojson").json()
        outline = next(f for f in shapes["features"] if f["properties"]["code"] == buurt)
        upload = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"name": "Uit een bestand"},
                    **{"geometry": outline["geometry"]},
                }
            ],
        }
        page.goto("/staff/beheer/regios/importeren")
        page.set_input_files(
            "#f-geojson",
            files=[
                {
                    "name": "regios.geojson",
                    "mimeType": "application/geo+json",
                    "buffer": json.dumps(upload).encode(),
                }
            ],
        )
        page.get_by_role("button", name="Voorstel tonen").click()
        assert page.locator(f"#p0-{buurt}").is_checked()
        check(page, width)
    finally:
        context.close()
