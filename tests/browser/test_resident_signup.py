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
