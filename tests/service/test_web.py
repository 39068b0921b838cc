"""The web apps' security over real HTTP, with every service behind the gateway: the CSP and
the other headers on every page, personal pages never cached, session cookie flags, CSRF
refused without the token, refresh rotation from a cookie, feedback of another municipality
an HTML 404, and bad input a page that says what to fix — never a 500."""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from tests.conftest import wait_for
from tests.support.answers import minimal_answers
from tests.support.gateway import resident_token
from tests.support.panel import UTRECHT, utrecht_files

AMERSFOORT = "GM0307"
FEEDBACK = {"title": "Wat we hoorden", "heard": "Meer licht gevraagd.", "plan": "Meer lantaarns."}


@pytest.fixture
def town(api, service_config):
    """Utrecht and Amersfoort, each with an open poll for everyone and a closed poll with
    published feedback; letter codes for Utrecht."""
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.create_municipality(
            {"code": AMERSFOORT, "name": "Amersfoort", "branding": {"primary_color": "#00594F"}}
        )
        rpc.panel.import_areas(UTRECHT, utrecht_files())
    found = {}
    for code in (UTRECHT, AMERSFOORT):
        admin = api.staff_token(code, "admin")
        polls = []
        for _ in range(2):
            poll = api.request(
                "POST",
                "/admin/v1/polls",
                token=admin,
                json={"template_id": "veiligheidsgevoel", "audience": {"kind": "municipality"}},
            ).json()
            api.request("POST", f"/admin/v1/polls/{poll['id']}/publish", token=admin)
            polls.append(poll["id"])
        api.request("POST", f"/admin/v1/polls/{polls[1]}/close", token=admin)
        path = f"/admin/v1/polls/{polls[1]}/feedback"
        wait_for(
            lambda path=path, admin=admin: (
                api.request("PUT", path, token=admin, json=FEEDBACK).status_code == 200
            ),
            message="feedback knowing the closed poll",
        )
        published = wait_for(
            lambda path=path, admin=admin: (lambda r: r.json() if r.status_code == 200 else None)(
                api.request("POST", f"{path}/publish", token=admin)
            ),
            message="feedback knowing the poll is closed",
        )
        found[code] = {"poll": polls[0], "feedback": published["feedback_id"]}
    batch = api.request(
        "POST",
        "/admin/v1/invitation-batches",
        token=api.staff_token(UTRECHT, "admin"),
        json={"per_wijk": {"WK034401": 5}},  # a code joins a buurt of its own wijk only
    ).json()
    found["codes"] = [line.split(",")[0] for line in batch["csv"].splitlines()[1:]]
    return found


def browser(api, token=None):
    session = requests.Session()
    if token:
        session.cookies.set("bp_resident_access", token)
    return session


def csrf_of(session, api, path="/app/GM0344/"):
    page = session.get(api.url(path), timeout=30)
    return re.search(r'data-csrf="([^"]+)"', page.text).group(1)


def join_by_form(api, code, host=None):
    session = browser(api)
    token = csrf_of(session, api)
    # requests matches cookies to the Host header: as another host, send the CSRF cookie along.
    headers = {"Host": host, "Cookie": f"bp_csrf={session.cookies['bp_csrf']}"} if host else {}
    return session, session.post(
        api.url("/app/GM0344/aanmelden"),
        data={
            "csrf_token": token,
            "step": "join",
            "invitation_code": code,
            "buurt_code": "BU03440111",
            "consent": "ja",
        },
        headers=headers,
        allow_redirects=False,
        timeout=30,
    )


def test_every_page_sends_a_strict_csp_and_personal_pages_are_never_cached(api, town):
    from web.pages import PAGES, entrypoints

    entrypoints()
    token = resident_token(api, municipality=UTRECHT, buurt="BU03440111")
    session = browser(api, token)
    objects = {
        "municipality_code": UTRECHT,
        "poll_id": town[UTRECHT]["poll"],
        "feedback_id": town[UTRECHT]["feedback"],
        "receipt_id": "x",
        "rest": "bestaat/niet",
    }
    static = re.search(
        r'href="/static/(\w+)/(css/app.css)"', session.get(api.url("/app/GM0344/")).text
    )
    objects |= {"digest": static.group(1), "name": static.group(2)}
    checked = 0
    for page in PAGES:
        if "GET" not in page.method or page.app == "staff" or page.path.startswith("/theme/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: objects[m.group(1)], page.path)
        response = session.get(api.url(path), allow_redirects=False, timeout=30)
        assert response.status_code < 500, (path, response.status_code)
        csp = response.headers.get(
            "Content-Security-Policy", f"none on {path}: {response.status_code}"
        )
        assert "default-src 'none'" in csp and "script-src 'self'" in csp, path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp, path
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        if page.personal:
            assert response.headers["Cache-Control"] == "no-store", path
        checked += 1
    assert checked >= 20


def test_session_cookies_are_httponly_samesite_and_secure_off_loopback(api, town):
    _, joined = join_by_form(api, town["codes"][0])
    assert joined.status_code == 303 and joined.headers["Location"] == "/app/GM0344/welkom"
    cookies = joined.raw.headers.getlist("Set-Cookie")
    access = next(c for c in cookies if c.startswith("bp_resident_access="))
    refresh = next(c for c in cookies if c.startswith("bp_resident_refresh="))
    for cookie in (access, refresh):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/app/" in cookie
        assert "Secure" not in cookie  # served on 127.0.0.1: development
    _, public = join_by_form(api, town["codes"][1], host="panel.utrecht.example")
    assert public.status_code == 303
    assert all("Secure" in c for c in public.raw.headers.getlist("Set-Cookie"))


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(api, town):
    session, joined = join_by_form(api, town["codes"][2])
    access = joined.cookies["bp_resident_access"]
    for data in ({"confirm": "ja"}, {"confirm": "ja", "csrf_token": "0" * 40}):
        refused = session.post(api.url("/app/GM0344/uitschrijven"), data=data, timeout=30)
        assert refused.status_code == 403
        assert "Dit formulier is verlopen" in refused.text
    assert api.request("GET", "/api/v1/me", token=access).status_code == 200  # still a member
    token = csrf_of(session, api)
    left = session.post(
        api.url("/app/GM0344/uitschrijven"),
        data={"confirm": "ja", "csrf_token": token},
        allow_redirects=False,
        timeout=30,
    )
    assert left.status_code == 303 and left.headers["Location"] == "/app/GM0344/tot-ziens"
    # Gone (404), and soon the session is revoked on every gateway (401).
    assert api.request("GET", "/api/v1/me", token=access).status_code in (401, 404)
    wait_for(
        lambda: api.request("GET", "/api/v1/me", token=access).status_code == 401,
        message="the session of the resident who left revoked",
    )


def test_an_expired_access_cookie_is_renewed_with_the_refresh_cookie_once_per_token(api, town):
    session, joined = join_by_form(api, town["codes"][3])
    refresh = joined.cookies["bp_resident_refresh"]
    renewed = []
    for _ in range(2):  # a page and its htmx call, both with the same old cookies
        browser_ = browser(api, "not-a-token")
        browser_.cookies.set("bp_resident_refresh", refresh)
        page = browser_.get(api.url("/app/GM0344/peilingen"), allow_redirects=False, timeout=30)
        assert page.status_code == 200, page.text[:300]
        assert page.headers["Cache-Control"] == "no-store"
        renewed.append(page.cookies["bp_resident_refresh"])
    assert renewed[0] == renewed[1] != refresh  # one rotation, not a reuse that revokes
    still = browser(api, "not-a-token")
    still.cookies.set("bp_resident_refresh", renewed[0])
    assert still.get(api.url("/app/GM0344/peilingen"), allow_redirects=False).status_code == 200


def test_feedback_of_another_municipality_is_an_html_404(api, town):
    mine = browser(api, resident_token(api, municipality=UTRECHT, buurt="BU03440111"))
    theirs = town[AMERSFOORT]["feedback"]
    refused = mine.get(api.url(f"/app/GM0344/terugkoppeling/{theirs}"), timeout=30)
    assert refused.status_code == 404 and refused.headers["Content-Type"].startswith("text/html")
    assert "Pagina niet gevonden" in refused.text
    own = browser(api, resident_token(api, municipality=AMERSFOORT, buurt="BU03070111"))
    assert own.get(api.url(f"/app/GM0307/terugkoppeling/{theirs}")).status_code == 200
    # And another municipality's app with my session is not my session.
    assert mine.get(api.url("/app/GM0307/peilingen"), allow_redirects=False).status_code == 303


@pytest.mark.parametrize(
    "form,field",
    [
        ({"q.veilig_buurt": "heel"}, "q-veilig_buurt"),
        ({"q.onveilige_plek.lat": "hier", "q.onveilige_plek.lon": "5.1"}, "q-onveilige_plek"),
        ({"q.maatregelen.camera": "1", "q.maatregelen.drugs": "1"}, "q-maatregelen"),
        ({"q.vaak_onveilig": "misschien"}, "q-vaak_onveilig"),
        ({"q.onveilige_plek.lat": "40.0", "q.onveilige_plek.lon": "3.0"}, "q-onveilige_plek"),
    ],
)
def test_bad_answers_come_back_as_a_form_that_says_what_to_fix(api, town, form, field):
    session = browser(api, resident_token(api, municipality=UTRECHT, buurt="BU03440111"))
    poll = town[UTRECHT]["poll"]
    wait_for(
        lambda: session.get(api.url(f"/app/GM0344/peilingen/{poll}")).status_code == 200,
        message="the poll in the gateway's cache",
    )
    sent = session.post(
        api.url(f"/app/GM0344/peilingen/{poll}"),
        data={"csrf_token": csrf_of(session, api), "idempotency_key": str(uuid.uuid4()), **form},
        allow_redirects=False,
        timeout=30,
    )
    assert sent.status_code == 422, sent.text[:500]
    assert 'class="bp-error-summary"' in sent.text and f'href="#{field}"' in sent.text


def test_addresses_that_name_nothing_are_html_404s(api, town):
    session = browser(api, resident_token(api, municipality=UTRECHT, buurt="BU03440111"))
    for path in (
        "/app/GM9999/",
        "/app/utrecht/",
        "/app/GM0344/peilingen/niet-een-id",
        "/app/GM0344/terugkoppeling/niet-een-id",
        "/app/GM0344/bestaat/niet",
        "/static/0000000000000000/css/nergens.css",
    ):
        response = session.get(api.url(path), allow_redirects=False, timeout=30)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"].startswith("text/html"), path


def test_a_poll_sent_twice_from_the_page_is_one_submission(api, town):
    session, joined = join_by_form(api, town["codes"][4])
    poll = town[UTRECHT]["poll"]
    definition = api.request(
        "GET", f"/api/v1/polls/{poll}", token=joined.cookies["bp_resident_access"]
    ).json()["definition"]
    answers = minimal_answers(definition)
    form = {"csrf_token": csrf_of(session, api), "idempotency_key": str(uuid.uuid4())}
    for qid, value in answers.items():
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
    first = session.post(api.url(f"/app/GM0344/peilingen/{poll}"), data=form, allow_redirects=False)
    again = session.post(api.url(f"/app/GM0344/peilingen/{poll}"), data=form, allow_redirects=False)
    assert first.status_code == again.status_code == 303, first.text[:500]
    assert first.headers["Location"] == again.headers["Location"]  # the same receipt
    receipt = session.get(api.url(first.headers["Location"]))
    assert receipt.status_code == 200 and 'data-status="' in receipt.text


def test_each_municipality_installs_as_its_own_app_in_its_own_colours(api, town):
    session = browser(api)
    apps = {}
    for code in (UTRECHT, AMERSFOORT):
        start = session.get(api.url(f"/app/{code}/")).text
        manifest = session.get(api.url(f"/app/{code}/manifest.webmanifest"))
        assert manifest.headers["Content-Type"].startswith("application/manifest+json")
        theme = re.search(r'href="(/theme/[^"]+)"', start).group(1)
        apps[code] = (manifest.json(), session.get(api.url(theme)).text, theme)
    (utrecht, utrecht_css, _), (amersfoort, amersfoort_css, amersfoort_theme) = apps.values()
    assert utrecht["scope"] == "/app/GM0344/" and amersfoort["scope"] == "/app/GM0307/"
    assert utrecht["name"] == "Buurtpeil Utrecht" and amersfoort["name"] == "Buurtpeil Amersfoort"
    assert utrecht["theme_color"] == "#1F4E79" and amersfoort["theme_color"] == "#00594F"
    assert "#00594F" in amersfoort_css and "#00594F" not in utrecht_css
    cached = session.get(api.url(amersfoort_theme))
    assert cached.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    again = session.get(
        api.url(amersfoort_theme), headers={"If-None-Match": cached.headers["ETag"]}
    )
    assert again.status_code == 304
    icon = session.get(api.url(amersfoort["icons"][0]["src"]))
    assert icon.status_code == 200 and "#00594F" in icon.text


def test_english_is_the_second_language(api, town):
    session = browser(api)
    english = session.get(api.url("/app/GM0344/?lang=en"))
    assert '<html lang="en"' in english.text and "Join with your letter code" in english.text
    assert session.cookies["bp_lang"] == "en"  # kept for the next page
    assert "Join with your letter code" in session.get(api.url("/app/GM0344/")).text
    dutch = browser(api).get(api.url("/app/GM0344/"))
    assert '<html lang="nl"' in dutch.text and "Meedoen met uw lettercode" in dutch.text
