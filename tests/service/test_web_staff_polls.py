"""The staff pages around a draft and the panel, over real HTTP with every service behind the
gateway, without JavaScript: a template and a draft previewed as the resident will see them
(the resident app's own question markup; "Voorbeeld bijwerken" saves nothing), the audience
chosen on the list beside the buurt map with the number of panel members it reaches (a count
below k hidden), publishing now or at a set time, and the panel's composition against CBS with
every small count hidden."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from tests.conftest import wait_for
from tests.support.panel import UTRECHT, profile, utrecht_files

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.fixture
def town(api, service_config):
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.import_areas(UTRECHT, utrecht_files())
    return {"admin": api.staff_token(UTRECHT, "admin")}


def join(api, admin, service_config, n, wijk, buurt, **about):
    """``n`` residents of ``buurt`` joined with letter codes (through panel's RPC: the join
    route's rate limit per address is for people, not for a test making a panel)."""
    batch = api.request(
        "POST", "/admin/v1/invitation-batches", token=admin, json={"per_wijk": {wijk: n}}
    ).json()
    with ClusterRpcProxy(service_config("panel")) as rpc:
        for line in batch["csv"].splitlines()[1:]:
            rpc.panel.join_with_code(
                {"invitation_code": line.split(",")[0], **profile(buurt_code=buurt, **about)}
            )


def browser(api, role="editor"):
    session = requests.Session()
    session.cookies.set("bp_staff_access", api.staff_token(UTRECHT, role))
    start = session.get(api.url("/staff/"), timeout=30)
    return session, re.search(r'data-csrf="([^"]+)"', start.text).group(1)


def post(session, api, path, data, csrf):
    return session.post(
        api.url(path), data={"csrf_token": csrf, **data}, timeout=30, allow_redirects=False
    )


def draft(api, admin, **body):
    made = api.request(
        "POST", "/admin/v1/polls", token=admin, json={"template_id": "veiligheidsgevoel", **body}
    )
    assert made.status_code == 201, made.text
    return made.json()


def test_a_template_and_a_draft_are_previewed_as_the_resident_sees_them(api, town):
    session, csrf = browser(api)
    # No JavaScript: "Voorbeeld tonen" posts the chosen template and shows it, nothing made.
    shown = post(
        session,
        api,
        "/staff/peilingen/nieuw",
        {"template_id": "veiligheidsgevoel", "preview": "ja"},
        csrf,
    )
    assert shown.status_code == 200, shown.text[:500]
    assert 'id="poll-preview"' in shown.text and 'class="bp-question' in shown.text
    assert 'value="veiligheidsgevoel" aria-describedby' in shown.text or "checked" in shown.text
    assert api.request("GET", "/admin/v1/polls", token=town["admin"]).json() == []
    # The fragment htmx fetches when a template is chosen.
    fragment = session.get(api.url("/staff/sjablonen/veiligheidsgevoel/voorbeeld"), timeout=30)
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section id="poll-preview"')
    assert fragment.headers["Cache-Control"] == "no-store"

    poll = draft(api, town["admin"])
    edit = f"/staff/peilingen/{poll['id']}/bewerken"
    page = session.get(api.url(edit), timeout=30).text
    assert 'id="poll-preview"' in page and 'hx-post="/staff/peilingen/' in page
    first = poll["definition"]["questions"][0]
    assert f'id="question-{first["id"]}"' in page  # the resident app's markup
    version = re.search(r'name="version" value="(\d+)"', page).group(1)
    base = re.search(r'name="base" value="([^"]*)"', page).group(1)
    assert base  # the definition the form's question numbers name
    # "Voorbeeld bijwerken": the new title and question shown, nothing saved.
    changes = {
        "version": version,
        "base": html.unescape(base),
        "title": "Veilig in Oost",
        "q0-text": "Hoe veilig voelt u zich in uw straat?",
        "q0-required": "ja",
        "new-type": "single_choice",
        "new-text": "Kent u uw buren?",
        "new-options": "Ja\nNee",
        "next": "preview",
    }
    previewed = post(session, api, edit, changes, csrf)
    assert previewed.status_code == 200, previewed.text[:500]
    preview = previewed.text.split('id="poll-preview"', 1)[1]
    assert "Veilig in Oost" in preview and "Kent u uw buren?" in preview
    assert "Hoe veilig voelt u zich in uw straat?" in preview
    saved = api.request("GET", f"/admin/v1/polls/{poll['id']}", token=town["admin"]).json()
    assert saved["version"] == poll["version"] and saved["title"] == poll["title"]
    # The new question is now part of the form (numbered after the others); saving from the
    # previewed form keeps it once, with the question texts as previewed.
    again = previewed.text
    base = re.search(r'name="base" value="([^"]*)"', again).group(1)
    count = len(re.findall(r'name="q\d+-text"', again))
    assert count == len(poll["definition"]["questions"]) + 1
    fields = {f"q{i}-required": "ja" for i in range(count)}
    stored = post(
        session,
        api,
        edit,
        {
            **fields,
            "version": version,
            "base": html.unescape(base),
            "title": "Veilig in Oost",
            "q0-text": "Hoe veilig voelt u zich in uw straat?",
            "audience_kind": "municipality",
            "next": "save",
        },
        csrf,
    )
    assert stored.status_code == 303, re.findall(r"bp-error-summary.*?</ul>", stored.text, re.S)
    assert stored.headers["Location"].endswith("?klaar=opgeslagen")
    saved = api.request("GET", f"/admin/v1/polls/{poll['id']}", token=town["admin"]).json()
    texts = [q["text"] for q in saved["definition"]["questions"]]
    assert texts[0] == "Hoe veilig voelt u zich in uw straat?"
    assert texts.count("Kent u uw buren?") == 1 and texts[-1] == "Kent u uw buren?"
    # The fragment htmx posts while editing: the unsaved text, for an editor only.
    fragment = post(
        session,
        api,
        f"/staff/peilingen/{poll['id']}/voorbeeld",
        {"title": "Nog niet opgeslagen", "base": ""},
        csrf,
    )
    assert fragment.status_code == 200 and "Nog niet opgeslagen" in fragment.text
    viewer, viewer_csrf = browser(api, "viewer")
    refused = post(viewer, api, f"/staff/peilingen/{poll['id']}/voorbeeld", {}, viewer_csrf)
    assert refused.status_code == 403


def reach(api, admin, **query):
    answer = api.request("GET", "/admin/v1/audience/reach", token=admin, params=query)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_audience_on_the_map_with_the_panel_members_it_reaches(api, town, service_config):
    admin = town["admin"]
    join(api, admin, service_config, 12, "WK034401", "BU03440111")
    join(api, admin, service_config, 3, "WK034403", "BU03440311")
    # notify counts from its projection of the panel: wait for every resident to reach it.
    wait_for(lambda: reach(api, admin)["members"] == 15, message="the residents in notify")
    assert reach(api, admin, kind="areas", area_codes="WK034401")["members"] == 12
    assert reach(api, admin, kind="areas", area_codes="BU03440111,WK034401")["members"] == 12
    assert reach(api, admin, kind="areas", area_codes="WK034402")["members"] == 0  # zeros shown
    small = reach(api, admin, kind="areas", area_codes="WK034403")
    assert small == {"members": None, "suppressed": True, "k": 10}  # 3: below k, hidden
    # A sample: at most the sample size per area (12 → 10, 3 → 3: 13).
    assert (
        reach(api, admin, kind="sample", sample_size=10, area_codes="WK034401,WK034403")["members"]
        == 13
    )
    refused = api.request("GET", "/admin/v1/audience/reach", token=admin, params={"kind": "sample"})
    assert refused.status_code == 422
    bad = api.request(
        "GET", "/admin/v1/audience/reach", token=admin, params={"area_codes": "WK1;DROP"}
    )
    assert bad.status_code == 422

    poll = draft(api, admin)
    session, csrf = browser(api)
    path = f"/staff/peilingen/{poll['id']}/doelgroep"
    page = session.get(api.url(path), timeout=30)
    assert page.status_code == 200
    assert "15 panelleden" in page.text  # the whole municipality
    assert page.text.count("data-code=") > 10  # the buurt map, each buurt clickable
    assert 'id="a-BU03440111"' in page.text  # and the list it is a way into
    # Each wijk named over its buurten: a click on the name ticks the whole wijk (app.js).
    assert re.search(
        r'data-wijk-code="WK034401"[^>]*><title>Wijk 01 West: klik om de hele wijk aan of uit '
        r"te vinken</title>West</text>",
        page.text,
    )
    # Without JavaScript: "Bereik berekenen" counts the ticked areas, nothing saved.
    counted = post(
        session,
        api,
        path,
        {"audience_kind": "areas", "area_codes": ["WK034403"], "action": "count"},
        csrf,
    )
    assert counted.status_code == 200
    assert "minder dan 10 panelleden" in counted.text and ">3<" not in counted.text
    assert 'id="a-WK034403" name="area_codes" value="WK034403" checked' in counted.text
    # The map shades the wijk's buurten (and only those) as in the audience.
    chosen = re.findall(r'<path data-code="(BU\d+)"[^>]*fill="#1f4e79"', counted.text)
    assert chosen and all(code.startswith("BU034403") for code in chosen)
    # The fragment htmx fetches when a box changes.
    fragment = session.get(
        api.url(path + "/bereik"),
        params={"audience_kind": "areas", "area_codes": ["WK034401"]},
        timeout=30,
    )
    assert fragment.status_code == 200 and "12 panelleden" in fragment.text
    assert fragment.text.lstrip().startswith('<div id="audience-reach"')
    version = re.search(r'name="version" value="(\d+)"', page.text).group(1)
    saved = post(
        session,
        api,
        path,
        {
            "version": version,
            "audience_kind": "areas",
            "area_codes": ["WK034401", "BU03440311"],
            "action": "save",
        },
        csrf,
    )
    assert saved.status_code == 303 and saved.headers["Location"].endswith("?klaar=doelgroep")
    stored = api.request("GET", f"/admin/v1/polls/{poll['id']}", token=admin).json()
    assert stored["audience"]["area_codes"] == ["WK034401", "BU03440311"]
    # An audience the polls service refuses is said on the form.
    empty = post(
        session,
        api,
        path,
        {"version": str(stored["version"]), "audience_kind": "areas", "action": "save"},
        csrf,
    )
    assert empty.status_code == 422 and "bp-error-summary" in empty.text


def test_publish_now_or_at_a_set_time_and_close(api, town):
    admin = town["admin"]
    session, csrf = browser(api)
    poll = draft(api, admin)
    path = f"/staff/peilingen/{poll['id']}/publiceren"
    form = session.get(api.url(path), timeout=30).text
    assert 'type="datetime-local"' in form and 'name="when" value="now" checked' in form
    past = post(session, api, path, {"when": "later", "opens_at": "2020-01-01T09:00"}, csrf)
    assert past.status_code == 422 and "Kies een moment in de toekomst" in past.text
    garbled = post(session, api, path, {"when": "later", "opens_at": "morgen"}, csrf)
    assert garbled.status_code == 422
    assert api.request("GET", f"/admin/v1/polls/{poll['id']}", token=admin).json()["status"] == (
        "draft"
    )
    later = (datetime.now(AMSTERDAM) + timedelta(days=2)).replace(hour=9, minute=0)
    scheduled = post(
        session, api, path, {"when": "later", "opens_at": later.strftime("%Y-%m-%dT%H:%M")}, csrf
    )
    assert scheduled.headers["Location"].endswith("?klaar=ingepland"), scheduled.text[:500]
    stored = api.request("GET", f"/admin/v1/polls/{poll['id']}", token=admin).json()
    assert stored["status"] == "scheduled"
    assert datetime.fromisoformat(stored["opens_at"]) == later.replace(second=0, microsecond=0)
    shown = session.get(api.url(f"/staff/peilingen/{poll['id']}?klaar=ingepland"), timeout=30)
    assert "ingepland" in shown.text and f"{later:%H:%M}" in shown.text
    # A scheduled poll can be closed before it opens (it was never announced).
    closed = post(session, api, f"/staff/peilingen/{poll['id']}/sluiten", {}, csrf)
    assert closed.headers["Location"].endswith("?klaar=gesloten")
    # Now: a draft that had an opening time set opens at once.
    other = draft(api, admin, opens_at=later.isoformat())
    now = post(session, api, f"/staff/peilingen/{other['id']}/publiceren", {"when": "now"}, csrf)
    assert now.headers["Location"].endswith("?klaar=gepubliceerd")
    assert (
        api.request("GET", f"/admin/v1/polls/{other['id']}", token=admin).json()["status"] == "open"
    )


def test_publishing_a_second_poll_after_the_same_wave_is_refused_in_dutch(api, town):
    """Regression: two polls could be published after the same wave of a series. Now the
    publish page answers 409 with the error summary in Dutch, naming the poll that follows
    that wave and linking to it; the draft stays a draft."""
    admin = town["admin"]
    session, csrf = browser(api)
    first = draft(api, admin)
    opened = api.request("POST", f"/admin/v1/polls/{first['id']}/publish", token=admin)
    assert opened.status_code == 200, opened.text
    taken, late = (draft(api, admin, previous_poll_id=first["id"]) for _ in range(2))
    done = post(session, api, f"/staff/peilingen/{taken['id']}/publiceren", {"when": "now"}, csrf)
    assert done.headers["Location"].endswith("?klaar=gepubliceerd")
    refused = post(session, api, f"/staff/peilingen/{late['id']}/publiceren", {"when": "now"}, csrf)
    assert refused.status_code == 409
    text = html.unescape(refused.text)
    assert "bp-error-summary" in text and 'href="#f-previous_poll_id"' in text
    assert "volgt al op dezelfde meting van deze reeks en is gepubliceerd" in text
    assert f'href="/staff/peilingen/{taken["id"]}"' in text and "(meting 2)" in text
    assert api.request("GET", f"/admin/v1/polls/{late['id']}", token=admin).json()["status"] == (
        "draft"
    )


def test_the_panel_composition_against_cbs_hides_every_small_count(api, town, service_config):
    admin = town["admin"]
    join(api, admin, service_config, 12, "WK034401", "BU03440111", birth_year=1980, sex="vrouw")
    join(api, admin, service_config, 3, "WK034403", "BU03440311", birth_year=1950, sex="man")
    document = api.request("GET", "/admin/v1/panel/composition", token=admin).json()
    by_code = {a["code"]: a for a in document["by_wijk"]}
    assert by_code[UTRECHT]["members"] == 15 and not by_code[UTRECHT]["hidden"]
    # 3 in a wijk is below k; and 12 would give it away (15 - 12), so it is hidden too.
    assert by_code["WK034403"]["hidden"] and by_code["WK034401"]["hidden"]
    assert by_code["WK034402"]["members"] == 0  # a zero rests on nobody: shown
    gemeente = {g["group"]: g for g in by_code[UTRECHT]["groups"]}
    # The 3 aged 65+ (men) are hidden, and with them the 12 (else 15 - 12 gives them away).
    assert gemeente["65_plus"]["hidden"] and gemeente["man"]["hidden"]
    assert gemeente["45_64"]["hidden"] and gemeente["vrouw"]["hidden"]
    assert gemeente["15_24"]["members"] == 0 and gemeente["15_24"]["gap"] is not None
    assert gemeente["vrouw"]["cbs_share"] is not None and gemeente["vrouw"]["share"] is None
    every = [a["members"] for a in document["by_wijk"]] + [
        g["members"] for a in document["by_wijk"] for g in a["groups"]
    ]
    assert not [n for n in every if n is not None and 0 < n < 10]

    session, _ = browser(api, "viewer")
    page = session.get(api.url("/staff/panel"), timeout=30)
    assert page.status_code == 200 and "Samenstelling van het panel" in page.text
    assert "verborgen (minder dan 10 leden" in page.text
    cells = re.findall(r'utrecht-table__cell--numeric">(\d+)</td>', page.text)
    assert "15" in cells and not [c for c in cells if 0 < int(c) < 10]
    wijk = session.get(api.url("/staff/panel?gebied=WK034402"), timeout=30)
    assert wijk.status_code == 200 and 'value="WK034402" selected' in wijk.text
