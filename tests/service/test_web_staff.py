"""The staff dashboard over real HTTP, with every service behind the gateway: signing in with a
real account (and a wrong password told on the form), the pages of a poll's life without
JavaScript (a draft from a template, its audience, publish, close, results with the charts, the
map and their tables, feedback and a measure), another municipality's poll an HTML 404, a POST
without the CSRF token refused, and every staff page with the strict CSP and never cached."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import run_in_transaction
from services.common.outbox import add_events
from services.panel import accounts
from services.responses import intake
from tests.conftest import wait_for
from tests.service.test_feedback_api import close, draft, publish, save_draft
from tests.service.test_trends import answers, published
from tests.support.answers import minimal_answers
from tests.support.gateway import resident_token
from tests.support.panel import UTRECHT, utrecht_files

AMERSFOORT = "GM0307"
PASSWORD = "Groene lantaarns langs de oude gracht"


@pytest.fixture
def town(api, service_config, engines):
    """Utrecht (with areas) and Amersfoort, an editor account with a password in Utrecht, and
    in Amersfoort an open poll."""
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.create_municipality(
            {"code": AMERSFOORT, "name": "Amersfoort", "branding": {"primary_color": "#00594F"}}
        )
        rpc.panel.import_areas(UTRECHT, utrecht_files())
    with Session(engines["panel"]) as session, session.begin():
        accounts.create_staff(
            session,
            municipality_code=UTRECHT,
            email="redactie@utrecht.nl",
            role="editor",
            password=PASSWORD,
            now=datetime.now(UTC),
        )
    admin = api.staff_token(AMERSFOORT, "admin")
    theirs = api.request(
        "POST", "/admin/v1/polls", token=admin, json={"template_id": "veiligheidsgevoel"}
    ).json()["id"]
    api.request("POST", f"/admin/v1/polls/{theirs}/publish", token=admin)
    return {"theirs": theirs}


def csrf_of(session: requests.Session, api) -> str:
    page = session.get(api.url("/staff/"), timeout=30)
    return re.search(r'data-csrf="([^"]+)"', page.text).group(1)


def signed_in(api, role="editor", municipality=UTRECHT) -> tuple[requests.Session, str]:
    session = requests.Session()
    session.cookies.set("bp_staff_access", api.staff_token(municipality, role))
    return session, csrf_of(session, api)


def post(session, api, path, data, csrf, **kwargs):
    return session.post(
        api.url(path),
        data={"csrf_token": csrf, **data},
        timeout=30,
        allow_redirects=False,
        **kwargs,
    )


def test_staff_sign_in_with_a_real_account_and_out_again(api, town):
    session = requests.Session()
    assert (
        session.get(api.url("/staff/peilingen"), allow_redirects=False)
        .headers["Location"]
        .startswith("/staff/?verlopen=1&terug=/staff/peilingen")
    )
    csrf = csrf_of(session, api)
    wrong = post(
        session, api, "/staff/", {"email": "redactie@utrecht.nl", "password": "fout"}, csrf
    )
    assert wrong.status_code == 422
    assert "Het e-mailadres of het wachtwoord klopt niet." in wrong.text
    ok = post(
        session,
        api,
        "/staff/",
        {"email": "redactie@utrecht.nl", "password": PASSWORD, "terug": "/staff/peilingen"},
        csrf,
    )
    assert ok.status_code == 303 and ok.headers["Location"] == "/staff/peilingen"
    cookie = next(c for c in session.cookies if c.name == "bp_staff_access")
    assert cookie.path == "/staff/" and cookie.has_nonstandard_attr("HttpOnly")
    listed = session.get(api.url("/staff/peilingen"), timeout=30)
    assert listed.status_code == 200 and "Peilingen" in listed.text
    # An address outside the dashboard is never where signing in leads.
    elsewhere = post(
        requests.Session(),
        api,
        "/staff/",
        {"email": "redactie@utrecht.nl", "password": PASSWORD, "terug": "//evil.example/"},
        csrf,
        cookies={"bp_csrf": session.cookies["bp_csrf"]},
    )
    assert elsewhere.headers["Location"] == "/staff/peilingen"
    out = post(session, api, "/staff/afmelden", {}, csrf)
    assert out.headers["Location"] == "/staff/?afgemeld=1"
    assert "bp_staff_access" not in session.cookies


def test_a_poll_from_template_to_feedback_without_javascript(api, town):
    session, csrf = signed_in(api)
    made = post(session, api, "/staff/peilingen/nieuw", {"template_id": "veiligheidsgevoel"}, csrf)
    assert made.status_code == 303, made.text[:500]
    edit = made.headers["Location"].split("?")[0]
    poll_id = edit.split("/")[3]
    form = session.get(api.url(edit), timeout=30).text
    version = re.search(r'name="version" value="(\d+)"', form).group(1)
    saved = post(
        session,
        api,
        edit,
        {
            "version": version,
            "title": "Veilig in Oost",
            "audience_kind": "areas",
            "area_codes": ["WK034401", "WK034403"],
            **{f"q{i}-text": t for i, t in enumerate(["Hoe veilig voelt u zich in Oost?"])},
            "q0-required": "ja",
            "q10-remove": "ja",
            "new-type": "single_choice",
            "new-text": "Kent u uw buren?",
            "new-options": "Ja\nNee",
            "next": "publish",  # "Opslaan en publiceren": saved, then the confirmation
        },
        csrf,
    )
    assert saved.status_code == 303, re.findall(r"bp-error-summary.*?</ul>", saved.text, re.S)
    assert saved.headers["Location"].endswith(f"/staff/peilingen/{poll_id}/publiceren")
    poll = api.request(
        "GET", f"/admin/v1/polls/{poll_id}", token=api.staff_token(UTRECHT, "viewer")
    ).json()
    assert poll["title"] == "Veilig in Oost"
    assert poll["audience"]["area_codes"] == ["WK034401", "WK034403"]
    texts = [q["text"] for q in poll["definition"]["questions"]]
    assert texts[0] == "Hoe veilig voelt u zich in Oost?" and texts[-1] == "Kent u uw buren?"
    assert "tips" not in [q["id"] for q in poll["definition"]["questions"]]
    # A stale version is refused, not saved over the newer one.
    stale = post(session, api, edit, {"version": version, "title": "Oud"}, csrf)
    assert stale.status_code == 409
    assert "text/html" in stale.headers["Content-Type"]

    published = post(session, api, f"/staff/peilingen/{poll_id}/publiceren", {}, csrf)
    assert published.headers["Location"].endswith("?klaar=gepubliceerd")
    counts = session.get(api.url(f"/staff/peilingen/{poll_id}/tellingen"), timeout=30)
    assert counts.status_code == 200 and counts.headers["Cache-Control"] == "no-store"
    assert counts.text.lstrip().startswith('<div id="poll-counts"')  # a fragment for htmx
    assert 'hx-trigger="every 15s"' in counts.text and "Uitgenodigd" in counts.text
    token = resident_token(api, municipality=UTRECHT, buurt="BU03440111")
    shown = wait_for(
        lambda: (lambda r: r.json() if r.status_code == 200 else None)(
            api.request("GET", f"/api/v1/polls/{poll_id}", token=token)
        ),
        message="the poll for the resident",
    )
    sent = api.request(
        "POST",
        f"/api/v1/polls/{poll_id}/responses",
        token=token,
        json={"answers": minimal_answers(shown["definition"])},
        headers={"Idempotency-Key": "a3a1c7d0-0000-4000-8000-000000000001"},
    )
    assert sent.status_code == 202
    receipt = f"/api/v1/receipts/{sent.json()['receipt_id']}"
    wait_for(
        lambda: api.request("GET", receipt, token=token).json()["status"] == "recorded",
        message="the answers recorded",
    )
    closed = post(session, api, f"/staff/peilingen/{poll_id}/sluiten", {}, csrf)
    assert closed.headers["Location"].endswith("?klaar=gesloten")

    results = session.get(api.url(f"/staff/peilingen/{poll_id}/resultaten"), timeout=30)
    assert results.status_code == 200, results.text[:2000]
    page = results.text
    assert page.count('role="img"') >= 3  # the gemeente and wijk charts, the buurt map
    assert "<table" in page and "Welgelegen, Den Hommel" in page
    # One respondent: below k everywhere, so hidden — hatched on the map, said in the table.
    assert 'fill="url(#map-buurten-hatch)"' in page
    assert "verborgen (minder dan" in page
    # Issue 14: the split per kind of participant and per channel, as tables, in Dutch.
    assert 'id="who-answered"' in page and "Soort deelnemer" in page and "Kanaal" in page
    assert "Ondernemers" in page and "Papier" in page
    # One resident in the app: no split per kind or channel (it would repeat the figures).
    assert 'id="per-kind"' not in page and 'id="per-channel"' not in page
    panel = session.get(
        api.url(f"/staff/peilingen/{poll_id}/resultaten?respondents=panel&vraag=vaak_onveilig"),
        timeout=30,
    )
    assert panel.status_code == 200 and 'value="panel" checked' in panel.text
    assert '<option value="vaak_onveilig" selected>' in panel.text
    csv = session.get(api.url(f"/staff/peilingen/{poll_id}/resultaten.csv"), timeout=30)
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")

    path = f"/staff/peilingen/{poll_id}/terugkoppeling"
    empty = post(session, api, path, {"action": "save", "title": ""}, csrf)
    assert empty.status_code == 422 and 'href="#f-title"' in empty.text
    wait_for(
        lambda: (
            post(
                session,
                api,
                path,
                {
                    "action": "save",
                    "title": "Meer licht",
                    "heard": "Donkere plekken.",
                    "plan": "Lantaarns.",
                    "key_figures": "veilig_buurt",
                },
                csrf,
            ).status_code
            == 303
        ),
        message="feedback knowing the poll",
    )
    measure = post(
        session, api, path, {"action": "measure", "m-title": "Lantaarns", "m-owner": "OR"}, csrf
    )
    assert measure.status_code == 303
    wait_for(
        lambda: post(session, api, path, {"action": "publish"}, csrf).status_code == 303,
        message="feedback knowing the poll is closed",
    )
    page = session.get(api.url(path), timeout=30).text
    assert "gepubliceerd" in page and "Lantaarns" in page
    assert "Reacties van bewoners" in page and "0 reacties" in page  # none yet (0 is shown)
    measure_id = re.search(r'action="/staff/maatregelen/([0-9a-f-]+)"', page).group(1)
    moved = post(
        session,
        api,
        f"/staff/maatregelen/{measure_id}",
        {"poll_id": poll_id, "status": "in_progress", "note": "Besteld."},
        csrf,
    )
    assert moved.headers["Location"] == f"{path}?klaar=status"
    assert "Besteld." in session.get(api.url(path), timeout=30).text


def test_another_municipalitys_poll_is_a_404_page_and_csrf_is_required(api, town):
    session, csrf = signed_in(api, "admin")
    theirs = town["theirs"]
    for path in ("", "/resultaten", "/bewerken", "/terugkoppeling", "/sluiten"):
        got = session.get(api.url(f"/staff/peilingen/{theirs}{path}"), timeout=30)
        assert got.status_code == 404, (path, got.status_code)
        assert "Pagina niet gevonden" in got.text
    refused = post(session, api, f"/staff/peilingen/{theirs}/sluiten", {}, "")
    assert refused.status_code == 403 and "Dit formulier is verlopen" in refused.text
    # Nothing was closed on the way.
    poll = api.request(
        "GET", f"/admin/v1/polls/{theirs}", token=api.staff_token(AMERSFOORT, "viewer")
    ).json()
    assert poll["status"] == "open"
    made = post(session, api, "/staff/peilingen/nieuw", {"template_id": "groen"}, "")
    assert made.status_code == 403
    listed = api.request("GET", "/admin/v1/polls", token=api.staff_token(UTRECHT, "viewer"))
    assert listed.json() == []


def test_every_staff_page_sends_a_strict_csp_and_is_never_cached(api, town):
    from web.pages import PAGES, entrypoints

    entrypoints()
    session, _ = signed_in(api, "admin", AMERSFOORT)
    objects = {
        "poll_id": town["theirs"],
        "measure_id": "x",
        "rest": "bestaat/niet",
        "template_id": "veiligheidsgevoel",
        "staff_id": "x",
        "batch_id": "x",
        "region_code": "RG0307X",  # no such region: its 404 page must be sent the same way
    }
    checked = 0
    for page in PAGES:
        if page.app != "staff" or "GET" not in page.method:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: objects[m.group(1)], page.path)
        response = session.get(api.url(path), allow_redirects=False, timeout=30)
        assert response.status_code < 500, (path, response.status_code, response.text[:500])
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp, path
        assert response.headers["Cache-Control"] in ("no-store",) or path.endswith(
            (".csv", ".xlsx")
        ), path
        checked += 1
    assert checked >= 10


def test_an_expired_staff_session_signs_in_again_and_comes_back(api, town):
    """An expired access token without a refresh token (the refresh token expired or was
    refused) ends the session: the page sends the staff member to sign in, with the way back,
    and signing in returns there."""
    session = requests.Session()
    an_hour_ago = datetime.now(UTC).timestamp() - 3600
    expired = api.staff_token(UTRECHT, "editor", ttl=600, now=an_hour_ago)
    session.cookies.set("bp_staff_access", expired)
    gone = session.get(api.url("/staff/peilingen?status=open"), allow_redirects=False, timeout=30)
    assert gone.status_code == 303
    assert gone.headers["Location"] == "/staff/?verlopen=1&terug=/staff/peilingen%3Fstatus%3Dopen"
    cleared = gone.headers["Set-Cookie"]
    assert "bp_staff_access=;" in cleared and "Max-Age=0" in cleared and "Path=/staff/" in cleared
    session.cookies.clear()  # as the browser does (this jar kept it under another path)
    page = session.get(api.url(gone.headers["Location"]), timeout=30)
    assert "Uw sessie is verlopen. Log opnieuw in om verder te gaan waar u was." in page.text
    assert 'name="terug" value="/staff/peilingen?status=open"' in page.text
    csrf = re.search(r'data-csrf="([^"]+)"', page.text).group(1)
    back = post(
        session,
        api,
        "/staff/",
        {
            "email": "redactie@utrecht.nl",
            "password": PASSWORD,
            "terug": "/staff/peilingen?status=open",
        },
        csrf,
    )
    assert back.headers["Location"] == "/staff/peilingen?status=open"


def test_an_expired_access_token_is_refreshed_through_the_staff_refresh_route(api, town):
    """Staff access tokens live 15 minutes; the page session holds a refresh token too, and an
    expired access token is exchanged (``staff_token_refresh``) without the staff member
    noticing — both cookies rotated."""
    session = requests.Session()
    csrf = csrf_of(session, api)
    signed = post(
        session, api, "/staff/", {"email": "redactie@utrecht.nl", "password": PASSWORD}, csrf
    )
    assert signed.status_code == 303
    refresh_before = session.cookies["bp_staff_refresh"]
    an_hour_ago = datetime.now(UTC).timestamp() - 3600
    expired = api.staff_token(UTRECHT, "editor", ttl=600, now=an_hour_ago)
    access = next(c for c in session.cookies if c.name == "bp_staff_access")
    access.value = expired  # as if 15 minutes had passed
    page = session.get(api.url("/staff/peilingen"), allow_redirects=False, timeout=30)
    assert page.status_code == 200, page.headers.get("Location")
    assert session.cookies["bp_staff_refresh"] != refresh_before  # rotated
    assert next(c for c in session.cookies if c.name == "bp_staff_access").value != expired


@pytest.mark.parametrize("responses_overrides", [{"RESULTS_WAIT": 0}])
def test_results_still_being_computed_are_a_503_page_that_says_so(api, town, responses_overrides):
    """A first release longer than a reader waits (RESULTS_WAIT; here 0 s): the results page
    says in Dutch that they are being computed, with Retry-After and a way back, instead of an
    error; loaded again once computed, it shows them."""
    admin = api.staff_token(UTRECHT, "admin")
    poll_id = api.request(
        "POST", "/admin/v1/polls", token=admin, json={"template_id": "veiligheidsgevoel"}
    ).json()["id"]
    assert api.request("POST", f"/admin/v1/polls/{poll_id}/publish", token=admin).ok
    session, _ = signed_in(api)
    path = api.url(f"/staff/peilingen/{poll_id}/resultaten")
    # Until responses has the poll_published event the page is a 404; the first read after
    # that finds no release and starts one.
    # (A requests.Response of a 503 is falsy: wait for a list holding it.)
    (computing,) = wait_for(
        lambda: (lambda r: [r] if r.status_code != 404 else None)(session.get(path, timeout=30)),
        message="responses knowing the poll",
    )
    assert computing.status_code == 503, computing.text[:2000]
    assert computing.headers["Retry-After"] == "5"
    assert "text/html" in computing.headers["Content-Type"]
    assert computing.headers["Cache-Control"] == "no-store"
    assert "De resultaten worden berekend" in computing.text
    assert "Laad de pagina opnieuw" in computing.text
    served = wait_for(
        lambda: (lambda r: r if r.status_code == 200 else None)(session.get(path, timeout=30)),
        timeout=60,
        message="the first release served once computed",
    )
    assert "Versie 1" in served.text and "worden berekend" not in served.text


# --- the weighting note beside every figure it affects (issue 15, 1d) ---------------------------

WEST, NOORDWEST = "WK034401", "WK034402"
UNMET = "niet te halen met gewichten"  # the Dutch note: the CBS margins cannot be met


def record_skewed(engines, poll):
    """100 respondents in West, 96 of them 65+ while CBS counts nearly half of West's 15+ as
    25–44: its margins cannot be met within the weight bounds. 100 in Noordwest, by age as
    CBS counts it: met. Half of each feel unsafe often."""
    people = [
        (WEST, f"BU034401{b}", "65_plus" if i % 25 else "25_44")
        for b in ("11", "12", "13", "14")
        for i in range(25)
    ]
    bands = ["15_24"] * 16 + ["25_44"] * 50 + ["45_64"] * 22 + ["65_plus"] * 12
    people += [(NOORDWEST, f"BU034402{1 + i % 2}{1 + i % 2}", band) for i, band in enumerate(bands)]
    batch = [
        {
            "receipt_id": str(uuid.uuid4()),
            "poll_id": poll["id"],
            "resident": {
                "id": str(uuid.uuid4()),
                "municipality_code": UTRECHT,
                "wijk_code": wijk,
                "buurt_code": buurt,
                "age_band": band,
                "sex": ("man", "vrouw")[i % 2],
                "self_selected": False,
            },
            "answers": answers(poll["definition"], ("vaak", "bijna_nooit")[i // 2 % 2]),
            "submitted_at": datetime.now(UTC).isoformat(),
        }
        for i, (wijk, buurt, band) in enumerate(people)
    ]
    sessions = sessionmaker(engines["responses"], expire_on_commit=False)
    run_in_transaction(
        sessions,
        lambda s: intake.record_batch(
            s, batch, secret=b"s", emit_many=add_events, today=lambda: datetime.now(UTC)
        ),
    )


def row_of(page: str, name: str) -> str:
    """The table row whose header cell starts with ``name`` (its first such row)."""
    found = re.search(rf"<tr[^>]*>\s*<th[^>]*>(?:<a[^>]*>)?{re.escape(name)}.*?</tr>", page, re.S)
    assert found, name
    return found.group(0)


def ready(session, url):
    """The page once the poll's results are released (503 while they are computed)."""
    return wait_for(
        lambda: (lambda r: r if r.status_code == 200 else None)(session.get(url, timeout=30)),
        timeout=60,
        message=f"{url} with the released results",
    )


def test_the_weighting_note_stands_beside_the_figures_it_affects_on_every_page(api, town, engines):
    """Regression (issue 15, 1d): the note that a wijk's weights cannot meet its CBS margins
    stood in the results document, the exports and (untested) the staff results page, but not
    in the safety overview, the trend or feedback's key figures. Every page now shows it, in
    Dutch, beside that wijk's figures — and not beside another wijk's."""
    admin = api.staff_token(UTRECHT, "admin")
    poll = published(api, admin, engines, {"template_id": "veiligheidsgevoel"})
    record_skewed(engines, poll)
    close(api, admin, poll["id"])
    session, _ = signed_in(api, "viewer")
    staff = f"/staff/peilingen/{poll['id']}"

    results = ready(session, api.url(f"{staff}/resultaten?vraag=vaak_onveilig&optie=vaak")).text
    west = row_of(results, "Wijk 01 West")
    assert UNMET in west and f"{WEST}: de CBS-cijfers" in west, west
    assert UNMET not in row_of(results, "Wijk 02 Noordwest")
    notes = re.search(r'<div class="bp-notes">.*?</div>', results, re.S).group(0)
    assert f"{WEST}: de CBS-cijfers zijn {UNMET}" in notes  # beside the gemeente figure too

    overview = ready(session, api.url(f"/staff/veiligheid?gebied={WEST}")).text
    assert UNMET in row_of(overview, "Hoe vaak voelt u zich onveilig")
    other = session.get(api.url(f"/staff/veiligheid?gebied={NOORDWEST}"), timeout=30).text
    assert "Hoe vaak voelt u zich onveilig" in other and UNMET not in other
    found = api.request("GET", "/admin/v1/overview", token=admin).json()
    (often,) = [
        q
        for a in found["areas"]
        if a["code"] == WEST
        for q in a["questions"]
        if q["question_id"] == "vaak_onveilig"
    ]
    assert any("cannot be met" in n for n in often["weighting_notes"])
    exported = api.request("GET", "/admin/v1/overview.csv", token=admin).content.decode()
    assert "weighting_note" in exported and "cannot be met" in exported

    chosen = f"vraag=vaak_onveilig&optie=vaak&gebied={WEST}"
    trend = ready(session, api.url(f"{staff}/verloop?{chosen}"))
    assert UNMET in row_of(trend.text, "1 · ")  # the wave's row
    assert UNMET in row_of(trend.text, "Wijk 01 West") and UNMET not in row_of(
        trend.text, "Wijk 02 Noordwest"
    )

    key_figures = [{"question_id": "vaak_onveilig", "area_code": c} for c in (WEST, NOORDWEST)]
    save_draft(api, admin, poll["id"], {**draft("Wat we hoorden"), "key_figures": key_figures})
    feedback_id = publish(api, admin, poll["id"])["feedback_id"]
    resident = requests.Session()
    resident.cookies.set(
        "bp_resident_access", resident_token(api, municipality=UTRECHT, buurt="BU03440111")
    )
    page = resident.get(api.url(f"/app/{UTRECHT}/terugkoppeling/{feedback_id}"), timeout=30)
    assert page.status_code == 200, page.text[:500]
    # Each key figure's table with what follows it up to the next heading: its notes.
    west_figure, noordwest_figure = (
        part.split("<h2")[0] for part in page.text.split("<table")[1:3]
    )
    assert "Over de weging:" in west_figure and UNMET in west_figure
    assert "Hoe vaak voelt u zich onveilig" in noordwest_figure and UNMET not in noordwest_figure
