"""Answering without the app (issue 14): a participant who signed up by e-mail opens the
personal link from the invitation as the fake mail server caught it, answers in the browser
by keyboard, and the pages pass axe — the revocation and asking for a new link too; the link's
token is in no log line of any process."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.a11y import assert_keyboard_usable, assert_no_axe_violations
from tests.browser.system import UTRECHT, System
from tests.browser.test_resident_loop import choose_radio, press, tab_to
from tests.browser.world import open_poll, until

LINK = re.compile(r"(http://\S+/app/GM0344/link\?t=(\S+))")
REVOKE = re.compile(r"(http://\S+/app/GM0344/link/intrekken\?t=\S+)")


def signed_up_by_email(system: System, address: str) -> dict[str, Any]:
    started = system.api.request(
        "POST",
        "/api/v1/signup",
        json={"municipality_code": UTRECHT, "email": address, "language": "nl"},
    )
    assert started.status_code == 202, started.text
    mail = until("the verification e-mail", lambda: system.smtp.to(address))
    code = re.search(r"\b(\d{6})\b", mail[0].get_body(("plain",)).get_content()).group(1)
    joined = system.api.request(
        "POST",
        "/api/v1/signup/verify",
        json={
            "municipality_code": UTRECHT,
            "email": address,
            "code": code,
            "buurt_code": "BU03440111",
            "birth_year": 1951,
            "sex": "vrouw",
            "consent": True,
        },
    )
    assert joined.status_code == 201, joined.text
    token = joined.json()["access_token"]
    # Messages by e-mail only, once notify knows the participant (404 until then).
    until(
        "notify knowing the participant",
        lambda: (
            system.api.request(
                "PATCH",
                "/api/v1/notification-preferences",
                token=token,
                json={"channel_order": ["email"]},
            ).status_code
            == 200
        ),
    )
    return joined.json()


def invitation_text(system: System, address: str) -> str:
    mail = until(
        "the invitation e-mail with its personal link",
        lambda: [
            m for m in system.smtp.to(address) if "/link?t=" in m.get_body(("plain",)).get_content()
        ],
    )
    return mail[0].get_body(("plain",)).get_content()


def test_a_participant_answers_from_the_link_in_the_invitation_e_mail(browser, system: System):
    address = "zonder.app@example.nl"
    signed_up_by_email(system, address)
    open_poll(system, UTRECHT)
    text = invitation_text(system, address)
    assert "één keer namens u antwoorden" in text
    url, token = LINK.search(text).groups()
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_url("**/app/GM0344/link")  # the token exchanged and gone from the address
        assert "t=" not in page.url
        assert page.inner_text("h1") == "Veilig in de buurt"
        assert_no_axe_violations(page)
        assert_keyboard_usable(page)

        page.goto(page.url)  # from the top again, answering by keyboard
        choose_radio(page, "q-veilig_buurt", 3)
        choose_radio(page, "q-cijfer_veiligheid", 7)
        choose_radio(page, "q-vaak_onveilig", 2)  # (Bijna) nooit: no follow-up question
        choose_radio(page, "q-vermijden", 2)
        choose_radio(page, "q-ontwikkeling", 1)
        choose_radio(page, "q-inzet_gemeente", 1)
        tab_to(page, id="q-maatregelen")  # ranking by selects: verlichting 1, drugs 2, camera 3
        press(page, "ArrowDown")
        tab_to(page, id="q-maatregelen-drugs")
        press(page, "ArrowDown", "ArrowDown")
        tab_to(page, id="q-maatregelen-camera")
        press(page, "ArrowDown", "ArrowDown", "ArrowDown")
        tab_to(page, text="Verstuur mijn antwoorden")
        press(page, "Enter")
        page.wait_for_url("**/app/GM0344/link")
        page.locator('[data-status="recorded"]').wait_for(timeout=60_000)
        assert_no_axe_violations(page)

        # The link again (a forwarded e-mail): answered, no form.
        other = browser.new_context()
        again = other.new_page()
        until(
            "the link to say it was answered",
            lambda: "Al beantwoord" in (again.goto(url) and again.inner_text("main")),
        )
        assert again.locator("form.bp-poll").count() == 0
        assert_no_axe_violations(again)
        other.close()
    finally:
        context.close()
    assert_token_in_no_log(system, token)


def test_a_participant_revokes_the_link_and_it_then_fails_with_a_clear_page(
    browser, system: System
):
    address = "intrekken@example.nl"
    signed_up_by_email(system, address)
    open_poll(system, UTRECHT)
    text = invitation_text(system, address)
    url, token = LINK.search(text).groups()
    revoke = REVOKE.search(text).group(1)
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(revoke)
        page.wait_for_url("**/app/GM0344/link/intrekken")
        assert_no_axe_violations(page)
        assert_keyboard_usable(page)
        page.get_by_role("button", name="Link intrekken").click()
        page.get_by_role("heading", name="De link is ingetrokken").wait_for()
        assert_no_axe_violations(page)
        response = page.goto(url)
        assert response.status == 410
        assert page.inner_text("h1") == "Deze link is ingetrokken"
        assert_no_axe_violations(page)

        # Revoked by mistake: a new link, asked for by keyboard, arrives by e-mail only.
        tab_to(page, text="Nieuwe link aanvragen")
        press(page, "Enter")
        page.wait_for_url("**/app/GM0344/link/nieuw")
        assert_no_axe_violations(page)
        assert_keyboard_usable(page)
        page.goto(page.url)  # from the top again
        tab_to(page, text="Nieuwe link aanvragen")
        press(page, "Enter")
        page.get_by_role("heading", name="Aanvraag ontvangen").wait_for()
        assert "sturen we een nieuwe link naar het e-mailadres" in page.inner_text("main")
        assert_no_axe_violations(page)
        new = until(
            "the e-mail with the new link",
            lambda: [t for t in links_sent(system, address) if t != token],
        )[0]
        assert new not in page.content()
        page.goto(f"{url.split('?')[0]}?t={new}")
        page.wait_for_url("**/app/GM0344/link")
        assert page.inner_text("h1") == "Veilig in de buurt"
    finally:
        context.close()
    assert_token_in_no_log(system, token)
    assert_token_in_no_log(system, new)


def links_sent(system: System, address: str) -> list[str]:
    """The personal link's token of every e-mail to this address that has one."""
    texts = [m.get_body(("plain",)).get_content() for m in system.smtp.to(address)]
    return [found.group(2) for found in map(LINK.search, texts) if found]


def assert_token_in_no_log(system: System, token: str) -> None:
    """Every process's log (JSON lines on stdout: the gateway's included) so far."""
    logs = list(system.logs.glob("*.log"))
    assert logs
    for log in logs:
        content = log.read_text(errors="replace")
        assert token not in content, log.name
        assert token.split(".")[2] not in content, log.name  # not even its signature
