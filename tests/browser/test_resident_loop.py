"""The resident's side of the loop, in Chromium, as a person does it: join with a letter code,
turn on messages (a real service worker; only ``PushManager.subscribe`` is stubbed, with the
fake push service's endpoint and keys), get the invitation that notify really sent — encrypted,
decrypted at the push service, delivered to the worker by DevTools — open the notification,
answer every question type with the keyboard only (a draft survives a reload), see "recorded",
read the published feedback and react, and leave the panel. The staff's half is done over the
JSON API here."""

from __future__ import annotations

import json
from typing import Any

from tests.browser.system import UTRECHT, System
from tests.browser.world import open_poll, publish_feedback, until

BUURT, WIJK = "BU03440111", "WK034401"
HOME = {"latitude": 52.083143, "longitude": 5.090143}  # in Welgelegen, Den Hommel (BUURT)
SCOPE = f"/app/{UTRECHT}/"

STUB_PUSH = """(() => {
  const subscription = %s;
  let subscribed = false;
  const made = {
    endpoint: subscription.endpoint, expirationTime: null, options: { userVisibleOnly: true },
    toJSON() { return subscription; },
    unsubscribe() { subscribed = false; return Promise.resolve(true); },
  };
  if (window.PushManager) {
    PushManager.prototype.subscribe = function () {
      subscribed = true;
      return Promise.resolve(made);
    };
    PushManager.prototype.getSubscription = function () {
      return Promise.resolve(subscribed ? made : null);
    };
  }
})();"""

ACTIVE = """() => {
  const el = document.activeElement;
  return el ? { id: el.id, text: (el.innerText || '').trim(), tag: el.tagName } : null;
}"""


def tab_to(page: Any, *, id: str | None = None, text: str | None = None, limit: int = 250):
    """Press Tab until the focus is on the element with this id (or button text): the element is
    reachable by keyboard, in document order."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        active = page.evaluate(ACTIVE)
        if active and ((id and active["id"] == id) or (text and active["text"] == text)):
            return
    raise AssertionError(f"Tab never reached {id or text}")


def press(page: Any, *keys: str) -> None:
    for key in keys:
        page.keyboard.press(key)


def choose_radio(page: Any, first_id: str, steps: int) -> None:
    """A radio group by keyboard: Space checks the first option, each ArrowDown the next."""
    tab_to(page, id=first_id)
    press(page, "Space", *["ArrowDown"] * steps)


def cookie(context: Any, name: str) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == name)


def registration_id(page: Any, events: list[dict[str, Any]], scope_url: str) -> str:
    """The id DevTools knows the app's service worker registration by (from the events
    ServiceWorker.enable sends; the sync API delivers events while it waits on the page)."""
    for _ in range(100):
        for event in events:
            for registration in event["registrations"]:
                if registration["scopeURL"] == scope_url and not registration["isDeleted"]:
                    return registration["registrationId"]
        page.wait_for_timeout(200)
    raise AssertionError(f"no registration for {scope_url} in {events}")


def test_a_resident_joins_gets_the_invitation_answers_with_the_keyboard_reacts_and_leaves(
    browser, system: System
):
    api = system.api
    vapid = api.request("GET", "/api/v1/push/vapid-public-key").json()["application_server_key"]
    subscription = system.push.subscribe(vapid)
    context = browser.new_context(
        base_url=system.base,
        viewport={"width": 390, "height": 844},
        permissions=["notifications", "geolocation"],
        geolocation=HOME,
    )
    context.add_init_script(STUB_PUSH % json.dumps(subscription))
    page = context.new_page()
    try:
        # --- join with the letter code ------------------------------------------------------
        page.goto(SCOPE)
        tab_to(page, id="f-invitation_code")
        page.keyboard.type(system.letter_code(UTRECHT, WIJK))
        press(page, "Enter")
        page.wait_for_url("**/aanmelden")
        tab_to(page, text="Gebruik mijn locatie")  # "use my location" → a buurt to confirm
        press(page, "Enter")
        page.get_by_text("Uw locatie ligt in buurt Welgelegen, Den Hommel.").wait_for()
        page.get_by_role("button", name="Ja, dit is mijn buurt").click()
        assert page.input_value("#f-buurt_code") == BUURT
        page.select_option("#f-birth_year", "1958")
        page.check("#f-sex")
        page.check("#f-consent")
        page.get_by_role("button", name="Doe mee met het panel").click()
        page.wait_for_url("**/welkom")
        assert "U doet mee." in page.inner_text("main")

        # --- turn on messages through the service worker ------------------------------------
        tab_to(page, text="Berichten aanzetten")
        press(page, "Enter")
        page.get_by_text("Berichten staan aan op dit apparaat.").wait_for()
        access = cookie(context, "bp_resident_access")
        devices = api.request("GET", "/api/v1/devices", token=access).json()
        assert [d["channel"] for d in devices] == ["webpush"]

        # --- notification preferences: quiet hours, refused when wrong, then the defaults ----
        page.goto(SCOPE + "meldingen")
        assert "Browser (pushberichten)" in page.inner_text("main")
        page.fill("#f-quiet_hours", "25:00")
        page.get_by_role("button", name="Opslaan").click()
        assert "Er is een probleem" in page.inner_text(".bp-error-summary")
        page.fill("#f-quiet_hours", "22:30")
        page.fill("#f-quiet-end", "07:00")
        page.get_by_role("button", name="Opslaan").click()
        page.get_by_text("Uw keuzes zijn opgeslagen.").wait_for()
        page.uncheck("#f-quiet")  # back to the municipality's (none here: tests run at night)
        page.get_by_role("button", name="Opslaan").click()
        page.get_by_text("Uw keuzes zijn opgeslagen.").wait_for()

        # --- the municipality publishes a poll to the resident's wijk -----------------------
        poll_id = open_poll(system, UTRECHT, {"kind": "areas", "area_codes": [WIJK]})
        invitation = until(
            "the invitation at the push service",
            lambda: next(
                (
                    d
                    for d in system.push.deliveries_for(subscription["endpoint"])
                    if json.loads(d.payload).get("poll_id") == poll_id
                ),
                None,
            ),
        )
        cdp = context.new_cdp_session(page)
        events: list[dict[str, Any]] = []
        cdp.on("ServiceWorker.workerRegistrationUpdated", lambda event: events.append(event))
        cdp.send("ServiceWorker.enable")
        cdp.send(
            "ServiceWorker.deliverPushMessage",
            {
                "origin": system.base,
                "registrationId": registration_id(page, events, system.base + SCOPE),
                "data": invitation.payload.decode(),
            },
        )
        title = json.loads(invitation.payload)["title"]
        shown = until(
            "the notification",
            lambda: page.evaluate(
                "scope => navigator.serviceWorker.getRegistration(scope)"
                ".then(r => r.getNotifications()).then(ns => ns.map(n => n.title))",
                SCOPE,
            ),
        )
        assert shown == [title]

        # --- open the notification: the worker's own click handler opens the poll -----------
        worker = context.service_workers[0]
        worker.evaluate(
            "() => self.registration.getNotifications().then(ns => self.dispatchEvent("
            "new NotificationEvent('notificationclick', { notification: ns[0] })))"
        )
        page.wait_for_url(f"**/peilingen/{poll_id}")

        # --- every question type, keyboard only ----------------------------------------------
        assert not page.is_visible("#question-oorzaken")  # conditional: not yet
        choose_radio(page, "q-veilig_buurt", 3)  # likert: Veilig (4)
        choose_radio(page, "q-cijfer_veiligheid", 7)  # 0–10: 7
        choose_radio(page, "q-vaak_onveilig", 1)  # single: Soms
        assert page.is_visible("#question-oorzaken")  # appears as answered
        page.reload()  # the draft stays on the device
        assert page.is_checked("#q-veilig_buurt-4") and page.is_checked("#q-vaak_onveilig-soms")
        assert page.is_visible("[data-draft-notice]")
        tab_to(page, id="q-oorzaken")  # multiple: two causes
        press(page, "Space")
        tab_to(page, id="q-oorzaken-verkeer")
        press(page, "Space")
        choose_radio(page, "q-vermijden", 0)  # Vaak
        choose_radio(page, "q-ontwikkeling", 1)  # Gelijk gebleven
        tab_to(page, id="q-onveilige_plek")  # location, typed (the map is for pointers)
        page.keyboard.type("52.0907")
        tab_to(page, id="q-onveilige_plek-lon")
        page.keyboard.type("5.1214")
        tab_to(page, id="q-waarom_plek")  # open
        page.keyboard.type("Het pad langs het water is ’s avonds donker.")
        choose_radio(page, "q-inzet_gemeente", 1)  # Mee oneens (2)
        tab_to(page, id="q-maatregelen")  # ranking by selects: verlichting 1, drugs 2, camera 3
        press(page, "ArrowDown")
        tab_to(page, id="q-maatregelen-drugs")
        press(page, "ArrowDown", "ArrowDown")
        tab_to(page, id="q-maatregelen-camera")
        press(page, "ArrowDown", "ArrowDown", "ArrowDown")
        tab_to(page, id="q-tips")
        page.keyboard.type("Dank voor het vragen.")
        tab_to(page, text="Verstuur mijn antwoorden")
        press(page, "Enter")

        # --- the receipt: accepted, then recorded --------------------------------------------
        page.wait_for_url("**/ontvangst/**")
        page.locator('[data-status="recorded"]').wait_for(timeout=60_000)
        assert "Verwerkt." in page.inner_text("#receipt")
        assert page.evaluate(f"() => localStorage.getItem('bp-draft:{poll_id}')") is None

        # --- feedback: read it and react -----------------------------------------------------
        feedback_id = publish_feedback(system, UTRECHT, poll_id)
        until(
            "the feedback notice at the push service",
            lambda: any(
                json.loads(d.payload).get("type") == "feedback"
                for d in system.push.deliveries_for(subscription["endpoint"])
            ),
        )
        page.goto(SCOPE + "terugkoppeling")
        page.get_by_role("link", name="Meer licht op de fietsroutes").first.click()
        page.wait_for_url(f"**/terugkoppeling/{feedback_id}")
        assert "Lantaarns langs de Vleutenseweg" in page.inner_text("main")
        page.check("#f-useful")
        page.fill("#f-comment", "Fijn dat er iets gebeurt.")
        page.get_by_role("button", name="Verstuur mijn reactie").click()
        page.get_by_text("Bedankt voor uw reactie.").wait_for()
        page.reload()
        assert page.is_checked("#f-useful")

        # --- leave the panel -----------------------------------------------------------------
        page.goto(SCOPE + "profiel")
        page.evaluate("() => localStorage.setItem('bp-draft:another-poll', '[]')")
        page.get_by_role("link", name="Uitschrijven en mijn gegevens verwijderen").click()
        page.get_by_role("button", name="Uitschrijven uit het panel").click()
        assert "Er is een probleem" in page.inner_text("main")  # not without confirming
        page.check("#f-confirm")
        page.get_by_role("button", name="Uitschrijven uit het panel").click()
        page.wait_for_url("**/tot-ziens")
        assert "Uw gegevens zijn verwijderd." in page.inner_text("main")
        assert page.evaluate("() => localStorage.getItem('bp-draft:another-poll')") is None
        assert not [c for c in context.cookies() if c["name"].startswith("bp_resident_")]
        page.goto(SCOPE + "peilingen")
        assert page.url.endswith(SCOPE + "?verlopen=1")
        # Leaving revoked the session: once the gateways have the revocation (an event), the
        # old access token is refused everywhere (401).
        until(
            "the old token refused",
            lambda: api.request("GET", "/api/v1/me", token=access).status_code == 401,
            timeout=30,
        )
    finally:
        context.close()
