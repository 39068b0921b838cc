"""The paper questionnaire pages (issue 14) at 390 px and 1280 px: an editor's print runs and
the printable forms, and the data-entry screen of the role invoerder — zero axe violations
(WCAG 2.1 A/AA), usable by keyboard, nothing to scroll sideways; the printed page shows the
forms and none of the dashboard's menus; a form keyed in by keyboard counts once, a second
entry and an unknown code are told on the page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tests.browser.a11y import (
    WIDTHS,
    assert_keyboard_usable,
    assert_no_axe_violations,
    assert_usable_zoomed,
)
from tests.browser.system import UTRECHT, System
from tests.browser.world import open_poll

CLERK = ("invoer@utrecht.example", "Papieren formulieren tellen ook mee")
BUURT = "BU03440111"


@pytest.fixture(scope="session")
def paper_world(system: System, databases: dict[str, str]) -> dict[str, Any]:
    """In Utrecht: an open poll, a print run of three forms for one buurt, and a data-entry
    clerk (role invoerder) with a password."""
    from services.panel import accounts

    admin = system.admin(UTRECHT)
    poll_id = open_poll(system, UTRECHT)
    run = system.api.request(
        "POST",
        f"/admin/v1/polls/{poll_id}/paper-runs",
        token=admin,
        json={"buurt_code": BUURT, "count": 3},
    )
    assert run.status_code == 201, run.text
    engine = sa.create_engine(databases["panel"])
    try:
        with Session(engine) as session, session.begin():
            accounts.create_staff(
                session,
                municipality_code=UTRECHT,
                email=CLERK[0],
                role="invoerder",
                password=CLERK[1],
                now=datetime.now(UTC),
                name="Invoer",
            )
    finally:
        engine.dispose()
    return {"poll": poll_id, "run": run.json()}


def sign_in(page: Any, email: str, password: str, lands_on: str) -> None:
    page.goto("/staff/")
    page.fill("#f-email", email)
    page.fill("#f-password", password)
    page.get_by_role("button", name="Inloggen").click()
    page.wait_for_url(f"**{lands_on}")


def check_page(page: Any, width: int, max_stops: int = 200) -> None:
    assert_no_axe_violations(page)
    if width == 1280:
        assert_keyboard_usable(page, max_stops=max_stops)
    else:
        assert_usable_zoomed(page)


@pytest.mark.parametrize("width", WIDTHS)
def test_print_runs_and_the_printable_forms(browser, system, paper_world, width):
    context = browser.new_context(base_url=system.base, viewport={"width": width, "height": 900})
    page = context.new_page()
    try:
        email, password = system.staff[UTRECHT]
        sign_in(page, email, password, "/staff/peilingen")
        poll = paper_world["poll"]
        assert page.goto(f"/staff/peilingen/{poll}/papier").status == 200
        check_page(page, width)
        assert page.goto(f"/staff/peilingen/{poll}/papier/afdrukken").status == 200
        check_page(page, width, max_stops=400)
        codes = [f["code"] for f in paper_world["run"]["forms"]]
        assert page.locator("article.bp-paper").count() >= len(codes)
        for code in codes:
            assert page.locator(".bp-paper__code", has_text=code).count() == 1
        assert "Alleen als u bij vraag 3 antwoordde" in page.inner_text("main")
        # Printed: the forms, each from a new page; no menus, no dashboard texts.
        page.emulate_media(media="print")
        assert not page.locator(".bp-nav").is_visible()
        assert not page.locator(".bp-paper-screen").is_visible()
        assert page.locator("article.bp-paper").first.is_visible()
        breaks = page.locator("article.bp-paper").first.evaluate(
            "el => getComputedStyle(el).breakAfter"
        )
        assert breaks == "page"
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_a_form_is_keyed_in_by_keyboard_once(browser, system, paper_world, width):
    context = browser.new_context(base_url=system.base, viewport={"width": width, "height": 900})
    page = context.new_page()
    poll = paper_world["poll"]
    code = paper_world["run"]["forms"][0 if width == WIDTHS[0] else 1]["code"]
    try:
        # The clerk lands on data entry, and sees nothing else.
        sign_in(page, *CLERK, "/staff/invoer")
        check_page(page, width)
        assert page.locator(".bp-nav__link").all_inner_texts() == ["Invoer"]
        assert page.goto(f"/staff/peilingen/{poll}").status == 403

        page.goto("/staff/invoer")
        page.locator(f"a[href='/staff/invoer/{poll}']").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/staff/invoer/{poll}")
        check_page(page, width)

        # An unknown code: said on the page, at the field.
        page.locator("#f-paper_code").focus()
        page.keyboard.type("AAAA-BBBB-CCCC")
        page.keyboard.press("Enter")
        page.locator(".bp-error-summary").wait_for()
        assert "staat niet op een van onze papieren formulieren" in page.inner_text(
            ".bp-error-summary"
        )
        assert_no_axe_violations(page)

        # The code from the form, typed as people type it, then the answers.
        page.fill("#f-paper_code", "")
        page.locator("#f-paper_code").focus()
        page.keyboard.type(code.replace("-", " ").lower())
        page.keyboard.press("Enter")
        page.locator("#question-veilig_buurt").wait_for()
        check_page(page, width, max_stops=400)
        choose_by_keyboard(page, "q-veilig_buurt", 4)
        choose_by_keyboard(page, "q-cijfer_veiligheid", 7)
        choose_by_keyboard(page, "q-vaak_onveilig", 2)
        page.locator("input[name='q.oorzaken']").first.focus()
        page.keyboard.press("Space")
        for question in ("q-vermijden", "q-ontwikkeling"):
            choose_by_keyboard(page, question, 1)
        choose_by_keyboard(page, "q-inzet_gemeente", 3)
        for place, select in enumerate(page.locator("select[name^='q.maatregelen.']").all()[:3]):
            select.select_option(str(place + 1))
        choose_by_keyboard(page, "f-age_band", 4)
        page.get_by_role("button", name="Controleren").focus()
        page.keyboard.press("Enter")

        # The review: what was keyed in, in words; nothing counted yet.
        page.locator(".bp-entry-review").wait_for()
        main = page.inner_text("main")
        assert "Na bevestigen telt het antwoord mee en kan het niet meer worden gewijzigd." in main
        assert "65 jaar of ouder" in main and "Niet ingevuld" in main
        check_page(page, width)

        # Back to the form: every value is still there; then the review again.
        page.get_by_role("button", name="Terug naar het formulier").focus()
        page.keyboard.press("Enter")
        page.locator("#question-veilig_buurt").wait_for()
        assert page.locator("#f-age_band-65_plus").is_checked()
        assert page.locator("input[name='q.oorzaken']").first.is_checked()
        page.get_by_role("button", name="Controleren").focus()
        page.keyboard.press("Enter")
        page.locator(".bp-entry-review").wait_for()

        # Confirmed: counted.
        page.get_by_role("button", name="Bevestigen en tellen").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/staff/invoer/{poll}?ingevoerd=*")
        assert f"Formulier {code} is ingevoerd" in page.inner_text("main")
        check_page(page, width)

        # The same form again: refused, saying when it was keyed in.
        page.fill("#f-paper_code", code)
        page.keyboard.press("Enter")
        page.locator(".bp-error-summary").wait_for()
        assert f"Formulier {code} is al ingevoerd" in page.inner_text(".bp-error-summary")
        assert_no_axe_violations(page)
    finally:
        context.close()


def choose_by_keyboard(page: Any, anchor: str, steps: int) -> None:
    """A radio group as a keyboard user answers it: focus its first option, Space to choose it,
    then the arrow key ``steps - 1`` times."""
    page.locator(f"#{anchor}").focus()
    page.keyboard.press("Space")
    for _ in range(steps - 1):
        page.keyboard.press("ArrowDown")
