"""The loop a local run shows on screen, used over HTTP as the staff's dashboard and the
residents' app would use it — nothing but the gateway's public API, the fake push service (the
residents' browsers) and the mail catcher (their inboxes):

define a region of the municipality's own → publish the veiligheidsgevoel template to three
wijken and the region → invitations delivered → residents answer → results per wijk and region
(weighted, with intervals and suppression) → feedback with two measures published → the
respondents notified → the poll's next wave (a series), in which the least safe wijk feels much
safer → the trend for that wijk: the change between the waves, its interval, significant or not.
In the first wave five residents of Overvecht without the app answer on paper: staff print five
forms for their buurt, a data-entry clerk (role invoerder) keys them in by their codes, and a
form keyed in twice is refused.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import requests

from deploy import demo_businesses, demo_panel
from deploy.seed import ADMIN_EMAIL, ADMIN_PASSWORD

MUNICIPALITY = "GM0344"
WIJKEN = ["WK034401", "WK034403", "WK034407"]  # West, Overvecht, Zuid
# The centre of the synthetic feeling of safety (1–5) per wijk: the results show a difference.
FEELING = {"WK034401": 3.9, "WK034403": 2.8, "WK034407": 3.5}
KEY_QUESTION, OFTEN_QUESTION = "veilig_buurt", "vaak_onveilig"
# Wave 2: after the measures, the least safe wijk feels much safer (a real change, so the trend
# has something to find); the other wijken stay as they were.
SAFER_IN_WAVE_2 = 4.5
# A region of the municipality's own (issue 13): Zuid without Lunetten, the part between the
# centre and the railway. Its difference with Zuid is Lunetten (11,370 inhabitants), with the
# gemeente far more: the region rule (docs/suppression.md, "Regions") accepts it, and both
# halves of Zuid have enough respondents for the region to be shown.
REGION = {
    "name": "Hoograven en Tolsteeg",
    "buurt_codes": [
        "BU03440721",  # Tolsteeg en Rotsoord
        "BU03440722",  # Oud Hoograven-Noord
        "BU03440723",  # Oud Hoograven-Zuid
        "BU03440731",  # Bokkenbuurt
        "BU03440732",  # Nieuw Hoograven-Noord
        "BU03440733",  # Nieuw Hoograven-Zuid
    ],
}
FEEDBACK_SUBJECT = "Wat we met uw mening doen"  # notify's Dutch title for feedback
# Paper forms (issue 14): printed for a buurt of Overvecht, keyed in by a data-entry clerk.
PAPER_BUURT, PAPER_FORMS = "BU03440311", 5  # Taag- en Rubicondreef en omgeving
PAPER_SEED = 14
CLERK_EMAIL, CLERK_PASSWORD = "invoer@utrecht.localhost", "stapel-antwoordkaarten-op-de-balie-1382"


def say(message: str) -> None:
    print(f"[buurtpeil] {message}", flush=True)


READ_RETRY_SECONDS = 300


class Http:
    """JSON over HTTP with one session per thread; a status other than ``expect`` raises."""

    def __init__(self, base: str):
        self.base = base
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def __call__(
        self,
        method: str,
        path: str,
        token: str | None = None,
        expect: int = 200,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        deadline = time.monotonic() + READ_RETRY_SECONDS
        while True:
            response = self.session.request(
                method, self.base + path, headers=headers, timeout=30, **kwargs
            )
            # A read the API answers "come back later" (results being computed): as documented,
            # after Retry-After, for a while.
            later = response.headers.get("Retry-After")
            if not (method == "GET" and response.status_code == 503 and later):
                break
            if time.monotonic() > deadline:
                break
            say(f"  {path}: {response.json().get('detail', 'not ready')}; again in {later} s")
            time.sleep(float(later))
        if response.status_code != expect:
            raise RuntimeError(f"{method} {path} → {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None


def wait_until_ready(
    http: Http, processes: list[tuple[str, subprocess.Popen[bytes]]], timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        dead = [name for name, p in processes if p.poll() is not None]
        if dead:
            raise RuntimeError(f"{', '.join(dead)} exited; see .run-{dead[0]}.log")
        try:
            response = http.session.get(http.base + "/readyz", timeout=5)
            if response.status_code == 200:
                return
            last = response.text
        except requests.ConnectionError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the gateway did not become ready within {timeout:.0f} s: {last}")


def wait_for(what: str, probe: Any, done: Any, timeout: float = 120, interval: float = 0.5) -> Any:
    """Call ``probe()`` until ``done(value)``; raise naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"timed out after {timeout:.0f} s waiting for {what} (last: {value})"
            )
        time.sleep(interval)


class Inboxes:
    """What reached the residents: decrypted pushes at the fake push service, e-mails at the
    mail catcher."""

    def __init__(self, push: Http, mail: Http):
        self.push, self.mail = push, mail
        self.seen = 0  # e-mails before the current round

    def pushes(self, kind: str, ref: str, naming: str) -> list[dict[str, Any]]:
        """Decrypted pushes of ``kind`` about ``ref`` whose text names ``naming``."""
        found = []
        for d in self.push("GET", "/deliveries"):
            payload = d["payload"]
            if not isinstance(payload, str):
                continue
            content = json.loads(payload)
            if (
                content.get("type") == kind
                and ref in (content.get("ref_id"), content.get("poll_id"))
                and naming in f"{content.get('title')} {content.get('body')}"
            ):
                found.append({**content, "subscription": d["subscription"]})
        return found

    def emails(self, subject_part: str) -> list[dict[str, Any]]:
        """E-mails since ``start_new_round`` (the mail catcher lists them in arrival order):
        the waves of a series have the same title."""
        return [
            m for m in self.mail("GET", "/messages")[self.seen :] if subject_part in m["subject"]
        ]

    def start_new_round(self) -> None:
        self.seen = len(self.mail("GET", "/messages"))


@dataclass
class LoopOutcome:
    invited: int
    delivered: int
    responded: int
    results_wijken: int
    feedback_notified: int
    poll_id: str
    feedback_id: str
    respondents: list[demo_panel.Member]
    audience: list[demo_panel.Member]
    results: dict[str, Any]
    regions: int = 0  # regions whose results are shown (wave 1, like the figures before)
    waves: int = 0  # waves in the series
    significant_changes: int = 0  # areas with a significant change in the tracked question
    paper: int = 0  # answers keyed in from paper forms (wave 1)
    changed_wijk: str = ""
    trend: dict[str, Any] = field(default_factory=dict)
    kinds: list[str] = field(default_factory=list)  # participant kinds that answered (wave 1)
    channels: list[str] = field(default_factory=list)  # channels answers came in by (wave 1)

    def summary(self) -> str:
        return (
            f"loop: invited={self.invited} delivered={self.delivered} "
            f"responded={self.responded} results_wijken={self.results_wijken} "
            f"feedback_notified={self.feedback_notified} regions={self.regions} "
            f"waves={self.waves} significant_changes={self.significant_changes} "
            f"kinds={','.join(self.kinds) or '-'} channels={','.join(self.channels) or '-'} "
            f"paper={self.paper}"
        )


@dataclass
class Wave:
    """One published wave of the poll, answered, closed and read."""

    poll: dict[str, Any]
    audience: list[demo_panel.Member]
    invited: int
    delivered: int
    respondents: list[demo_panel.Member]
    results: dict[str, Any]
    shown: int
    paper: int = 0


def walkthrough(
    base_url: str,
    push_url: str,
    mail_url: str,
    processes: list[tuple[str, subprocess.Popen[bytes]]],
    panel_size: int,
    seed: int = 1382,
) -> LoopOutcome:
    http, push, mail = Http(base_url), Http(push_url), Http(mail_url)
    inboxes = Inboxes(push, mail)
    rng = random.Random(seed)
    wait_until_ready(http, processes)
    say(f"gateway ready at {base_url}")

    staff = http("POST", "/admin/v1/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    admin = staff["access_token"]
    say(f"staff login: {staff['staff']['email']} ({staff['staff']['role']}, {MUNICIPALITY})")
    # Quiet hours (21:00-08:00 by default) would hold every push of a run at night: a demo
    # shows the loop now, so its municipality has none; a real one keeps them.
    http("PATCH", "/admin/v1/settings", admin, json={"quiet_hours": None})
    say("quiet hours off for this demo (a municipality's default is 21:00-08:00)")
    wijken = {a["code"]: a for a in http("GET", "/admin/v1/areas?level=wijk", admin)}
    buurten = http("GET", "/admin/v1/areas?level=buurt", admin)
    say(f"CBS areas: {len(wijken)} wijken and {len(buurten)} buurten of Utrecht")
    templates = http("GET", "/admin/v1/templates", admin)
    say(f"template library: {len(templates)} templates")

    # 1. The panel: residents over the buurten by population.
    members = demo_panel.profiles(buurten, panel_size, rng, date.today())
    by_wijk = Counter(m.wijk_code for m in members if m.channel == "webpush")
    batch = http(
        "POST", "/admin/v1/invitation-batches", admin, expect=201, json={"per_wijk": by_wijk}
    )
    codes = [tuple(line.split(",")[:2]) for line in batch["csv"].splitlines()[1:]]
    say(
        f"synthetic panel: {len(members)} residents over {len({m.buurt_code for m in members})} "
        f"buurten by population ({batch['size']} letter codes + Web Push, "
        f"{len(members) - batch['size']} open sign-ups by e-mail)"
    )
    demo_panel.join_panel(http, push, mail, MUNICIPALITY, members, codes, say)
    data_entry_clerk(http, mail, admin)

    # 2. A region of our own, then the poll to three wijken and the region; invitations go
    # out, residents answer, the poll closes and the results are read.
    region = http("POST", "/admin/v1/regions", admin, expect=201, json=REGION)
    say(
        f"region {region['code']} {region['name']!r}: {len(region['buurt_codes'])} buurten "
        "of Zuid between the centre and Lunetten"
    )
    names = ", ".join(wijken[w]["name"] for w in WIJKEN)
    audience_spec = {"kind": "areas", "area_codes": WIJKEN, "region_codes": [region["code"]]}
    first = run_wave(
        http, admin, inboxes, members, rng, wijken, FEELING, {"audience": audience_spec}, True
    )
    poll_id, results, respondents = first.poll["id"], first.results, first.respondents
    recorded, invited = len(respondents), first.invited

    # 3. Feedback with two measures; the respondents hear of it.
    least_safe = max(WIJKEN, key=lambda w: share_often(results, w))
    feedback = http(
        "PUT",
        f"/admin/v1/polls/{poll_id}/feedback",
        admin,
        json={
            "title": "Wat we hoorden over veiligheid, en wat we gaan doen",
            "heard": (
                f"{recorded} bewoners van {names} vulden de peiling in. In "
                f"{wijken[least_safe]['name']} voelen bewoners zich het minst veilig; donkere "
                "plekken en groepen op straat worden het vaakst genoemd."
            ),
            "plan": (
                "We verbeteren de verlichting op de plekken die u noemde en starten met de "
                "politie een buurtpreventieteam. Een extra camera plaatsen we niet: daarvoor is "
                "de overlast volgens de politie niet groot genoeg."
            ),
            "key_figures": [{"question_id": KEY_QUESTION}],
        },
    )
    measures = [
        {
            "title": f"Betere straatverlichting in {wijken[least_safe]['name']}",
            "description": "Donkere plekken uit de peiling krijgen ledverlichting.",
            "area_codes": [least_safe],
            "owner": "Stadsbeheer",
            "expected_date": f"{date.today().year + 1}-03-31",
        },
        {
            "title": "Buurtpreventieteam met de politie",
            "description": "Bewoners lopen met de wijkagent avondrondes.",
            "area_codes": WIJKEN,
            "owner": "Openbare Orde en Veiligheid",
            "expected_date": f"{date.today().year + 1}-06-30",
        },
    ]
    for measure in measures:
        http(
            "POST", f"/admin/v1/polls/{poll_id}/feedback/measures", admin, expect=201, json=measure
        )
    http("POST", f"/admin/v1/polls/{poll_id}/feedback/publish", admin)
    feedback_id = feedback["feedback_id"]
    say(f"feedback published with {len(measures)} measures: {feedback['title']!r}")
    notified = wait_for(
        "the feedback notifications",
        lambda: reached(
            inboxes, "feedback", feedback_id, feedback["title"], FEEDBACK_SUBJECT, members
        ),
        lambda who: len(who) >= len(respondents),
    )
    expect_exactly("feedback notifications", notified, respondents)
    say(
        f"feedback notifications: {len(notified)}, exactly the {len(respondents)} respondents "
        f"({sum(m.channel == 'email' for m in respondents)} by e-mail); "
        f"the {invited - recorded} who did not answer got none"
    )

    # 4. The next wave of the series, a year on: the least safe wijk feels much safer now.
    inboxes.start_new_round()
    feeling = {**FEELING, least_safe: SAFER_IN_WAVE_2}
    second = run_wave(
        http,
        admin,
        inboxes,
        members,
        rng,
        wijken,
        feeling,
        {"previous_poll_id": poll_id, "audience": audience_spec},
    )
    trend = http("GET", f"/admin/v1/polls/{second.poll['id']}/trend", admin)
    significant = print_trend(trend, least_safe, wijken)

    # 5. Businesses (issue 14): ten ondernemers of the city centre join and answer their poll.
    business = demo_businesses.businesses_in_the_centre(
        http, admin, buurten, rng, say, residents=members
    )
    kinds = answered_as(results, "kinds") or ["resident"]
    if business["answered"] and "ondernemer" not in kinds:
        kinds.append("ondernemer")  # in their own poll
    regions_shown = sum(
        1 for a in first.results["areas"] if a["level"] == "regio" and not a["suppressed"]
    )
    return LoopOutcome(
        invited=invited,
        delivered=first.delivered,
        responded=recorded,
        results_wijken=first.shown,
        feedback_notified=len(notified),
        poll_id=poll_id,
        feedback_id=feedback_id,
        respondents=respondents,
        audience=first.audience,
        results=results,
        regions=regions_shown,
        waves=len(trend["waves"]),
        significant_changes=len(significant),
        paper=first.paper,
        changed_wijk=least_safe,
        trend=trend,
        kinds=kinds,
        channels=answered_as(results, "channels"),
    )


def run_wave(
    http: Http,
    admin: str,
    inboxes: Inboxes,
    members: list[demo_panel.Member],
    rng: random.Random,
    wijken: dict[str, dict[str, Any]],
    feeling: dict[str, float],
    spec: dict[str, Any],
    paper: bool = False,
) -> Wave:
    """Publish a poll (``spec``: the audience, and for a next wave ``previous_poll_id``), check
    that its invitations reach exactly its audience, let residents answer with ``feeling``
    (with ``paper`` five more on paper, keyed in by the data-entry clerk), close it, and read
    and check its results."""
    poll = http(
        "POST",
        "/admin/v1/polls",
        admin,
        expect=201,
        json={"template_id": "veiligheidsgevoel", **spec},
    )
    poll_id = poll["id"]
    published = http("POST", f"/admin/v1/polls/{poll_id}/publish", admin)
    # The regions' versions frozen into the poll at publication: its results count on those.
    regions = {r["code"]: r["buurt_codes"] for r in published["audience"].get("regions") or []}
    names = ", ".join(wijken[w]["name"] for w in WIJKEN)
    region_names = "".join(f" and region {r['name']!r}" for r in published["audience"]["regions"])
    say(f"published {poll['title']!r} (wave {poll['wave']}) to {names}{region_names}")
    audience = [m for m in members if m.wijk_code in WIJKEN]
    summary = wait_for(
        "the invitations",
        lambda: http("GET", f"/admin/v1/polls/{poll_id}/deliveries", admin),
        lambda s: s["invited"] >= len(audience),
    )
    invited = summary["invited"]
    if invited != len(audience):
        raise RuntimeError(f"{invited} invited, but {len(audience)} panel members live there")
    delivered = wait_for(
        "the invitations to arrive",
        lambda: reached(inboxes, "invitation", poll_id, poll["title"], poll["title"], members),
        lambda who: len(who) >= invited,
    )
    expect_exactly("invitations", delivered, audience)
    n_mail = sum(m.channel == "email" for m in audience)
    say(
        f"invited {invited} residents; delivered {len(delivered)}, each naming the poll "
        f"(Web Push, decrypted at the push service: {invited - n_mail}; e-mail: {n_mail})"
    )

    # Residents answer — older ones more often, so the weighting has work to do.
    detail = http("GET", f"/api/v1/polls/{poll_id}", audience[0].token)
    answering = [m for m in audience if rng.random() < demo_panel.ANSWER_PROPENSITY[m.age_band]]
    answer_sets = {
        id(m): demo_panel.answers_for(detail["definition"], m, feeling, rng) for m in answering
    }

    # Residents invited by e-mail answer in the browser through the personal link in it.
    links = {
        address: found.group(1)
        for e in inboxes.emails(poll["title"])
        if (found := LINK_IN_EMAIL.search(e["text"]))
        for address in e["to"]
    }

    def answer(m: demo_panel.Member) -> str | LinkAnswer:
        if m.channel == "email" and m.email in links:
            return answer_by_link(
                http.base, links[m.email], detail["definition"], answer_sets[id(m)]
            )
        accepted = http(
            "POST",
            f"/api/v1/polls/{poll_id}/responses",
            m.token,
            expect=202,
            json={"answers": answer_sets[id(m)]},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        return accepted["receipt_id"]

    receipts = demo_panel.in_parallel(
        answering, answer, lambda n, total: say(f"  answers: {n}/{total} accepted")
    )
    recorded = wait_for(
        "the answers to be recorded",
        lambda: sum(
            link_recorded(r)
            if isinstance(r, LinkAnswer)
            else http("GET", f"/api/v1/receipts/{r}", m.token)["status"] == "recorded"
            for r, m in zip(receipts, answering, strict=True)
        ),
        lambda n: n == len(receipts),
        interval=1,
    )
    by_link = sum(isinstance(r, LinkAnswer) for r in receipts)
    say(
        f"responded: {recorded} of {invited} invited ({100 * recorded / max(invited, 1):.0f}%), "
        f"{by_link} of them in the browser through the personal link in their e-mail"
    )
    on_paper: list[demo_panel.Member] = []
    if paper:
        clerk = http(
            "POST", "/admin/v1/login", json={"email": CLERK_EMAIL, "password": CLERK_PASSWORD}
        )["access_token"]
        # Its own random stream: the residents' answers (and so the waves' figures) stay as
        # they were without paper.
        paper_rng = random.Random(PAPER_SEED)
        on_paper = answer_on_paper(
            http, admin, clerk, detail["definition"], poll_id, feeling, paper_rng
        )
        wait_for(
            "the paper answers to be recorded",
            lambda: [
                http("GET", f"/admin/v1/polls/{poll_id}/paper-forms/{m.extra['code']}", clerk)[
                    "answer_status"
                ]
                for m in on_paper
            ],
            lambda states: all(state == "recorded" for state in states),
            interval=1,
        )

    # Close, and read the results per wijk and region.
    http("POST", f"/admin/v1/polls/{poll_id}/close", admin)
    results = http("GET", f"/admin/v1/polls/{poll_id}/results", admin)
    # Every accepted answer was recorded (above), the paper ones in their form's buurt.
    check_results(results, answering + on_paper, regions)
    shown = print_results(results, wijken)
    print_split(results)
    return Wave(poll, audience, invited, len(delivered), answering, results, shown, len(on_paper))


def data_entry_clerk(http: Http, mail: Http, admin: str) -> None:
    """A staff member with the role invoerder (data entry only), invited by the admin, who
    chooses a password from the invitation e-mail (and signs in when the forms come back)."""
    http(
        "POST",
        "/admin/v1/staff",
        admin,
        expect=201,
        json={"email": CLERK_EMAIL, "role": "invoerder"},
    )
    invitation = wait_for(
        "the data-entry clerk's invitation",
        lambda: [m for m in mail("GET", f"/messages?to={CLERK_EMAIL}") if "#token=" in m["text"]],
        bool,
        timeout=30,
    )
    token = invitation[-1]["text"].split("#token=")[1].split()[0]
    session = http(
        "POST", "/admin/v1/accept-invite", json={"token": token, "password": CLERK_PASSWORD}
    )
    say(f"data-entry clerk: {CLERK_EMAIL} (role {session['staff']['role']}: keys in paper forms)")


LINK_IN_EMAIL = re.compile(r"https?://[^/\s]+(/app/GM\d{4}/link\?t=[^\s\"<>]+)")
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
RECEIPT_STATUS = re.compile(r'id="receipt"[^>]*data-status="([a-z_]+)"')


@dataclass
class LinkAnswer:
    """An answer sent through the personal link: its browser session shows the receipt."""

    session: requests.Session
    page: str


def answer_by_link(
    base: str, path: str, definition: dict[str, Any], answers: dict[str, Any]
) -> LinkAnswer:
    """What a resident's browser does with the link in the invitation e-mail: open it (the
    gateway swaps the token for a session cookie and redirects to an address without it),
    fill in the form and send it."""
    browser = requests.Session()
    opened = browser.get(base + path, timeout=30)
    opened.raise_for_status()
    page = opened.url  # /app/<gemeente>/link, the token gone from the address
    form: dict[str, Any] = {
        "csrf_token": CSRF_FIELD.search(opened.text).group(1),  # type: ignore[union-attr]
        "idempotency_key": str(uuid.uuid4()),
    }
    kinds = {q["id"]: q["type"] for q in definition["questions"]}
    for qid, value in answers.items():
        if isinstance(value, dict):  # a location
            form[f"q.{qid}.lat"], form[f"q.{qid}.lon"] = value["lat"], value["lon"]
        elif kinds[qid] == "ranking":
            form |= {f"q.{qid}.{o}": str(i) for i, o in enumerate(value, start=1)}
        else:
            form[f"q.{qid}"] = value if isinstance(value, list) else str(value)
    sent = browser.post(page, data=form, timeout=30, allow_redirects=False)
    if sent.status_code != 303:
        raise RuntimeError(f"the link's form answered {sent.status_code}: {sent.text[:300]}")
    return LinkAnswer(browser, page)


def link_recorded(answer: LinkAnswer) -> bool:
    found = RECEIPT_STATUS.search(answer.session.get(answer.page, timeout=30).text)
    return bool(found) and found.group(1) == "recorded"


def answer_on_paper(
    http: Http,
    admin: str,
    clerk: str,
    definition: dict[str, Any],
    poll_id: str,
    feeling: dict[str, float],
    rng: random.Random,
) -> list[demo_panel.Member]:
    """Five residents of one buurt of Overvecht answer on paper: a print run of five forms,
    each keyed in by the clerk with its code (age and sex as ticked on the form); one form keyed
    in a second time is refused. Returns the paper respondents (for the results' check)."""
    run = http(
        "POST",
        f"/admin/v1/polls/{poll_id}/paper-runs",
        admin,
        expect=201,
        json={"buurt_code": PAPER_BUURT, "count": PAPER_FORMS},
    )
    say(
        f"paper: {run['size']} forms printed for buurt {PAPER_BUURT}, each with its own code "
        f"({', '.join(f['code'] for f in run['forms'][:2])}, …)"
    )
    residents = [
        demo_panel.Member(
            buurt_code=PAPER_BUURT,
            wijk_code=run["wijk_code"],
            age_band="65_plus",
            birth_year=date.today().year - 75,
            sex=rng.choice(("vrouw", "man")),
            channel="paper",
            extra={"code": form["code"]},
        )
        for form in run["forms"]
    ]
    for form, resident in zip(run["forms"], residents, strict=True):
        http(
            "POST",
            f"/admin/v1/polls/{poll_id}/paper-forms",
            clerk,
            expect=202,
            json={
                "code": form["code"],
                "answers": demo_panel.answers_for(definition, resident, feeling, rng),
                "age_band": resident.age_band,
                "sex": resident.sex,
            },
        )
    twice = run["forms"][0]["code"]
    refused = http(
        "POST",
        f"/admin/v1/polls/{poll_id}/paper-forms",
        clerk,
        expect=409,
        json={"code": twice, "answers": {}},
    )
    say(
        f"paper: {len(residents)} forms keyed in by the clerk (channel paper, counted in "
        f"{PAPER_BUURT}); form {twice} keyed in again: refused ({refused['errors'][0]['message']})"
    )
    return residents


def reached(
    inboxes: Inboxes,
    kind: str,
    ref: str,
    naming: str,
    subject: str,
    members: list[demo_panel.Member],
) -> list[demo_panel.Member | None]:
    """The members a notification of ``kind`` about ``ref`` reached, once per message: by
    decrypted Web Push whose text names ``naming``, or by e-mail with ``subject``."""
    by_subscription = {m.endpoint.rsplit("/", 1)[-1]: m for m in members if m.endpoint}
    by_address = {m.email: m for m in members if m.email}
    found = [by_subscription.get(p["subscription"]) for p in inboxes.pushes(kind, ref, naming)]
    found += [by_address.get(a) for e in inboxes.emails(subject) for a in e["to"]]
    return found


def expect_exactly(what: str, got: list[Any], wanted: list[demo_panel.Member]) -> None:
    """Each wanted member once, nobody else (a None is a message to no panel member)."""
    counts = Counter(id(m) for m in got)
    wanted_ids = {id(m) for m in wanted}
    missing = len(wanted_ids - set(counts))
    extra = sum(n for i, n in counts.items() if i not in wanted_ids)
    twice = sum(n - 1 for i, n in counts.items() if i in wanted_ids and n > 1)
    if missing or extra or twice:
        raise RuntimeError(f"{what}: {missing} missing, {extra} to others, {twice} twice")


def check_results(
    results: dict[str, Any],
    respondents: list[demo_panel.Member],
    regions: dict[str, list[str]],
) -> None:
    """Every shown area (regions too) counts exactly who answered there; every area with 1 to
    k−1 respondents is hidden."""
    truth = Counter(m.buurt_code for m in respondents) + Counter(m.wijk_code for m in respondents)
    truth[MUNICIPALITY] = len(respondents)
    for code, buurten in regions.items():
        truth[code] = sum(m.buurt_code in buurten for m in respondents)
    k = results["k"]
    for area in results["areas"]:
        n = truth.get(area["code"], 0)
        if area["suppressed"] or area["respondents"] is None:
            continue  # all participants may be hidden where the residents are shown
        if area["respondents"] != n:
            raise RuntimeError(f"{area['code']}: results count {area['respondents']}, truth {n}")
        if 0 < n < k:
            raise RuntimeError(f"{area['code']}: {n} respondents shown, below k = {k}")


def share_often(results: dict[str, Any], area: str) -> float:
    """The weighted share answering 'vaak' (often unsafe) in ``area``; 0 when hidden."""
    question = next(q for q in results["questions"] if q["id"] == OFTEN_QUESTION)
    for option in (question["areas"].get(area) or {}).get("options", []):
        if option["option"] == "vaak":
            return option.get("weighted_percent") or 0.0
    return 0.0


def print_results(results: dict[str, Any], wijken: dict[str, dict[str, Any]]) -> int:
    """The results per wijk and region as a table; returns how many wijken are shown (not
    suppressed)."""
    often = next(q for q in results["questions"] if q["id"] == OFTEN_QUESTION)
    areas = {a["code"]: a for a in results["areas"]}
    say(f"results per wijk and region: {often['text']!r}")
    say(
        f"  weighted to CBS age × sex margins, 95% intervals, (unweighted); k = {results['k']}, "
        "'–' = hidden"
    )
    say(f"  {'':<28} {'n':>5} {'resp.':>6}   {'vaak':<28} (bijna) nooit")
    shown = 0
    regions = sorted(c for c, a in areas.items() if a["level"] == "regio")
    for code in WIJKEN + regions + sorted(c for c in areas if c.startswith("GM")):
        area = areas.get(code)
        name = wijken[code]["name"] if code in wijken else "Gemeente (de drie wijken)"
        if code in regions:
            name = f"Regio {area.get('name') or code}"
        if area is None or area["suppressed"]:
            say(f"  {name:<28} {'–':>5}")
            continue
        shown += code.startswith("WK")
        options = {o["option"]: o for o in (often["areas"].get(code) or {}).get("options", [])}
        rate = f"{area['response_rate']:.0f}%" if area.get("response_rate") is not None else "–"
        say(
            f"  {name:<28} {area['respondents']:>5} {rate:>6}   "
            f"{_share(options.get('vaak')):<28} {_share(options.get('bijna_nooit'))}"
        )
    buurten = [a for a in results["areas"] if a["level"] == "buurt"]
    hidden = sum(1 for a in buurten if a["suppressed"])
    say(f"  buurten: {len(buurten) - hidden} shown, {hidden} hidden (fewer than k respondents)")
    return shown


KIND_NAMES = {
    "resident": "inwoners",
    "ondernemer": "ondernemers",
    "organisatie": "organisaties",
    "all": "alle deelnemers",
}
CHANNEL_NAMES = {"app": "app", "link": "e-maillink", "paper": "papier"}


def answered_as(results: dict[str, Any], split: str) -> list[str]:
    """The participant kinds (``split`` "kinds") or channels ("channels") the municipality's
    respondents answered as or through, as the results show them: a count hidden as small
    (null) is somebody all the same."""
    gemeente = next((a for a in results["areas"] if a["level"] == "gemeente"), None)
    counts = (gemeente or {}).get(split) or {}
    return [name for name, n in counts.items() if n != 0]


def print_split(results: dict[str, Any]) -> None:
    """The whole municipality's answers to the tracked question per kind of participant and per
    channel: unweighted, with 95% Wilson intervals, suppressed like every figure."""
    often = next(q for q in results["questions"] if q["id"] == OFTEN_QUESTION)
    gemeente = next((a for a in results["areas"] if a["level"] == "gemeente"), None)
    if gemeente is None:
        return
    code = gemeente["code"]
    say(f"split by kind and channel, the whole municipality: {often['text']!r}")
    say("  unweighted, 95% Wilson intervals; residents' weighted figures above; '–' = hidden")
    for split, names in (("by_kind", KIND_NAMES), ("by_channel", CHANNEL_NAMES)):
        groups = often.get(split) or {}
        if not groups:
            say(f"  {split}: one group only (the figures above)")
        for group, name in names.items():
            if group not in groups:
                continue
            figures = groups[group].get(code) or {"suppressed": True}
            if figures.get("suppressed"):
                say(f"  {name:<28} {'–':>5}")
                continue
            options = {o["option"]: o for o in figures.get("options", [])}
            say(
                f"  {name:<28} {figures['respondents']:>5}   vaak "
                f"{_unweighted(options.get('vaak'))}"
            )


def _unweighted(option: dict[str, Any] | None) -> str:
    if not option or option.get("percent") is None:
        return "–"
    return f"{option['percent']:4.1f}% [{option['ci_low']:.1f}–{option['ci_high']:.1f}]"


def _share(option: dict[str, Any] | None) -> str:
    if not option or option.get("weighted_percent") is None:
        return "–"
    return (
        f"{option['weighted_percent']:4.1f}% [{option['ci_low']:.1f}–{option['ci_high']:.1f}] "
        f"({option['percent']:.1f}%)"
    )


def print_trend(trend: dict[str, Any], wijk: str, wijken: dict[str, dict[str, Any]]) -> list[str]:
    """The tracked question's trend in ``wijk``: per option each wave's weighted share and the
    change with its 95% interval, significant or not. Returns the areas where the change of
    some option of that question is significant."""
    often = next(q for q in trend["questions"] if q["id"] == OFTEN_QUESTION)
    waves = [w["wave"] for w in trend["waves"]]
    say(
        f"trend over waves {', '.join(map(str, waves))} in {wijken[wijk]['name']} ({wijk}): "
        f"{often['text']!r} (weighted %, 95% intervals)"
    )
    area = often["areas"].get(wijk) or {"waves": [], "changes": []}
    figures = {w["wave"]: w for w in area["waves"]}
    last = (area["changes"] or [{"options": []}])[-1]
    for change in last["options"]:
        option = change["option"]
        per_wave = [
            next((o for o in figures.get(w, {}).get("options", []) if o["option"] == option), None)
            for w in waves
        ]
        shares = " → ".join(_trend_share(o) for o in per_wave)
        if change["change"] is None:
            verdict = "change not shown (a wave's figure is hidden)"
        else:
            verdict = (
                f"change {change['change']:+.1f} points [{change['ci_low']:+.1f}, "
                f"{change['ci_high']:+.1f}]: "
                + ("significant" if change["significant"] else "not significant")
            )
        say(f"  {option:<12} {shares}; {verdict}")
    significant = [
        code
        for code, figures in often["areas"].items()
        if any(o["significant"] for c in figures["changes"][-1:] for o in c["options"])
    ]
    say(f"  areas with a significant change: {len(significant)} ({', '.join(significant)})")
    return significant


def _trend_share(option: dict[str, Any] | None) -> str:
    if not option or option.get("weighted_percent") is None:
        return "–"
    return f"{option['weighted_percent']:.1f}% [{option['ci_low']:.1f}–{option['ci_high']:.1f}]"


# A letter code joins only to a buurt of its own wijk: the visitor's code is for this one.
VISITOR_WIJK = "WK034401"


def visitor_letter_code(base_url: str) -> str:
    """A fresh letter code, so whoever runs ``make run`` can join Utrecht's app in a browser."""
    http = Http(base_url)
    admin = http(
        "POST", "/admin/v1/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )["access_token"]
    batch = http(
        "POST",
        "/admin/v1/invitation-batches",
        admin,
        expect=201,
        json={"per_wijk": {VISITOR_WIJK: 1}},
    )
    return batch["csv"].splitlines()[1].split(",")[0]
