"""Joining without a letter: the e-mail sign-up in the app, with the code from the e-mail
(read at the SMTP sink), and an English-speaking resident's app."""

from __future__ import annotations

import re

from tests.browser.system import UTRECHT, System


def test_a_resident_without_a_letter_joins_by_e_mail(browser, system: System):
    context = browser.new_context(base_url=system.base, viewport={"width": 390, "height": 844})
    page = context.new_page()
    address = "bewoner.zonder.brief@example.nl"
    try:
        page.goto(f"/app/{UTRECHT}/")
        page.get_by_role("link", name="Aanmelden met uw e-mailadres").click()
        page.fill("#f-email", "geen-adres")
        page.get_by_role("button", name="Stuur mij een code").click()
        assert "Vul een e-mailadres in" in page.inner_text(".bp-error-summary")
        page.fill("#f-email", address)
        page.get_by_role("button", name="Stuur mij een code").click()
        page.get_by_text(f"Wij hebben een code gestuurd naar {address}.").wait_for()
        mail = system.smtp.to(address)
        assert len(mail) == 1
        text = mail[0].get_body(("plain",)).get_content()
        code = re.search(r"\b(\d{6})\b", text).group(1)
        page.fill("#f-code", code)
        page.select_option("#f-buurt_code", "BU03440111")
        page.check("#f-consent")
        page.get_by_role("button", name="Doe mee met het panel").click()
        page.wait_for_url("**/welkom")
        page.get_by_role("link", name="Mijn gegevens").click()
        assert address in page.inner_text("main")
        page.get_by_role("link", name="English").click()
        assert page.inner_text("h1") == "My details"
        assert page.get_attribute("html", "lang") == "en"
    finally:
        context.close()


def test_a_business_joins_with_its_letter_code_and_kvk_number_by_keyboard(browser, system: System):
    """Issue 14: the letter's code carries the kind; a KvK number of 7 digits is refused at
    its field (the error summary links to it), 8 digits join. Axe on the form in both states."""
    from tests.browser.a11y import assert_no_axe_violations

    batch = system.api.request(
        "POST",
        "/admin/v1/invitation-batches",
        token=system.admin(UTRECHT),
        json={"per_wijk": {"WK034406": 1}, "kind": "ondernemer"},
    )
    assert batch.status_code == 201, batch.text
    code = batch.json()["csv"].splitlines()[1].split(",")[0]
    context = browser.new_context(base_url=system.base, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        page.goto(f"/app/{UTRECHT}/")
        page.fill("#f-invitation_code", code)
        page.press("#f-invitation_code", "Enter")
        page.wait_for_url("**/aanmelden")
        page.check("#f-kind-ondernemer")
        page.fill("#f-kvk_number", "1234567")
        page.fill("#f-organisation_name", "Bakkerij De Dom")
        page.select_option("#f-buurt_code", "BU03440613")
        page.check("#f-consent")
        page.get_by_role("button", name="Doe mee met het panel").click()
        summary = page.inner_text(".bp-error-summary")
        assert "precies 8 cijfers" in summary
        assert_no_axe_violations(page)
        page.get_by_role("link", name=re.compile("precies 8 cijfers")).press("Enter")
        assert page.evaluate("document.activeElement.id") == "f-kvk_number"
        page.fill("#f-kvk_number", "12345678")
        page.check("#f-consent")
        page.get_by_role("button", name="Doe mee met het panel").click()
        page.wait_for_url("**/welkom")
        assert_no_axe_violations(page)
    finally:
        context.close()
