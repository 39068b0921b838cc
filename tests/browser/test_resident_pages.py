"""Every page of the resident app, for two municipalities with different colours, at 390 px
and 1280 px wide: zero axe violations (WCAG 2.1 A/AA), usable by keyboard (skip link first,
focus visible on every stop), and at 200% zoom without scrolling sideways. The README's
screenshot is made here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.a11y import (
    WIDTHS,
    assert_keyboard_usable,
    assert_no_axe_violations,
    assert_usable_zoomed,
)
from tests.browser.conftest import SCREENSHOTS
from tests.browser.system import AMERSFOORT, UTRECHT
from tests.browser.world import buurt_of, make_world
from tests.support.audience import register_device


@pytest.fixture(scope="session")
def world(system) -> dict[str, dict[str, Any]]:
    return make_world(system)


def signed_in(context: Any, system: Any, session: dict[str, Any]) -> None:
    host = system.base.split("//", 1)[1].split(":")[0]
    context.add_cookies(
        [
            {
                "name": f"bp_resident_{kind}",
                "value": session[f"{kind}_token"],
                "domain": host,
                "path": "/app/",
                "httpOnly": True,
                "sameSite": "Lax",
            }
            for kind in ("access", "refresh")
        ]
    )


def public_pages(code: str) -> list[str]:
    base = f"/app/{code}/"
    return [
        base,
        base + "aanmelden-email",
        base + "tijdlijn",
        base + "tot-ziens",
        base + "peilingen/00000000-0000-0000-0000-000000000000",
    ]


def personal_pages(code: str, world: dict[str, Any]) -> list[str]:
    base, mine = f"/app/{code}/", world[code]
    return [
        base + "welkom",
        base + "peilingen",
        base + f"peilingen/{mine['poll']}",
        base + f"ontvangst/{mine['receipt']}?poll={mine['poll']}",
        base + "meldingen",
        base + "terugkoppeling",
        base + f"terugkoppeling/{mine['feedback']}",
        base + "profiel",
        base + "uitschrijven",
    ]


def pages_with_errors(page: Any, code: str) -> Iterator[str]:
    """Forms as they come back with an error summary: a wrong letter code, and the join form."""
    page.goto(f"/app/{code}/")
    page.get_by_role("button", name="Verder").click()
    yield "the start page with an error summary"
    page.fill("#f-invitation_code", "NIET-GOED-123")
    page.get_by_role("button", name="Verder").click()
    yield "the join form"
    page.get_by_role("button", name="Doe mee met het panel").click()
    yield "the join form with an error summary"


@pytest.mark.parametrize("code", [UTRECHT, AMERSFOORT])
@pytest.mark.parametrize("width", WIDTHS)
def test_every_resident_page_passes_axe_and_the_keyboard(browser, system, world, code, width):
    context = browser.new_context(base_url=system.base, viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        for path in public_pages(code):
            page.goto(path)
            assert_no_axe_violations(page)
            if width == 1280:
                assert_keyboard_usable(page)
        for _state in pages_with_errors(page, code):
            assert_no_axe_violations(page)
        signed_in(context, system, world[code]["resident"])
        for path in personal_pages(code, world):
            response = page.goto(path)
            assert response.status == 200, path
            assert page.url.endswith(path.split("?")[0]) or "?" in path, page.url
            assert_no_axe_violations(page)
            if width == 1280:
                assert_keyboard_usable(page)
        if code == UTRECHT and width == 390:
            page.goto(f"/app/{code}/peilingen/{world[code]['poll']}")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "resident-poll.png"))
            page.goto(f"/app/{code}/")
    finally:
        context.close()


@pytest.mark.parametrize("code", [UTRECHT, AMERSFOORT])
def test_every_resident_page_works_at_200_percent_zoom(browser, system, world, code):
    """A 1280 px window zoomed to 200%: 640 CSS px at a device scale factor of 2."""
    context = browser.new_context(
        base_url=system.base, viewport={"width": 640, "height": 450}, device_scale_factor=2
    )
    page = context.new_page()
    try:
        for path in public_pages(code):
            page.goto(path)
            assert_usable_zoomed(page)
        signed_in(context, system, world[code]["resident"])
        for path in personal_pages(code, world):
            page.goto(path)
            assert_usable_zoomed(page)
            assert_no_axe_violations(page)
    finally:
        context.close()


def test_the_start_page_screenshot_for_the_readme(browser, system):
    context = browser.new_context(base_url=system.base, viewport={"width": 390, "height": 780})
    page = context.new_page()
    try:
        page.goto(f"/app/{UTRECHT}/")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "resident-start.png"))
    finally:
        context.close()


def _bounds(geojson: dict[str, Any]) -> tuple[float, float, float, float]:
    """(south, west, north, east) of every polygon of a FeatureCollection."""
    points: list[list[float]] = []

    def walk(c: Any) -> None:
        if c and isinstance(c[0], int | float):
            points.append(c)
        else:
            for part in c:
                walk(part)

    for feature in geojson["features"]:
        walk(feature["geometry"]["coordinates"])
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    return min(lats), min(lons), max(lats), max(lons)


def test_a_point_is_put_on_the_map_by_a_click_and_kept_in_the_draft(browser, system, world):
    """The location question by pointer (the keyboard path types the coordinates, in the loop
    test): Leaflet draws the municipality's buurten (no tiles in tests), a click puts the point
    and fills the coordinates, and after a reload the draft puts it back from them."""
    context = browser.new_context(base_url=system.base, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        signed_in(context, system, world[UTRECHT]["resident"])
        page.goto(f"/app/{UTRECHT}/peilingen/{world[UTRECHT]['poll']}")
        the_map = page.locator("[data-location-map][data-question=onveilige_plek]")
        shapes = the_map.locator("path.leaflet-interactive")
        shapes.first.wait_for()
        drawn = shapes.count()
        lat, lon = page.locator("#q-onveilige_plek"), page.locator("#q-onveilige_plek-lon")
        assert (lat.input_value(), lon.input_value()) == ("", "")

        the_map.scroll_into_view_if_needed()
        the_map.click()  # the middle of the map: the buurten were fitted into it
        page.wait_for_function("() => document.getElementById('q-onveilige_plek').value !== ''")
        assert shapes.count() == drawn + 1  # the point
        point = float(lat.input_value()), float(lon.input_value())
        buurten = page.request.get(f"/app/{UTRECHT}/buurten.geojson").json()
        south, west, north, east = _bounds(buurten)
        assert south < point[0] < north and west < point[1] < east, point
        assert_no_axe_violations(page)

        page.reload()
        shapes.first.wait_for()
        page.wait_for_function(
            f"() => document.querySelectorAll("
            f"'[data-location-map] path.leaflet-interactive').length === {drawn + 1}"
        )
        assert (float(lat.input_value()), float(lon.input_value())) == point
    finally:
        context.close()


def test_a_business_s_contact_sees_whose_device_is_whose_and_leaves_alone(browser, system):
    """A contact of a business with a colleague: the devices page (its own device labelled,
    the colleague's named and without a button) and the leave page (the organisation stays
    with the other contacts) pass axe and the keyboard; leaving by keyboard ends on the page
    that says the organisation goes on."""
    api, admin = system.api, system.admin(UTRECHT)
    batch = api.request(
        "POST",
        "/admin/v1/invitation-batches",
        token=admin,
        json={"per_wijk": {"WK034401": 1}, "kind": "ondernemer"},
    )
    assert batch.status_code == 201, batch.text
    first = api.request(
        "POST",
        "/api/v1/join",
        json={
            "invitation_code": batch.json()["csv"].splitlines()[1].split(",")[0],
            "kvk_number": "91234567",
            "organisation_name": "Bakkerij De Hoek",
            "buurt_code": buurt_of(UTRECHT),
            "consent": True,
            "language": "nl",
        },
    ).json()
    made = api.request("POST", "/api/v1/me/contacts", token=first["access_token"], json={})
    second = api.request(
        "POST",
        "/api/v1/join",
        json={"invitation_code": made.json()["code"], "consent": True, "language": "nl"},
    ).json()
    for session in (first, second):
        register_device(api, system.push, session["access_token"])
    context = browser.new_context(base_url=system.base, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        signed_in(context, system, first)
        page.goto(f"/app/{UTRECHT}/meldingen")
        assert page.get_by_text("Uw apparaat", exact=True).count() == 1
        assert page.get_by_text("Apparaat van een andere contactpersoon").count() == 1
        assert page.get_by_role("button", name="Geen berichten meer naar dit apparaat").count() == 1
        assert_no_axe_violations(page)
        assert_keyboard_usable(page)
        page.goto(f"/app/{UTRECHT}/uitschrijven")
        assert page.get_by_text("uw organisatie blijft deelnemen met de andere").count() == 1
        assert_no_axe_violations(page)
        assert_keyboard_usable(page)
        page.get_by_label("Ja, verwijder mijn gegevens en beëindig mijn aanmelding").focus()
        page.keyboard.press("Space")
        page.get_by_role("button", name="Uitschrijven uit het panel").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/app/{UTRECHT}/tot-ziens?contact=1")
        assert page.get_by_text("Uw organisatie blijft deelnemen").count() == 1
        assert_no_axe_violations(page)
    finally:
        context.close()
