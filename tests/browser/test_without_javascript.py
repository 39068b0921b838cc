"""The resident app without JavaScript: joining, a poll with its conditional question shown
with the condition in words, the receipt, feedback — every page but messages and the maps."""

from __future__ import annotations

from tests.browser.system import UTRECHT, System
from tests.browser.world import open_poll, until


def test_a_resident_without_javascript_joins_and_answers(browser, system: System):
    context = browser.new_context(
        base_url=system.base, viewport={"width": 390, "height": 844}, java_script_enabled=False
    )
    page = context.new_page()
    try:
        poll_id = open_poll(system, UTRECHT, {"kind": "areas", "area_codes": ["WK034401"]})
        page.goto(f"/app/{UTRECHT}/")
        page.fill("#f-invitation_code", system.letter_code(UTRECHT))
        page.get_by_role("button", name="Verder").click()
        assert not page.is_visible("text=Gebruik mijn locatie")  # the map picker needs JS
        page.select_option("#f-buurt_code", "BU03440112")
        page.check("#f-consent")
        page.get_by_role("button", name="Doe mee met het panel").click()
        page.wait_for_url("**/welkom")
        assert "Voor berichten is JavaScript in uw browser nodig." in page.inner_text("main")
        # The gateway learns of a published poll from its event: until then the page is a 404.
        until(
            "the resident app to know the published poll",
            lambda: page.goto(f"/app/{UTRECHT}/peilingen/{poll_id}").status == 200,
        )
        # The conditional question is there, with its condition in words.
        assert page.is_visible("#question-oorzaken")
        assert "Alleen als u bij vraag 3 hebt geantwoord: Vaak of Soms." in page.inner_text(
            "#question-oorzaken"
        )
        page.check("#q-veilig_buurt-4")
        page.check("#q-cijfer_veiligheid-8")
        page.check("#q-vaak_onveilig-bijna_nooit")
        page.check("#q-oorzaken")  # answered although it does not apply: dropped, not refused
        page.check("#q-vermijden")
        page.check("#q-ontwikkeling-gelijk")
        page.check("#q-inzet_gemeente-dont_know")
        page.select_option("#q-maatregelen", "1")
        page.select_option("#q-maatregelen-toezicht", "2")
        page.select_option("#q-maatregelen-onderhoud", "3")
        page.get_by_role("button", name="Verstuur mijn antwoorden").click()
        page.wait_for_url("**/ontvangst/**")
        for _ in range(60):  # the refresh link is what a page without JS offers
            if page.get_attribute("#receipt", "data-status") == "recorded":
                break
            page.wait_for_timeout(500)
            page.get_by_role("link", name="Opnieuw bekijken").click()
        assert "Verwerkt." in page.inner_text("#receipt")
    finally:
        context.close()
