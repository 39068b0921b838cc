"""Paper questionnaires against the real broker and databases (issue 14): a print run of a
poll's forms for a buurt of its audience, a returned form keyed in by its code that is stored
and counted once (in that buurt, with the form's age and sex, channel paper), a second entry of
the same code refused with when the first was, and every kind of bad input a clear 4xx — over
the JSON API and over the data-entry pages."""

from __future__ import annotations

import html
import re
import uuid
from html.parser import HTMLParser

import pytest
import requests
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy.orm import Session

from services.responses.models import Respondents, Response
from tests.conftest import wait_for
from tests.support.answers import minimal_answers
from tests.support.panel import UTRECHT, utrecht_files, utrecht_files_as

AMERSFOORT = "GM0307"
OVERVECHT = "WK034403"
IN_OVERVECHT = "BU03440311"
IN_WEST = "BU03440112"  # not in the poll's audience below


@pytest.fixture
def paper(api, service_config):
    """Utrecht and Amersfoort with areas; in Utrecht an open poll for wijk Overvecht, in both a
    print run of forms (Utrecht: three for a buurt of Overvecht)."""
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.create_municipality({"code": AMERSFOORT, "name": "Amersfoort"})
        rpc.panel.import_areas(UTRECHT, utrecht_files())
        rpc.panel.import_areas(AMERSFOORT, utrecht_files_as(AMERSFOORT))
    editors = {c: api.staff_token(c, "editor") for c in (UTRECHT, AMERSFOORT)}
    polls = {}
    for code, audience in (
        (UTRECHT, {"kind": "areas", "area_codes": [OVERVECHT]}),
        (AMERSFOORT, {"kind": "municipality"}),
    ):
        made = api.request(
            "POST",
            "/admin/v1/polls",
            token=editors[code],
            json={"template_id": "veiligheidsgevoel", "audience": audience},
        ).json()
        published = api.request(
            "POST", f"/admin/v1/polls/{made['id']}/publish", token=editors[code]
        )
        assert published.status_code == 200, published.text
        polls[code] = made
    runs = {
        UTRECHT: make_run(api, editors[UTRECHT], polls[UTRECHT]["id"], IN_OVERVECHT, 3),
        AMERSFOORT: make_run(api, editors[AMERSFOORT], polls[AMERSFOORT]["id"], "BU03070311", 1),
    }
    invoerder = api.staff_token(UTRECHT, "invoerder")
    # The gateway learns of the open poll from its event: wait until data entry can see it.
    wait_for(
        lambda: api.request("GET", "/admin/v1/paper/polls", token=invoerder).json() or None,
        message="the open poll in the gateway's cache",
    )
    return {"polls": polls, "runs": runs, "editors": editors, "invoerder": invoerder}


def make_run(api, token, poll_id, buurt, count):
    made = api.request(
        "POST",
        f"/admin/v1/polls/{poll_id}/paper-runs",
        token=token,
        json={"buurt_code": buurt, "count": count},
    )
    assert made.status_code == 201, made.text
    return made.json()


def key_in(api, token, poll_id, code, answers, **extra):
    return api.request(
        "POST",
        f"/admin/v1/polls/{poll_id}/paper-forms",
        token=token,
        json={"code": code, "answers": answers, **extra},
    )


def test_a_print_run_has_a_code_per_form_for_a_buurt_of_the_audience(api, paper):
    run = paper["runs"][UTRECHT]
    codes = [f["code"] for f in run["forms"]]
    assert len(codes) == len(set(codes)) == 3
    assert all(
        re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", c)
        for c in codes
    )
    assert run["buurt_code"] == IN_OVERVECHT and run["wijk_code"] == OVERVECHT and run["keyed"] == 0
    poll_id = paper["polls"][UTRECHT]["id"]
    outside = api.request(
        "POST",
        f"/admin/v1/polls/{poll_id}/paper-runs",
        token=paper["editors"][UTRECHT],
        json={"buurt_code": IN_WEST, "count": 2},
    )
    assert outside.status_code == 422
    assert outside.json()["errors"][0]["code"] == "not_in_audience"
    # The run prints again (the same codes, in the same order), for an editor only.
    again = api.request(
        "GET",
        f"/admin/v1/polls/{poll_id}/paper-runs/{run['run_id']}",
        token=paper["editors"][UTRECHT],
    )
    assert [f["code"] for f in again.json()["forms"]] == codes
    viewer = api.staff_token(UTRECHT, "viewer")
    path = f"/admin/v1/polls/{poll_id}/paper-runs/{run['run_id']}"
    assert api.request("GET", path, token=viewer).status_code == 403
    # Another municipality's run looks like no run.
    theirs = paper["runs"][AMERSFOORT]
    assert (
        api.request(
            "GET",
            f"/admin/v1/polls/{poll_id}/paper-runs/{theirs['run_id']}",
            token=paper["editors"][UTRECHT],
        ).status_code
        == 404
    )


def test_a_paper_form_keyed_in_counts_once_and_a_second_entry_is_refused(
    api, paper, engines, service_config
):
    poll = paper["polls"][UTRECHT]
    code = paper["runs"][UTRECHT]["forms"][0]["code"]
    invoerder = paper["invoerder"]
    looked_up = api.request(
        "GET", f"/admin/v1/polls/{poll['id']}/paper-forms/{code}", token=invoerder
    )
    assert looked_up.status_code == 200, looked_up.text
    assert looked_up.json()["keyed_at"] is None and looked_up.json()["buurt_code"] == IN_OVERVECHT

    answers = minimal_answers(poll["definition"])
    first = key_in(api, invoerder, poll["id"], code, answers, age_band="65_plus", sex="vrouw")
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "accepted" and first.json()["buurt_code"] == IN_OVERVECHT

    # The same form again — typed in lower case, without dashes — is refused, saying when.
    typed = code.replace("-", "").lower()
    second = key_in(api, invoerder, poll["id"], typed, answers)
    assert second.status_code == 409, second.text
    problem = second.json()
    assert problem["errors"][0]["code"] == "already_keyed"
    assert problem["errors"][0]["keyed_at"] == first.json()["keyed_at"]
    assert (
        api.request(
            "GET", f"/admin/v1/polls/{poll['id']}/paper-forms/{typed}", token=invoerder
        ).json()["keyed_at"]
        == first.json()["keyed_at"]
    )

    # Stored once, in the form's buurt with the form's age and sex, and counted in the results'
    # counters there (what results are computed from).
    poll_uuid = uuid.UUID(poll["id"])

    def stored():
        with Session(engines["responses"]) as s:
            rows = s.scalars(sa.select(Response).where(Response.poll_id == poll_uuid)).all()
        return rows or None

    rows = wait_for(stored, message="the paper answer recorded")
    assert len(rows) == 1
    assert (rows[0].buurt_code, rows[0].wijk_code) == (IN_OVERVECHT, OVERVECHT)
    assert (rows[0].age_band, rows[0].sex, rows[0].self_selected) == ("65_plus", "vrouw", False)
    with Session(engines["responses"]) as s:
        counted = s.execute(
            sa.select(Respondents.area_code, sa.func.sum(Respondents.n))
            .where(Respondents.poll_id == poll_uuid, Respondents.question_id == "*")
            .group_by(Respondents.area_code)
        ).all()
    assert dict(counted) == {UTRECHT: 1, OVERVECHT: 1, IN_OVERVECHT: 1}
    with ClusterRpcProxy(service_config("responses")) as rpc:
        receipt = rpc.responses.receipt(first.json()["receipt_id"])
    assert receipt["status"] == "recorded"
    runs = api.request(
        "GET", f"/admin/v1/polls/{poll['id']}/paper-runs", token=paper["editors"][UTRECHT]
    ).json()
    assert [r["keyed"] for r in runs] == [1]


def test_bad_paper_input_is_a_clear_4xx(api, paper):
    poll = paper["polls"][UTRECHT]
    invoerder = paper["invoerder"]
    answers = minimal_answers(poll["definition"])
    code = paper["runs"][UTRECHT]["forms"][1]["code"]

    def refusal(response, status):
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/problem+json"
        return response.json()["errors"][0]

    unknown = key_in(api, invoerder, poll["id"], "AAAA-BBBB-CCCC", answers)
    assert refusal(unknown, 422)["code"] == "unknown_code"
    theirs = paper["runs"][AMERSFOORT]["forms"][0]["code"]
    assert refusal(key_in(api, invoerder, poll["id"], theirs, answers), 422)["code"] == (
        "unknown_code"
    )
    wrong_answers = key_in(
        api, invoerder, poll["id"], code, {**answers, "veilig_buurt": "geen_optie"}
    )
    assert refusal(wrong_answers, 422)["field"] == "answers.veilig_buurt"
    bad_age = key_in(api, invoerder, poll["id"], code, answers, age_band="0_14")
    assert refusal(bad_age, 422)["field"] == "age_band"
    # Nothing was marked by the refusals: the form can still be keyed in.
    assert key_in(api, invoerder, poll["id"], code, answers).status_code == 202

    # A code of another of our polls names it; a closed poll refuses.
    second = api.request(
        "POST",
        "/admin/v1/polls",
        token=paper["editors"][UTRECHT],
        json={"template_id": "veiligheidsgevoel", "audience": {"kind": "municipality"}},
    ).json()
    api.request("POST", f"/admin/v1/polls/{second['id']}/publish", token=paper["editors"][UTRECHT])
    other = make_run(api, paper["editors"][UTRECHT], second["id"], IN_WEST, 1)["forms"][0]["code"]
    assert refusal(key_in(api, invoerder, poll["id"], other, answers), 422)["code"] == "other_poll"
    closed = api.request(
        "POST", f"/admin/v1/polls/{second['id']}/close", token=paper["editors"][UTRECHT]
    )
    assert closed.status_code == 200, closed.text

    # The gateway hears of the closing from its event: until then it still takes answers, and
    # responses refuses those recorded after the close (poll_closed on the receipt).
    lookup = f"/admin/v1/polls/{second['id']}/paper-forms/{other}"
    wait_for(
        lambda: api.request("GET", lookup, token=invoerder).status_code == 409,
        interval=0.5,
        message="the gateway knowing the poll closed",
    )
    after_close = key_in(api, invoerder, second["id"], other, answers)
    assert refusal(after_close, 409)["code"] == "poll_closed"
    printing = api.request(
        "POST",
        f"/admin/v1/polls/{second['id']}/paper-runs",
        token=paper["editors"][UTRECHT],
        json={"buurt_code": IN_WEST, "count": 1},
    )
    assert printing.status_code == 409


def test_a_viewer_may_not_key_in_and_an_invoerder_may_not_print(api, paper):
    poll = paper["polls"][UTRECHT]
    code = paper["runs"][UTRECHT]["forms"][2]["code"]
    viewer = api.staff_token(UTRECHT, "viewer")
    answers = minimal_answers(poll["definition"])
    assert key_in(api, viewer, poll["id"], code, answers).status_code == 403
    printing = api.request(
        "POST",
        f"/admin/v1/polls/{poll['id']}/paper-runs",
        token=paper["invoerder"],
        json={"buurt_code": IN_OVERVECHT, "count": 1},
    )
    assert printing.status_code == 403
    # An editor may key in a form too.
    assert key_in(api, paper["editors"][UTRECHT], poll["id"], code, answers).status_code == 202


# --- the pages ---------------------------------------------------------------------------------


def browser(api, token):
    session = requests.Session()
    session.cookies.set("bp_staff_access", token)
    page = session.get(api.url("/staff/invoer"), timeout=30)
    csrf = re.search(r'data-csrf="([^"]+)"', page.text).group(1)
    return session, csrf


def as_form(definition, answers):
    """Answers as the entry form sends them (web/pollform.py's field names)."""
    types = {q["id"]: q["type"] for q in definition["questions"]}
    fields = {}
    for qid, value in answers.items():
        if types[qid] == "ranking":
            fields.update({f"q.{qid}.{option}": i for i, option in enumerate(value, start=1)})
        elif types[qid] == "location":
            fields.update({f"q.{qid}.lat": value["lat"], f"q.{qid}.lon": value["lon"]})
        else:
            fields[f"q.{qid}"] = value
    return fields


def test_the_data_entry_pages_key_a_form_in_once_and_say_what_to_fix(api, paper):
    poll = paper["polls"][UTRECHT]
    code = paper["runs"][UTRECHT]["forms"][0]["code"]
    session, csrf = browser(api, paper["invoerder"])
    home = session.get(api.url("/staff/invoer"), timeout=30)
    assert home.status_code == 200 and f"/staff/invoer/{poll['id']}" in home.text
    entry = f"/staff/invoer/{poll['id']}"
    assert session.get(api.url(entry), timeout=30).status_code == 200

    unknown = session.get(api.url(entry), params={"code": "AAAA-BBBB-CCCC"}, timeout=30)
    assert unknown.status_code == 422
    assert "Deze code staat niet op een van onze papieren formulieren" in unknown.text

    questions = session.get(api.url(entry), params={"code": code}, timeout=30)
    assert questions.status_code == 200 and 'name="q.veilig_buurt"' in questions.text

    form = {"csrf_token": csrf, "code": code, "age_band": "45_64"}
    incomplete = session.post(api.url(entry), data=form, timeout=30, allow_redirects=False)
    assert incomplete.status_code == 422 and "Beantwoord deze vraag." in incomplete.text

    form.update(as_form(poll["definition"], minimal_answers(poll["definition"])))
    review = session.post(api.url(entry), data=form, timeout=30, allow_redirects=False)
    assert review.status_code == 200 and "Bevestigen en tellen" in review.text
    saved = session.post(
        api.url(entry), data=kept(review.text, step="confirm"), timeout=30, allow_redirects=False
    )
    assert saved.status_code == 303, saved.text[:500]
    assert saved.headers["Location"] == f"{entry}?ingevoerd={code}"

    # The same form again: refused at every step (the answers form, the review, the confirm).
    for step in ("review", "confirm"):
        again = session.post(
            api.url(entry), data={**form, "step": step}, timeout=30, allow_redirects=False
        )
        assert again.status_code == 409
        assert f"Formulier {code} is al ingevoerd" in again.text


def kept(page, **extra):
    """The review page's form as the browser sends it: its hidden fields (CSRF token, code and
    every keyed-in answer), plus the button pressed."""
    fields = [
        (name, html.unescape(value))
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    ]
    return fields + list(extra.items())


class FilledIn(HTMLParser):
    """The values a page's form fields show: checked radios and checkboxes, selected options,
    text boxes and text areas that are not empty (hidden fields left out)."""

    def __init__(self):
        super().__init__()
        self.values, self.select, self.area = {}, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("hidden", "submit"):
            if a.get("type") in ("radio", "checkbox"):
                if "checked" in a:
                    self.values.setdefault(name, []).append(a.get("value"))
            elif a.get("value"):
                self.values.setdefault(name, []).append(a["value"])
        elif tag == "select":
            self.select = name
        elif tag == "option" and self.select and "selected" in a and a.get("value"):
            self.values.setdefault(self.select, []).append(a["value"])
        elif tag == "textarea":
            self.area = name

    def handle_endtag(self, tag):
        if tag == "select":
            self.select = None
        elif tag == "textarea":
            self.area = None

    def handle_data(self, data):
        if self.area and data.strip():
            self.values.setdefault(self.area, []).append(data)


def filled(page):
    parser = FilledIn()
    parser.feed(page)
    return parser.values


def test_a_keyed_in_form_is_reviewed_before_it_counts_and_back_keeps_every_value(
    api, paper, engines
):
    """Keying in through the pages: "Controleren" shows what was keyed in, in words, and stores
    nothing; "Terug naar het formulier" gives the form back with every value in it; only
    "Bevestigen en tellen" counts the form — once."""
    poll = paper["polls"][UTRECHT]
    definition = poll["definition"]
    code = paper["runs"][UTRECHT]["forms"][1]["code"]
    session, csrf = browser(api, paper["invoerder"])
    entry = f"/staff/invoer/{poll['id']}"
    answers = minimal_answers(definition)
    answers.pop("oorzaken", None)
    answers.update(
        vaak_onveilig="bijna_nooit",  # so oorzaken does not apply
        cijfer_veiligheid="dont_know",
        veilig_buurt=4,
        onveilige_plek={"lat": 52.09, "lon": 5.12},
        waarom_plek='Lantaarn "kapot" & donker',
    )
    form = {"csrf_token": csrf, "code": code, "age_band": "45_64", **as_form(definition, answers)}

    review = session.post(api.url(entry), data=form, timeout=30, allow_redirects=False)
    assert review.status_code == 200, review.text[:500]
    text = html.unescape(review.text)
    assert "Na bevestigen telt het antwoord mee en kan het niet meer worden gewijzigd." in text
    assert code in text and "Vernieling" not in text
    assert "4: Veilig" in text  # the scale's step in words
    assert "Weet niet / geen mening" in text  # cijfer_veiligheid: don't know
    assert "(Bijna) nooit" in text
    assert "Niet van toepassing na een eerder antwoord" in text  # oorzaken
    assert "Op de kaart gekozen punt: 52.09000, 5.12000" in text
    assert 'Lantaarn "kapot" & donker' in text
    ranked = [
        o["label"]
        for o in next(q for q in definition["questions"] if q["id"] == "maatregelen")["options"][:3]
    ]
    assert all(f"{i}. {label}" in text for i, label in enumerate(ranked, start=1))
    assert "45 tot en met 64 jaar" in text and "Niet ingevuld" in text  # sex left empty
    looked_up = f"/admin/v1/polls/{poll['id']}/paper-forms/{code}"
    assert api.request("GET", looked_up, token=paper["invoerder"]).json()["keyed_at"] is None

    # Back to the form: every value keyed in is there again.
    back = session.post(
        api.url(entry), data=kept(review.text, step="back"), timeout=30, allow_redirects=False
    )
    assert back.status_code == 200 and 'name="q.veilig_buurt"' in back.text
    shown = filled(back.text)
    for name, value in as_form(definition, answers).items():
        assert shown.get(name) == [str(value)], name
    assert shown["age_band"] == ["45_64"] and "sex" not in shown
    # Nothing stored or counted before confirming.
    assert api.request("GET", looked_up, token=paper["invoerder"]).json()["keyed_at"] is None
    poll_uuid = uuid.UUID(poll["id"])
    with Session(engines["responses"]) as s:
        assert (
            s.scalar(
                sa.select(sa.func.count())
                .select_from(Response)
                .where(Response.poll_id == poll_uuid)
            )
            == 0
        )

    # Reviewed again from the form given back (as it is, unchanged), then confirmed: counted,
    # once.
    resent = kept(back.text, step="review") + [(n, v) for n, vs in shown.items() for v in vs]
    again = session.post(api.url(entry), data=resent, timeout=30, allow_redirects=False)
    assert again.status_code == 200 and "Bevestigen en tellen" in again.text
    confirmed = session.post(
        api.url(entry), data=kept(again.text, step="confirm"), timeout=30, allow_redirects=False
    )
    assert confirmed.status_code == 303
    twice = session.post(
        api.url(entry), data=kept(again.text, step="confirm"), timeout=30, allow_redirects=False
    )
    assert twice.status_code == 409 and f"Formulier {code} is al ingevoerd" in twice.text

    def stored():
        with Session(engines["responses"]) as s:
            rows = s.scalars(sa.select(Response).where(Response.poll_id == poll_uuid)).all()
        return rows or None

    rows = wait_for(stored, message="the paper answer recorded")
    assert len(rows) == 1 and (rows[0].age_band, rows[0].sex) == ("45_64", None)


def test_a_form_keyed_in_by_a_colleague_during_review_is_refused_on_confirm(api, paper):
    poll = paper["polls"][UTRECHT]
    code = paper["runs"][UTRECHT]["forms"][2]["code"]
    session, csrf = browser(api, paper["invoerder"])
    entry = f"/staff/invoer/{poll['id']}"
    answers = minimal_answers(poll["definition"])
    form = {"csrf_token": csrf, "code": code, **as_form(poll["definition"], answers)}
    review = session.post(api.url(entry), data=form, timeout=30, allow_redirects=False)
    assert review.status_code == 200, review.text
    colleague = api.staff_token(UTRECHT, "invoerder")
    assert key_in(api, colleague, poll["id"], code, answers).status_code == 202
    confirmed = session.post(
        api.url(entry), data=kept(review.text, step="confirm"), timeout=30, allow_redirects=False
    )
    assert confirmed.status_code == 409
    assert f"Formulier {code} is al ingevoerd" in confirmed.text


def test_the_print_page_has_a_form_per_code_with_conditions_in_words(api, paper):
    poll = paper["polls"][UTRECHT]
    run = paper["runs"][UTRECHT]
    session, _ = browser(api, paper["editors"][UTRECHT])
    page = session.get(
        api.url(f"/staff/peilingen/{poll['id']}/papier/afdrukken"),
        params={"run": run["run_id"]},
        timeout=30,
    )
    assert page.status_code == 200
    assert page.text.count('class="bp-paper"') == 3
    for form in run["forms"]:
        assert form["code"] in page.text
    if any(q.get("show_if") for q in poll["definition"]["questions"]):
        assert "Alleen als u bij vraag" in page.text
    runs_page = session.get(api.url(f"/staff/peilingen/{poll['id']}/papier"), timeout=30)
    assert runs_page.status_code == 200 and run["run_id"] in runs_page.text
    # The data-entry role sees neither.
    clerk, _ = browser(api, paper["invoerder"])
    refused = clerk.get(api.url(f"/staff/peilingen/{poll['id']}/papier/afdrukken"), timeout=30)
    assert refused.status_code == 403
