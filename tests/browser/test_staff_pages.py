"""Every page of the staff dashboard, for two municipalities with different colours, at 390 px
and 1280 px wide: zero axe violations (WCAG 2.1 A/AA), usable by keyboard (skip link first,
focus visible on every stop, in reading order), nothing to scroll sideways at 390 px. The
screenshots in docs/screenshots/staff-*.png are made here."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.a11y import (
    WIDTHS,
    assert_keyboard_usable,
    assert_no_axe_violations,
    assert_usable_zoomed,
)
from tests.browser.conftest import SCREENSHOTS
from tests.browser.system import AMERSFOORT, UTRECHT, System
from tests.browser.test_resident_loop import press, tab_to
from tests.browser.world import FEEDBACK, neighbours_answer, open_poll, until


def wijk_of(code: str) -> str:
    return f"WK{code[2:]}01"


def buurten_of(code: str) -> list[str]:
    """Two buurten of the wijk, 11 answers each: every figure of the wijk can be shown (with
    fewer in a buurt its figures are hidden, and then the wijk's too: see docs/suppression.md)."""
    return [f"BU{code[2:]}01{n}" for n in ("11", "12")]


@pytest.fixture(scope="session")
def staff_world(system: System) -> dict[str, dict[str, Any]]:
    """Per municipality: a draft, an open poll, and a closed poll to one wijk that 22
    residents answered, with draft feedback and a measure."""
    world = {}
    for code in (UTRECHT, AMERSFOORT):
        admin = system.admin(code)
        draft = system.api.request(
            "POST", "/admin/v1/polls", token=admin, json={"template_id": "groen"}
        ).json()["id"]
        opened = open_poll(system, code)
        answered = open_poll(system, code, {"kind": "areas", "area_codes": [wijk_of(code)]})
        neighbours_answer(system, code, answered, buurten_of(code), 22)
        closed = system.api.request("POST", f"/admin/v1/polls/{answered}/close", token=admin)
        assert closed.status_code == 200, closed.text
        path = f"/admin/v1/polls/{answered}/feedback"
        until(
            "feedback to know the poll",
            lambda path=path, admin=admin: (
                system.api.request("PUT", path, token=admin, json=FEEDBACK).status_code == 200
            ),
        )
        measure = system.api.request(
            "POST",
            f"{path}/measures",
            token=admin,
            json={"title": "Lantaarns langs het fietspad", "owner": "Openbare Ruimte"},
        )
        assert measure.status_code == 201, measure.text
        world[code] = {"code": code, "draft": draft, "open": opened, "closed": answered}
    return world


def sign_in(page: Any, system: System, code: str) -> None:
    email, password = system.staff[code]
    page.goto("/staff/")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url("**/staff/peilingen")


def staff_pages(mine: dict[str, Any]) -> list[str]:
    polls = "/staff/peilingen"
    return [
        polls,
        polls + "/nieuw",
        f"{polls}/{mine['draft']}",
        f"{polls}/{mine['draft']}/bewerken",
        f"{polls}/{mine['draft']}/publiceren",
        f"{polls}/{mine['open']}",
        f"{polls}/{mine['open']}/sluiten",
        f"{polls}/{mine['closed']}",
        f"{polls}/{mine['closed']}/resultaten",
        f"{polls}/{mine['closed']}/resultaten?vraag=vaak_onveilig&respondents=panel",
        f"{polls}/{mine['closed']}/resultaten?vraag=waarom_plek",
        f"{polls}/{mine['closed']}/verloop",
        f"{polls}/{mine['closed']}/terugkoppeling",
        f"{polls}/{mine['open']}/resultaten",
        f"{polls}/{mine['draft']}/doelgroep",
        f"{polls}/{mine['open']}/doelgroep",
        "/staff/panel",
        "/staff/panel?gebied=" + wijk_of(mine["code"]),
        "/staff/veiligheid",
        "/staff/veiligheid?gebied=" + wijk_of(mine["code"]),
    ]


@pytest.mark.parametrize("code", [UTRECHT, AMERSFOORT])
@pytest.mark.parametrize("width", WIDTHS)
def test_every_staff_page_passes_axe_and_the_keyboard(browser, system, staff_world, code, width):
    context = browser.new_context(base_url=system.base, viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        page.goto("/staff/")
        assert_no_axe_violations(page)
        if width == 1280:
            assert_keyboard_usable(page)
        page.get_by_role("button", name="Inloggen").click()  # empty: the error summary
        assert "Er is een probleem" in page.inner_text(".bp-error-summary")
        assert_no_axe_violations(page)
        sign_in(page, system, code)
        for path in staff_pages(staff_world[code]):
            response = page.goto(path)
            assert response.status == 200, path
            assert_no_axe_violations(page)
            if width == 1280:
                assert_keyboard_usable(page, max_stops=400)
            else:
                assert_usable_zoomed(page)
        # Results with figures: the wijk of the 22 is shown, beside the chart and on the map.
        page.goto(f"/staff/peilingen/{staff_world[code]['closed']}/resultaten")
        table = page.inner_text(".bp-figure__table >> nth=1")
        assert "\t22\t" in table, table
        assert page.locator("svg.bp-map-svg path").count() > 10
        if code == UTRECHT and width == 1280:
            screenshots(page, staff_world[code])
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_the_preview_and_the_audience_map_work_with_javascript(browser, system, staff_world, width):
    """With JavaScript: choosing a template shows it as residents will see it (htmx), editing a
    draft's question changes the preview without saving, a click on a buurt of the map ticks
    it in the list and the reach is counted again, a click on a wijk's name ticks the whole
    wijk, a click on one of its buurten then leaves that buurt out, and the list works by
    keyboard; each state passes axe."""
    code = UTRECHT
    context = browser.new_context(base_url=system.base, viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        sign_in(page, system, code)
        page.goto("/staff/peilingen/nieuw")
        page.locator("input[name=template_id][value=veiligheidsgevoel]").check()
        preview = page.locator("#poll-preview .bp-question")
        preview.first.wait_for()
        assert preview.count() > 3
        assert_no_axe_violations(page)

        draft = staff_world[code]["draft"]
        page.goto(f"/staff/peilingen/{draft}/bewerken")
        page.fill("#q0-text", "Hoe veilig voelt u zich in uw eigen straat?")
        page.locator("#poll-preview", has_text="in uw eigen straat").wait_for()
        assert_no_axe_violations(page)

        page.goto(f"/staff/peilingen/{draft}/doelgroep")
        wijk, (buurt, neighbour) = wijk_of(code), buurten_of(code)

        def counted(chosen: int) -> None:
            """Wait for the map htmx brings for a choice of this many buurten (each step
            below a different number: no earlier map can pass for it)."""
            page.locator(
                "#audience-reach svg.bp-map-svg > title", has_text=f"buurten: {chosen} van de"
            ).wait_for(state="attached")

        # A click on the buurt (dispatched: a buurt is a few pixels wide at 390 px).
        page.locator(f"path[data-code={buurt}]").dispatch_event("click")
        assert page.locator(f"#a-{buurt}").is_checked()
        assert page.locator("#f-audience-areas").is_checked()
        counted(1)
        page.locator(f'#audience-reach path[data-code={buurt}][fill="#1f4e79"]').wait_for()
        # A click on the wijk's name ticks the whole wijk (its 11 buurten; the buurt ticked
        # above is part of it now); a click on one of its buurten then takes that one out.
        page.locator(f'#audience-reach text[data-wijk-code="{wijk}"]').click()
        counted(11)
        assert page.locator(f"#a-{wijk}").is_checked()
        assert not page.locator(f"#a-{buurt}").is_checked()
        if width == 1280:
            page.screenshot(path=str(SCREENSHOTS / "staff-audience.png"))
        page.locator(f"#audience-reach path[data-code={buurt}]").dispatch_event("click")
        counted(10)
        assert page.locator(f'#audience-reach path[data-code={buurt}][fill="#f3f2f1"]').count()
        assert not page.locator(f"#a-{wijk}").is_checked()
        assert not page.locator(f"#a-{buurt}").is_checked()
        assert page.locator(f"#a-{neighbour}").is_checked()
        assert page.locator(f'input[data-wijk="{wijk}"]:checked').count() == 10
        # The list by keyboard alone: Tab to the wijk's box, Space ticks it, the map follows.
        page.focus("#f-sample_size")
        tab_to(page, id=f"a-{wijk}")
        press(page, "Space")
        assert page.locator(f"#a-{wijk}").is_checked()
        counted(11)
        assert page.locator("#audience-reach").inner_text().count("Bereik") == 1
        assert_no_axe_violations(page)
    finally:
        context.close()


def screenshots(page: Any, mine: dict[str, Any]) -> None:
    """docs/screenshots/staff-*.png: the list, a draft's form, results and feedback."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    polls = "/staff/peilingen"
    for path, name, at in [
        (polls, "staff-polls.png", None),
        (f"{polls}/{mine['draft']}/bewerken", "staff-edit.png", None),
        (f"{polls}/{mine['closed']}/resultaten?optie=4", "staff-results.png", "#question-title"),
        (f"{polls}/{mine['closed']}/resultaten?optie=4", "staff-map.png", ".bp-map-svg"),
        (f"{polls}/{mine['closed']}/terugkoppeling", "staff-feedback.png", None),
        ("/staff/panel", "staff-composition.png", None),
    ]:
        page.goto(path)
        if at:
            page.locator(at).first.evaluate("el => el.scrollIntoView()")
        page.screenshot(path=str(SCREENSHOTS / name))
