"""The personal link in an invitation e-mail (issue 14), against the real broker and database:
a participant who signed up by e-mail gets the invitation with a link that opens the poll in
the browser without the app; it answers once (channel ``link``), shows the receipt after, fails
after the poll closed and after revocation — each a Dutch page with a 4xx — and the token is
in no log line. A revoked link can be reissued: the holder asks, a new link (a new token) goes
by e-mail to the participant's own address, the old one stays revoked; at most three requests,
none sent for a closed poll or an answered invitation, and the same answer on screen."""

from __future__ import annotations

import logging
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from services.common import tokens
from tests.conftest import wait_for
from tests.support.answers import minimal_answers
from tests.support.audience import sign_up_by_email
from tests.support.panel import UTRECHT, utrecht_files

LINK = re.compile(r"http://[^/\s]+(/app/GM0344/link\?t=(\S+))")
REVOKE = re.compile(r"http://[^/\s]+(/app/GM0344/link/intrekken\?t=\S+)")
RELINK = re.compile(r'href="(/app/GM0344/link/nieuw)" data-relink')
# What the asker reads after a request for a new link, whatever happened (but the limit).
SAME_ANSWER = (
    "Als u nog niet hebt geantwoord en de peiling open is, sturen we een nieuwe link naar het "
    "e-mailadres waarop u de uitnodiging kreeg."
)
LIMITED = "Neem dan contact op met de gemeente"
# The tests' own HTTP client logs the URLs it requests: not a log line of the system.
CLIENT_LOGGERS = ("urllib3", "requests")


@pytest.fixture
def invited(api, service_config, smtp_sink):
    """Utrecht, an open poll for everyone, and a participant who signed up by e-mail: the text
    of their invitation e-mail."""
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.import_areas(UTRECHT, utrecht_files())
    email = f"inwoner-{uuid.uuid4().hex[:8]}@example.org"
    joined = sign_up_by_email(
        api,
        smtp_sink,
        UTRECHT,
        email,
        {
            "buurt_code": "BU03440111",
            "birth_year": 1970,
            "sex": "vrouw",
            "consent": True,
            "language": "nl",
        },
    )
    assert joined.status_code == 201, joined.text
    admin = api.staff_token(UTRECHT, "admin")
    poll = api.request(
        "POST",
        "/admin/v1/polls",
        token=admin,
        json={"template_id": "veiligheidsgevoel", "audience": {"kind": "municipality"}},
    ).json()

    wait_for(lambda: _knows_resident(service_config, joined.json()), message="notify's copy")
    api.request("POST", f"/admin/v1/polls/{poll['id']}/publish", token=admin)
    invitation = wait_for(
        lambda: [m for m in smtp_sink.to(email) if "/link?t=" in _text(m)],
        timeout=20,
        message="the invitation e-mail",
    )[0]
    return {
        "poll": poll["id"],
        "email": email,
        "message": invitation,
        "text": _text(invitation),
        "admin": admin,
        "resident": joined.json(),
    }


def _knows_resident(service_config, joined: dict[str, Any]) -> bool:
    with ClusterRpcProxy(service_config("notify")) as rpc:
        try:
            rpc.notify.set_preferences(_subject(joined), {"channel_order": ["email"]})
        except Exception:  # noqa: BLE001 - not there yet
            return False
    return True


def _subject(joined: dict[str, Any]) -> str:
    claims = tokens._decode_json(joined["access_token"].split(".")[1])
    return claims["sub"]


def _text(message: Any) -> str:
    return message.get_body(("plain",)).get_content()


def _csrf(page: requests.Response) -> str:
    return re.search(r'data-csrf="([^"]+)"', page.text).group(1)


def _form(page: requests.Response, definition: dict[str, Any]) -> dict[str, Any]:
    form = {"csrf_token": _csrf(page), "idempotency_key": str(uuid.uuid4())}
    for qid, value in minimal_answers(definition).items():
        if isinstance(value, dict):
            form[f"q.{qid}.lat"], form[f"q.{qid}.lon"] = value["lat"], value["lon"]
        elif isinstance(value, list):
            kind = next(q["type"] for q in definition["questions"] if q["id"] == qid)
            if kind == "ranking":
                form |= {f"q.{qid}.{o}": str(i) for i, o in enumerate(value, start=1)}
            else:
                form[f"q.{qid}"] = value
        else:
            form[f"q.{qid}"] = str(value)
    return form


def _definition(api, invited) -> dict[str, Any]:
    return api.request("GET", f"/admin/v1/polls/{invited['poll']}", token=invited["admin"]).json()[
        "definition"
    ]


def test_the_email_says_in_dutch_what_forwarding_does_and_how_to_revoke(invited):
    text = invited["text"]
    assert "Beantwoord de vragen in uw browser" in text
    assert "Stuurt u deze e-mail door, dan kan iemand anders met de link één keer namens u" in text
    assert "Trek de" in text and REVOKE.search(text)
    html = invited["message"].get_body(("html",)).get_content()
    assert "Vragen beantwoorden" in html and "/link?t=" in html


def test_the_link_answers_once_with_channel_link_and_then_shows_the_receipt(api, invited, caplog):
    caplog.set_level(logging.DEBUG)
    path, token = LINK.search(invited["text"]).groups()
    url = api.url(path)
    browser = requests.Session()
    opened = browser.get(url, allow_redirects=False, timeout=30)
    # Exchanged at once: a cookie, and the same page without the token.
    assert opened.status_code == 303 and opened.headers["Location"] == "/app/GM0344/link"
    cookie = next(c for c in opened.raw.headers.getlist("Set-Cookie") if c.startswith("bp_link="))
    assert "HttpOnly" in cookie and "Path=/app/GM0344/link" in cookie and token not in cookie
    page = browser.get(api.url("/app/GM0344/link"), timeout=30)
    assert page.status_code == 200 and "persoonlijke link" in page.text
    assert token not in page.text and page.headers["Cache-Control"] == "no-store"
    form = _form(page, _definition(api, invited))
    sent = browser.post(api.url("/app/GM0344/link"), data=form, allow_redirects=False)
    assert sent.status_code == 303, sent.text[:500]
    receipt = browser.get(api.url("/app/GM0344/link"), timeout=30)
    assert receipt.status_code == 200 and 'data-status="' in receipt.text
    wait_for(
        lambda: 'data-status="recorded"' in browser.get(api.url("/app/GM0344/link")).text,
        timeout=20,
        message="the answer recorded",
    )
    # The same link again, in another browser (forwarded): already answered, no form.
    other = requests.Session()
    again = other.get(url, timeout=30)
    wait_for(
        lambda: "Al beantwoord" in other.get(url, timeout=30).text,
        timeout=20,
        message="notify knowing the invitation was answered",
    )
    assert again.status_code == 200
    # And a post of the form from a session opened before (the second browser) is refused.
    form2 = {**form, "csrf_token": _csrf(other.get(api.url("/app/GM0344/link")))}
    refused = other.post(api.url("/app/GM0344/link"), data=form2)
    assert refused.status_code == 200 and "Al beantwoord" in refused.text
    _assert_not_logged(caplog, token)


def test_the_answer_is_queued_with_channel_link(api, invited, service_config):
    """The submission the route publishes says how it came in."""
    from gateway import answering  # where every route builds its submission

    seen: list[dict[str, Any]] = []
    original = answering.intake_contract.submission

    def spy(**kwargs: Any) -> dict[str, Any]:
        built = original(**kwargs)
        seen.append(built)
        return built

    answering.intake_contract.submission = spy
    try:
        url = api.url(LINK.search(invited["text"]).group(1))
        browser = requests.Session()
        page = browser.get(url, timeout=30)
        sent = browser.post(
            api.url("/app/GM0344/link"),
            data=_form(page, _definition(api, invited)),
            allow_redirects=False,
        )
        assert sent.status_code == 303
    finally:
        answering.intake_contract.submission = original
    (submission,) = seen
    assert submission["channel"] == "link"
    # The stratum and area, as the participant's own access token says them.
    claims = tokens._decode_json(invited["resident"]["access_token"].split(".")[1])
    for key, claim in (("age_band", "age_band"), ("sex", "sex"), ("buurt_code", "buurt")):
        assert submission["resident"][key] == claims[claim], key


def test_after_close_the_link_is_a_410_page_that_says_so(api, invited, caplog):
    caplog.set_level(logging.DEBUG)
    path, token = LINK.search(invited["text"]).groups()
    url = api.url(path)
    browser = requests.Session()
    assert browser.get(url, timeout=30).status_code == 200
    shut = api.request("POST", f"/admin/v1/polls/{invited['poll']}/close", token=invited["admin"])
    assert shut.status_code == 200, shut.text
    seen: list[int] = []

    def closed_page() -> list[requests.Response]:  # a 4xx Response is falsy
        page = browser.get(api.url("/app/GM0344/link"), timeout=30)
        seen.append(page.status_code)
        return [page] if page.status_code == 410 else []

    (closed,) = wait_for(closed_page, message="the gateway knowing the poll closed")
    assert "Deze peiling is gesloten" in closed.text, seen
    assert requests.get(url, timeout=30).status_code == 410  # the link itself, afresh
    _assert_not_logged(caplog, token)


def test_an_expired_link_is_a_410_page(api, invited, jwt_keys):
    claims = tokens._decode_json(LINK.search(invited["text"]).group(2).split(".")[1])
    past = datetime.now(UTC) - timedelta(days=2)
    old = tokens.issue_link_token(
        jwt_keys["link_private_key"],
        resident=claims["sub"],
        poll=claims["poll"],
        municipality=UTRECHT,
        issued_at=past,
        expires_at=past + timedelta(hours=1),
        issuer="buurtpeil",
        audience="buurtpeil-link",
        key_id=tokens.key_id(jwt_keys["link_private_key"].public_key()),
    )
    page = requests.get(api.url(f"/app/GM0344/link?t={old}"), timeout=30)
    assert page.status_code == 410 and "Deze peiling is gesloten" in page.text


def test_after_revocation_the_link_fails_with_a_clear_page(api, invited, caplog):
    caplog.set_level(logging.DEBUG)
    path, token = LINK.search(invited["text"]).groups()
    url = api.url(path)
    revoke_url = api.url(REVOKE.search(invited["text"]).group(1))
    participant = requests.Session()
    confirm = participant.get(revoke_url, timeout=30)
    assert confirm.status_code == 200 and "Link intrekken" in confirm.text
    assert confirm.url.endswith("/app/GM0344/link/intrekken")  # redirected: no token
    done = participant.post(
        api.url("/app/GM0344/link/intrekken"), data={"csrf_token": _csrf(confirm)}
    )
    assert done.status_code == 200 and "De link is ingetrokken" in done.text
    forwarded = requests.get(url, timeout=30)
    assert forwarded.status_code == 410 and "Deze link is ingetrokken" in forwarded.text
    _assert_not_logged(caplog, token)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"),  # signature
        lambda t: t[: len(t) // 2],  # cut off
        lambda t: "x" * 20,
        lambda t: t + "\u00e9",
    ],
    ids=["signature", "cut", "garbage", "non-ascii"],
)
def test_a_tampered_link_is_a_400_page_never_a_500(api, invited, mangle):
    _, token = LINK.search(invited["text"]).groups()
    page = requests.get(api.url("/app/GM0344/link"), params={"t": mangle(token)}, timeout=30)
    assert page.status_code == 400 and "Deze link werkt niet" in page.text


def test_a_link_for_another_municipality_and_no_session_are_4xx_pages(api, invited):
    _, token = LINK.search(invited["text"]).groups()
    assert requests.get(api.url(f"/app/GM0307/link?t={token}"), timeout=30).status_code in (
        400,
        404,
    )
    page = requests.get(api.url("/app/GM0344/link"), timeout=30)
    assert page.status_code == 401 and "Open de link uit de e-mail opnieuw" in page.text


def test_a_link_token_is_no_access_token(api, invited):
    _, token = LINK.search(invited["text"]).groups()
    assert api.request("GET", "/api/v1/me", token=token).status_code == 401


# --- a new link after revoking one -------------------------------------------------------------


def _revoke(api, invited) -> tuple[requests.Session, requests.Response]:
    """The participant revokes the link from the e-mail: their browser, and the confirmation."""
    participant = requests.Session()
    confirm = participant.get(api.url(REVOKE.search(invited["text"]).group(1)), timeout=30)
    done = participant.post(
        api.url("/app/GM0344/link/intrekken"), data={"csrf_token": _csrf(confirm)}, timeout=30
    )
    assert done.status_code == 200 and "De link is ingetrokken" in done.text
    return participant, done


def _ask_for_a_new_link(api, browser: requests.Session, page: requests.Response):
    """Follow "Nieuwe link aanvragen" from a page, and send the form."""
    form = browser.get(api.url(RELINK.search(page.text).group(1)), timeout=30)
    assert form.status_code == 200 and "Nieuwe link aanvragen" in form.text, form.text[:300]
    assert 'method="post"' in form.text
    return browser.post(
        api.url("/app/GM0344/link/nieuw"), data={"csrf_token": _csrf(form)}, timeout=30
    )


def _link_tokens(smtp_sink, email: str) -> list[str]:
    """The personal link's token in each e-mail to this address that has one, oldest first."""
    return [LINK.search(_text(m)).group(2) for m in smtp_sink.to(email) if LINK.search(_text(m))]


def _nothing_more_sent(smtp_sink, email: str, count: int) -> None:
    time.sleep(3)  # the dispatcher polls every 0.2 s here: a queued e-mail would be out by now
    assert len(_link_tokens(smtp_sink, email)) == count


def test_a_revoked_link_is_reissued_by_e_mail_and_the_old_one_stays_revoked(
    api, invited, smtp_sink, caplog
):
    caplog.set_level(logging.DEBUG)
    path, old = LINK.search(invited["text"]).groups()
    participant, revoked = _revoke(api, invited)
    assert "Nieuwe link aanvragen" in revoked.text

    answer = _ask_for_a_new_link(api, participant, revoked)
    assert answer.status_code == 200 and SAME_ANSWER in answer.text

    tokens_sent = wait_for(
        lambda: _link_tokens(smtp_sink, invited["email"])[1:],
        timeout=20,
        message="the e-mail with the new link",
    )
    (new,) = tokens_sent
    mail = [m for m in smtp_sink.to(invited["email"]) if new in _text(m)][0]
    assert mail["To"] == invited["email"] and "Uw nieuwe link" in mail["Subject"]
    assert new != old and new not in answer.text
    assert tokens._decode_json(new.split(".")[1])["gen"] == 1

    # The old link stays revoked: afresh, and in the session it opened before.
    forwarded = requests.get(api.url(path), timeout=30)
    assert forwarded.status_code == 410 and "Deze link is ingetrokken" in forwarded.text
    assert participant.get(api.url("/app/GM0344/link"), timeout=30).status_code == 410

    # The new one opens the poll and answers.
    browser = requests.Session()
    new_url = api.url(LINK.search(_text(mail)).group(1))
    page = browser.get(new_url, timeout=30)
    assert page.status_code == 200 and "persoonlijke link" in page.text
    sent = browser.post(
        api.url("/app/GM0344/link"), data=_form(page, _definition(api, invited)), timeout=30
    )
    assert sent.status_code == 200 and 'data-status="' in sent.text
    # Whoever holds the old link does not learn that the participant answered.
    wait_for(
        lambda: "Al beantwoord" in requests.get(new_url, timeout=30).text,
        timeout=20,
        message="notify knowing the invitation was answered",
    )
    forwarded = requests.get(api.url(path), timeout=30)
    assert forwarded.status_code == 410 and "Deze link is ingetrokken" in forwarded.text
    assert "beantwoord" not in forwarded.text.lower()
    _assert_not_logged(caplog, old)
    _assert_not_logged(caplog, new)


def test_an_old_link_cannot_take_the_new_one_away_and_requests_stop_after_three(
    api, invited, smtp_sink, caplog
):
    caplog.set_level(logging.DEBUG)
    path, old = LINK.search(invited["text"]).groups()
    participant, revoked = _revoke(api, invited)
    assert SAME_ANSWER in _ask_for_a_new_link(api, participant, revoked).text
    (new,) = wait_for(
        lambda: _link_tokens(smtp_sink, invited["email"])[1:], timeout=20, message="a new link"
    )

    # Whoever has the old (forwarded) link asks as well: the new link is sent again to the
    # participant, not replaced by a third one, and keeps working.
    other = requests.Session()
    page = other.get(api.url(path), timeout=30)
    assert page.status_code == 410
    assert SAME_ANSWER in _ask_for_a_new_link(api, other, page).text
    again = wait_for(
        lambda: _link_tokens(smtp_sink, invited["email"])[2:], timeout=20, message="it again"
    )
    assert again == [new]
    assert requests.get(api.url(f"/app/GM0344/link?t={new}"), timeout=30).status_code == 200

    assert SAME_ANSWER in _ask_for_a_new_link(api, other, page).text  # the third
    wait_for(lambda: _link_tokens(smtp_sink, invited["email"])[3:], timeout=20, message="third")
    fourth = _ask_for_a_new_link(api, participant, revoked)
    assert fourth.status_code == 200 and LIMITED in fourth.text
    assert SAME_ANSWER not in fourth.text
    _nothing_more_sent(smtp_sink, invited["email"], 4)
    _assert_not_logged(caplog, old)
    _assert_not_logged(caplog, new)


def test_no_new_link_for_a_closed_poll_and_the_same_answer(api, invited, smtp_sink, engines):
    participant, revoked = _revoke(api, invited)
    shut = api.request("POST", f"/admin/v1/polls/{invited['poll']}/close", token=invited["admin"])
    assert shut.status_code == 200, shut.text

    def closed_in_notify() -> bool:
        with engines["notify"].connect() as conn:
            return conn.execute(
                sa.text("SELECT closed_at IS NOT NULL FROM polls WHERE id = :p"),
                {"p": invited["poll"]},
            ).scalar_one()

    wait_for(closed_in_notify, timeout=20, message="notify knowing the poll closed")
    answer = _ask_for_a_new_link(api, participant, revoked)
    assert answer.status_code == 200 and SAME_ANSWER in answer.text
    _nothing_more_sent(smtp_sink, invited["email"], 1)


def test_no_new_link_once_answered_and_the_same_answer(api, invited, smtp_sink):
    url = api.url(LINK.search(invited["text"]).group(1))
    browser = requests.Session()
    page = browser.get(url, timeout=30)
    browser.post(api.url("/app/GM0344/link"), data=_form(page, _definition(api, invited)))
    wait_for(
        lambda: "Al beantwoord" in requests.get(url, timeout=30).text,
        timeout=20,
        message="notify knowing the invitation was answered",
    )
    form = browser.get(api.url("/app/GM0344/link/nieuw"), timeout=30)
    answer = browser.post(
        api.url("/app/GM0344/link/nieuw"), data={"csrf_token": _csrf(form)}, timeout=30
    )
    assert answer.status_code == 200 and SAME_ANSWER in answer.text
    _nothing_more_sent(smtp_sink, invited["email"], 1)


def test_asking_for_a_new_link_needs_the_link_session_and_csrf(api, invited):
    assert requests.get(api.url("/app/GM0344/link/nieuw"), timeout=30).status_code == 401
    participant, revoked = _revoke(api, invited)
    refused = participant.post(api.url("/app/GM0344/link/nieuw"), data={}, timeout=30)
    assert refused.status_code == 403


def _assert_not_logged(caplog: Any, token: str) -> None:
    records = [r for r in caplog.records if not r.name.startswith(CLIENT_LOGGERS)]
    assert records, "no log records captured"
    for record in records:
        line = record.getMessage() + " " + str(record.args) + " " + str(record.exc_text or "")
        assert token not in line, record.name
        assert token[-43:] not in line, record.name  # not even its signature
