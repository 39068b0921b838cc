"""The whole loop through both apps, in Chromium: an editor signs in to the dashboard with the
keyboard, makes a poll from the veiligheidsgevoel template, chooses two wijken on the buurt map
(a click on each wijk's name, the reach counted again each time) and publishes them; a
resident who joined in the resident app gets it in the list and answers there (ten neighbours
answer over the JSON API, so the wijk has enough answers to show); the editor closes the poll,
sees the wijk's figures in the table and the buurt on the map, writes the feedback with a
measure and publishes it; the resident reads it in the app."""

from __future__ import annotations

from tests.browser.a11y import assert_no_axe_violations
from tests.browser.system import UTRECHT, System
from tests.browser.test_resident_loop import press, tab_to
from tests.browser.world import join, known_to_responses, neighbours_answer, until

BUURT, WIJKEN = "BU03440111", ("WK034401", "WK034402")
HOME = f"/app/{UTRECHT}/"


def poll_id_of(url: str) -> str:
    return url.split("/staff/peilingen/")[1].split("/")[0].split("?")[0]


def members_reached(system: System, wijken: tuple[str, ...]) -> int:
    """The reach route's count for residents of these wijken (none: the whole municipality),
    the figure the audience page should show."""
    query = {"kind": "areas", "area_codes": ",".join(wijken)} if wijken else {}
    answer = system.api.request(
        "GET",
        "/admin/v1/audience/reach",
        token=system.admin(UTRECHT),
        params={**query, "kinds": "resident"},
    )
    assert answer.status_code == 200, answer.text
    assert not answer.json()["suppressed"], answer.text  # 11 members in West at least
    return answer.json()["members"]


def test_staff_publish_resident_answers_staff_results_and_feedback_resident_reads(
    browser, system: System
):
    staff_context = browser.new_context(
        base_url=system.base, viewport={"width": 1280, "height": 900}
    )
    resident_context = browser.new_context(
        base_url=system.base, viewport={"width": 390, "height": 844}
    )
    staff = staff_context.new_page()
    resident = resident_context.new_page()
    try:
        # --- a resident joined the panel in the app (before the poll: it invites members) -----
        resident.goto(HOME)
        resident.fill("#f-invitation_code", system.letter_code(UTRECHT))
        resident.get_by_role("button", name="Verder").click()
        resident.select_option("#f-buurt_code", BUURT)
        resident.check("#f-consent")
        resident.get_by_role("button", name="Doe mee met het panel").click()
        resident.wait_for_url("**/welkom")

        # Ten neighbours joined too (over the JSON API): invited with the resident, they answer
        # later, so the wijk has enough answers of panel members to show.
        neighbours = [join(system, UTRECHT, BUURT) for _ in range(10)]

        # --- the editor signs in with the keyboard ------------------------------------------
        email, password = system.staff[UTRECHT]
        staff.goto("/staff/")
        tab_to(staff, id="f-email")
        staff.keyboard.type(email)
        tab_to(staff, id="f-password")
        staff.keyboard.type(password)
        press(staff, "Enter")
        staff.wait_for_url("**/staff/peilingen")

        # --- a poll from the template, to two wijken, published -----------------------------
        staff.get_by_role("link", name="Nieuwe peiling", exact=True).click()
        staff.get_by_label("Veilig in de buurt").check()
        staff.get_by_role("button", name="Concept maken").click()
        staff.wait_for_url("**/bewerken?nieuw=1")
        poll_id = poll_id_of(staff.url)
        # The audience on the map: a click on a wijk's name ticks the whole wijk, and the
        # map and the reach are counted again for each choice (htmx).
        staff.get_by_role("link", name="Kies de doelgroep op de kaart").click()
        staff.wait_for_url(f"**/staff/peilingen/{poll_id}/doelgroep")
        reach = staff.locator("#audience-reach .bp-reach__count")
        assert f"Bereik: {members_reached(system, ())} panelleden" in reach.inner_text()  # all
        for chosen, buurten in ((WIJKEN[:1], 11), (WIJKEN, 24)):  # West, then Noordwest too
            staff.locator(f'#audience-reach text[data-wijk-code="{chosen[-1]}"]').click()
            staff.locator(
                "#audience-reach svg.bp-map-svg > title", has_text=f"buurten: {buurten} van de"
            ).wait_for(state="attached")
            assert f"Bereik: {members_reached(system, chosen)} panelleden" in reach.inner_text()
        # What is saved is what the map shows: the two wijken, whole.
        ticked = staff.locator("input[name=area_codes]:checked")
        assert ticked.evaluate_all("boxes => boxes.map(b => b.value)") == list(WIJKEN)
        assert staff.locator("#f-audience-areas").is_checked()
        staff.get_by_role("button", name="Doelgroep opslaan").click()
        staff.get_by_text("De doelgroep is opgeslagen.").wait_for()
        staff.get_by_role("link", name="Publiceren", exact=True).click()
        staff.wait_for_url(f"**/staff/peilingen/{poll_id}/publiceren")
        assert "Bewoners van: Wijk 01 West, Wijk 02 Noordwest" in staff.inner_text("main")
        staff.get_by_role("button", name="Ja, publiceren").click()
        staff.get_by_text("De peiling is gepubliceerd.").wait_for()
        assert "Open" in staff.inner_text(".bp-details")
        published = system.api.request(
            "GET", f"/admin/v1/polls/{poll_id}", token=system.admin(UTRECHT)
        ).json()
        assert published["status"] == "open"
        assert published["audience"]["kind"] == "areas"
        assert published["audience"]["area_codes"] == list(WIJKEN)

        # --- the resident answers in the app ------------------------------------------------
        resident.goto(HOME + "peilingen")
        until(
            "the poll in the resident's list",
            lambda: (
                (resident.reload() or True)
                and resident.locator(f'a[href$="/peilingen/{poll_id}"]').count() > 0
            ),
        )
        known_to_responses(system, UTRECHT, poll_id)  # else intake may reject: unknown_poll
        link = resident.locator(f'a[href$="/peilingen/{poll_id}"]')
        assert link.inner_text() == "Veilig in de buurt"
        link.click()
        # The same answers as the neighbours: a different one would be a group of one, and
        # the figures that would reveal it are hidden (docs/suppression.md).
        resident.check("#q-veilig_buurt-4")
        resident.check("#q-cijfer_veiligheid-7")
        resident.check("#q-vaak_onveilig")
        resident.check("#q-oorzaken")  # shown: the answer above asks for it
        resident.check("#q-vermijden")
        resident.check("#q-ontwikkeling")
        resident.check("#q-inzet_gemeente-3")
        resident.select_option("#q-maatregelen", "1")
        resident.select_option("#q-maatregelen-toezicht", "2")
        resident.select_option("#q-maatregelen-jongeren", "3")
        resident.get_by_role("button", name="Verstuur mijn antwoorden").click()
        resident.wait_for_url("**/ontvangst/**")
        resident.locator('[data-status="recorded"]').wait_for(timeout=60_000)
        neighbours_answer(system, UTRECHT, poll_id, [BUURT], 10, values=(4,), sessions=neighbours)

        # --- the editor closes the poll and sees the results --------------------------------
        staff.get_by_role("link", name="Peiling sluiten").click()
        staff.get_by_role("button", name="Ja, sluiten").click()
        staff.get_by_text("De peiling is gesloten.").wait_for()
        staff.get_by_role("link", name="Resultaten").first.click()
        staff.select_option("#f-optie", "4")
        staff.get_by_role("button", name="Tonen").click()
        wijken = staff.inner_text(".bp-figure__table >> nth=1")
        west = next(line for line in wijken.splitlines() if line.startswith("Wijk 01 West"))
        assert west.split("\t")[1:2] == ["11"], west
        assert "100,0%" in west
        on_map = staff.locator("svg.bp-map-svg title", has_text="Welgelegen, Den Hommel: 100%")
        assert on_map.count() == 1
        assert staff.locator('svg.bp-map-svg path[fill="#08519c"]').count() >= 1

        # --- feedback with a measure, published ---------------------------------------------
        staff.goto(f"/staff/peilingen/{poll_id}/terugkoppeling")
        staff.fill("#f-title", "Meer licht in West")
        staff.fill("#f-heard", "Bewoners van West voelen zich veilig, maar willen meer licht.")
        staff.fill("#f-plan", "We zetten extra lantaarns langs het Lombokplein.")
        staff.check("#f-key_figures")
        staff.get_by_role("button", name="Concept opslaan").click()
        staff.get_by_text("Het concept is opgeslagen.").wait_for()
        staff.fill("#f-m-title", "Lantaarns op het Lombokplein")
        staff.fill("#f-m-owner", "Openbare Ruimte")
        staff.get_by_role("button", name="Maatregel toevoegen").click()
        staff.get_by_text("De maatregel is toegevoegd.").wait_for()

        def published() -> bool:
            staff.goto(f"/staff/peilingen/{poll_id}/terugkoppeling")
            button = staff.get_by_role("button", name="Terugkoppeling publiceren")
            if button.count():
                button.click()  # refused (409 page) until feedback has heard of the close
            return "De terugkoppeling is gepubliceerd." in staff.inner_text("main")

        until("the feedback published", published)
        assert "Reacties van bewoners" in staff.inner_text("main")
        assert_no_axe_violations(staff)  # published: its texts, reactions, measures' forms
        staff.get_by_role(
            "button", name="Status van “Lantaarns op het Lombokplein” wijzigen"
        ).wait_for()

        # --- the resident reads it ----------------------------------------------------------
        resident.goto(HOME + "terugkoppeling")
        resident.get_by_role("link", name="Meer licht in West").click()
        text = resident.inner_text("main")
        assert "We zetten extra lantaarns langs het Lombokplein." in text
        assert "Lantaarns op het Lombokplein" in text
    finally:
        staff_context.close()
        resident_context.close()
