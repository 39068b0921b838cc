"""The gateway over real HTTP, with polls and panel behind it."""

from __future__ import annotations

import base64
import json
import time

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from prometheus_client import REGISTRY

from gateway.auth import DATA_ENTRY
from gateway.routes import ROUTES
from services.common import tokens
from services.common.errors import BeingComputed, NotFound
from tests.conftest import wait_for
from tests.support.gateway import resident_token
from tests.support.panel import UTRECHT, profile, utrecht_files, utrecht_files_as

AMERSFOORT = "GM0307"
PROBLEM = "application/problem+json"


@pytest.fixture
def world(api, service_config):
    """Utrecht and Amersfoort (with Utrecht's areas under another code, for isolation tests),
    an admin token for each, and in each a staff account and an open poll with draft feedback
    and a measure (open, so responses and feedback know it; in Utrecht put to wijk Oost only,
    so the residents of West in the tests below do not see it)."""
    config = service_config("panel")
    with ClusterRpcProxy(config) as rpc:
        for code, name in ((UTRECHT, "Utrecht"), (AMERSFOORT, "Amersfoort")):
            rpc.panel.create_municipality({"code": code, "name": name})
        rpc.panel.import_areas(UTRECHT, utrecht_files())
        rpc.panel.import_areas(AMERSFOORT, utrecht_files_as(AMERSFOORT))
        objects = {}
        for code in (UTRECHT, AMERSFOORT):
            audience = (
                {"kind": "areas", "area_codes": ["WK034403"]}
                if code == UTRECHT
                else {"kind": "municipality"}
            )
            poll = rpc.polls.create_poll(
                code, {"template_id": "veiligheidsgevoel", "audience": audience}
            )
            rpc.polls.publish_poll(code, poll["id"])
            staff = rpc.panel.invite_staff(
                code, {"email": f"medewerker@{code}.nl", "role": "viewer"}
            )
            region = rpc.panel.create_region(
                code, {"name": "Oost", "buurt_codes": [f"BU{code[2:6]}0311", f"BU{code[2:6]}0312"]}
            )
            objects[code] = {
                "region": region["code"],
                "poll": poll["id"],
                "staff": staff["id"],
                "template": "veiligheidsgevoel",
                "municipality": code,
            }
        for code, found in objects.items():
            once_known(rpc.responses.results, code, found["poll"], 10)
            once_known(
                rpc.feedback.save_draft,
                code,
                found["poll"],
                example_body(FEEDBACK_DRAFT),
                "redactie@test.nl",
            )
            measure = rpc.feedback.add_measure(code, found["poll"], example_body(NEW_MEASURE))
            found["measure"] = measure["measure_id"]
    return {
        "objects": objects,
        "admin": {c: api.staff_token(c, "admin") for c in (UTRECHT, AMERSFOORT)},
    }


def once_known(call, *args):
    """``call(*args)`` once the service has heard of the poll (events arrive asynchronously)
    and, for results, has released them (BeingComputed: ask again, which a loaded machine
    makes likely for the first release)."""

    def attempt():
        try:
            return call(*args) or True
        except (NotFound, BeingComputed):  # a first release still being computed: wait too
            return None

    return wait_for(attempt, timeout=60, message=f"{call} knowing the poll")


FEEDBACK_DRAFT, NEW_MEASURE = "save_feedback", "add_measure"


def example_body(route):
    """A valid-looking body, so a refusal is about tenancy or role, not about the input."""
    return {
        "update_poll": {"reminder_after_hours": [24]},
        "change_staff": {"role": "editor"},
        "update_region": {"name": "Oost en omgeving"},
        FEEDBACK_DRAFT: {
            "title": "Wat we hoorden",
            "heard": "Meer licht gevraagd.",
            "plan": "Meer lantaarns.",
        },
        NEW_MEASURE: {"title": "Lantaarns", "owner": "Openbare Ruimte"},
        "update_measure": {"owner": "Team Veiligheid"},
        "change_measure_status": {"status": "in_progress"},
        "create_paper_run": {"buurt_code": "BU03440311", "count": 1},
        "key_in_form": {"code": "AAAA-BBBB-CCCC", "answers": {}},
    }.get(getattr(route, "name", route), {})


def fill(path, objects):
    for name, value in objects.items():
        path = path.replace(f"<{name}_id>", value).replace(f"<{name}_code>", value)
    return path


TENANT_ROUTES = [r for r in ROUTES if r.auth == "staff" and r.resource and r.tenant_scoped]


def test_the_route_table_has_tenant_scoped_routes_to_check():
    # Guards the generated test below against silently checking nothing.
    assert {r.resource for r in TENANT_ROUTES} == {"poll", "staff", "measure", "region"}
    assert len(TENANT_ROUTES) >= 6


@pytest.mark.parametrize("route", TENANT_ROUTES, ids=lambda r: r.name)
def test_staff_of_one_municipality_get_404_for_anothers_objects(api, world, route):
    theirs = world["objects"][AMERSFOORT]
    response = api.request(
        route.method,
        fill(route.path, {route.resource: theirs[route.resource]}),
        token=world["admin"][UTRECHT],
        json=example_body(route),
    )
    assert response.status_code == 404, response.text
    assert response.headers["Content-Type"] == PROBLEM
    # The object exists and its own municipality can reach it: the 404 is tenancy, not luck.
    own = api.request(
        route.method,
        fill(route.path, {route.resource: theirs[route.resource]}),
        token=world["admin"][AMERSFOORT],
        json=example_body(route),
    )
    assert own.status_code != 404, own.text


STATE_CHANGING = [r for r in ROUTES if r.auth == "staff" and r.changes_state]


@pytest.mark.parametrize("route", STATE_CHANGING, ids=lambda r: r.name)
def test_a_viewer_cannot_change_anything(api, world, route):
    viewer = api.staff_token(UTRECHT, "viewer")
    path = fill(route.path, world["objects"][UTRECHT])
    response = api.request(route.method, path, token=viewer, json=example_body(route))
    assert response.status_code == 403, response.text
    assert response.json()["type"] == "/problems/forbidden"


# The data-entry role keys in paper forms and does nothing else: every other staff route is 403.
ENTRY_ROUTES = {r.name for r in ROUTES if r.auth == "staff" and r.role == DATA_ENTRY}
NOT_FOR_DATA_ENTRY = [r for r in ROUTES if r.auth == "staff" and r.role != DATA_ENTRY]


def test_the_data_entry_role_has_its_routes_and_only_those():
    assert ENTRY_ROUTES == {"paper_polls", "paper_poll", "paper_form", "key_in_form"}
    assert len(NOT_FOR_DATA_ENTRY) >= 40


def test_data_entry_can_do_nothing_else(api, world):
    # One world for every route (a world per route would take minutes): each refusal checked.
    invoerder = api.staff_token(UTRECHT, "invoerder")
    allowed = {}
    for route in NOT_FOR_DATA_ENTRY:
        path = fill(route.path, world["objects"][UTRECHT])
        response = api.request(route.method, path, token=invoerder, json=example_body(route))
        problem = response.json() if response.status_code == 403 else {}
        if problem.get("type") != "/problems/forbidden":
            allowed[f"{route.method} {route.path}"] = response.status_code
    assert allowed == {}


# --- the web apps' pages, generated from the page table like the routes above -----------------

PAGE_RESOURCES = {"poll", "staff", "region"}  # what the world below holds in both municipalities


def web_pages():
    from web.pages import PAGES, entrypoints

    entrypoints()  # registers every page module
    return PAGES


def page_path(page, municipality, objects):
    return fill(page.path.replace("<municipality_code>", municipality), objects)


def browser_session(api, page, token):
    """A browser signed in as ``token``'s holder for ``page``'s app, with a CSRF token."""
    import requests

    from web.session import CSRF_FIELD, KINDS

    session = requests.Session()
    session.cookies.set(KINDS[page.app].access_cookie, token)
    start = session.get(api.url("/app/GM0344/"), timeout=30)
    csrf = start.text.split('data-csrf="', 1)[1].split('"', 1)[0]
    return session, {CSRF_FIELD: csrf}


def page_token(api, page, municipality):
    if page.app == "resident":
        buurt = "BU03440300" if municipality == UTRECHT else "BU03070100"
        return resident_token(api, municipality=municipality, buurt=buurt)
    return api.staff_token(municipality, "admin")


TENANT_PAGES = [p for p in web_pages() if p.resource and p.app in ("resident", "staff")]


def test_the_page_table_has_tenant_scoped_pages_to_check():
    assert {p.resource for p in TENANT_PAGES} >= {"poll", "feedback"}
    # feedback pages are checked in tests/service/test_web.py (they need published feedback)
    assert [p for p in TENANT_PAGES if p.resource in PAGE_RESOURCES]


@pytest.mark.parametrize(
    "page", [p for p in TENANT_PAGES if p.resource in PAGE_RESOURCES], ids=lambda p: p.name
)
def test_a_page_for_another_municipalitys_object_is_an_html_404(api, world, page):
    theirs = world["objects"][AMERSFOORT]
    mine, form = browser_session(api, page, page_token(api, page, UTRECHT))
    for method in page.method.split(","):
        refused = mine.request(
            method,
            api.url(page_path(page, UTRECHT, {page.resource: theirs[page.resource]})),
            data=form,
            timeout=30,
            allow_redirects=False,
        )
        assert refused.status_code == 404, refused.text[:300]
        assert refused.headers["Content-Type"].startswith("text/html")
    # Their own municipality's app shows it: the 404 is tenancy, not luck.
    own, _ = browser_session(api, page, page_token(api, page, AMERSFOORT))
    shown = wait_for(
        lambda: (lambda r: r if r.status_code != 404 else None)(
            own.get(api.url(page_path(page, AMERSFOORT, {page.resource: theirs[page.resource]})))
        ),
        message="the poll in the gateway's cache",
    )
    assert shown.status_code == 200, shown.text[:300]


# A staff page that changes the municipality's state names the role its POST needs (sign-in and
# sign-out change only the browser's own session).
STATE_CHANGING_PAGES = [p for p in web_pages() if p.app == "staff" and p.changes_state and p.role]


@pytest.mark.parametrize("page", STATE_CHANGING_PAGES, ids=lambda p: p.name)
def test_a_viewer_cannot_post_a_form_that_changes_state(api, world, page):
    viewer, form = browser_session(api, page, api.staff_token(UTRECHT, "viewer"))
    path = page_path(page, UTRECHT, world["objects"][UTRECHT])
    response = viewer.post(api.url(path), data=form, timeout=30, allow_redirects=False)
    assert response.status_code == 403, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/html")


# ... and of the dashboard's pages, only the data-entry ones (signing in and out aside).
OPEN_TO_DATA_ENTRY = {
    "page_staff_sign_in",
    "page_staff_sign_out",
    "page_staff_not_found",
    "page_staff_entry_home",
    "page_staff_entry",
}


def test_data_entry_sees_no_other_dashboard_page(api, world):
    pages = [p for p in web_pages() if p.app == "staff" and p.name not in OPEN_TO_DATA_ENTRY]
    assert len(pages) >= 30
    clerk, form = browser_session(api, pages[0], api.staff_token(UTRECHT, "invoerder"))
    shown = {}
    for page in pages:
        path = page_path(page, UTRECHT, world["objects"][UTRECHT])
        for method in page.method.split(","):
            response = clerk.request(
                method, api.url(path), data=form, timeout=30, allow_redirects=False
            )
            html = response.headers["Content-Type"].startswith("text/html")
            if response.status_code != 403 or not html:
                shown[f"{method} {page.path}"] = response.status_code
    assert shown == {}


def forge(header, payload, signature=b""):
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return (
        f"{enc(header)}.{enc(payload)}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"
    )


def test_token_attacks_are_refused_at_the_door(api, world, jwt_keys):
    now = int(time.time())
    claims = {
        "iss": "buurtpeil",
        "aud": "buurtpeil-admin",
        "sub": "x",
        "iat": now,
        "exp": now + 600,
        "typ": tokens.STAFF_ACCESS,
        "mun": UTRECHT,
        "role": "admin",
    }
    public_pem = open(jwt_keys["public"], "rb").read()
    import hashlib
    import hmac

    signing_input = forge({"alg": "HS256", "typ": tokens.STAFF_ACCESS}, claims).rsplit(".", 1)[0]
    hs256 = (
        signing_input
        + "."
        + base64.urlsafe_b64encode(
            hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
        )
        .decode()
        .rstrip("=")
    )
    valid = world["admin"][UTRECHT]
    head, body, sig = valid.split(".")
    tampered_claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    tampered_claims["mun"] = AMERSFOORT
    tampered = ".".join(
        [
            head,
            base64.urlsafe_b64encode(json.dumps(tampered_claims).encode()).decode().rstrip("="),
            sig,
        ]
    )
    attacks = {
        "alg none": forge({"alg": "none", "typ": tokens.STAFF_ACCESS}, claims),
        "HS256 with the public key": hs256,
        "wrong audience": api.staff_token(UTRECHT, "admin", audience="buurtpeil-app"),
        "wrong issuer": api.staff_token(UTRECHT, "admin", issuer="evil"),
        "expired": api.staff_token(UTRECHT, "admin", now=now - 3600, ttl=60),
        "tampered payload": tampered,
        "resident token on a staff route": api.staff_token(
            UTRECHT, "admin", typ=tokens.RESIDENT_ACCESS
        ),
        "garbage": "not.a.token",
    }
    assert api.request("GET", "/admin/v1/polls", token=valid).status_code == 200
    for name, token in attacks.items():
        response = api.request("GET", "/admin/v1/polls", token=token)
        assert response.status_code == 401, name
        assert response.headers["Content-Type"] == PROBLEM, name
        assert "Bearer" in response.headers["WWW-Authenticate"], name
    assert api.request("GET", "/admin/v1/polls").status_code == 401  # no token at all


def test_joining_by_code_guessing_is_rate_limited_and_codes_are_single_use(api, world):
    batch = api.request(
        "POST",
        "/admin/v1/invitation-batches",
        token=world["admin"][UTRECHT],
        json={"per_wijk": {"WK034401": 2}},
    ).json()
    code = batch["csv"].splitlines()[1].split(",")[0]
    joined = api.request("POST", "/api/v1/join", json={"invitation_code": code, **profile()})
    assert joined.status_code == 201, joined.text
    again = api.request("POST", "/api/v1/join", json={"invitation_code": code, **profile()})
    assert again.status_code == 422 and again.json()["errors"][0]["code"] == "used"

    statuses = [
        api.request(
            "POST", "/api/v1/join", json={"invitation_code": f"AAAA-BBBB-{i:04d}", **profile()}
        ).status_code
        for i in range(15)
    ]
    assert statuses[:8] == [422] * 8  # wrong codes are refused...
    assert statuses[-1] == 429  # ...until the address is throttled (10/min, 2 used above)
    limited = api.request("POST", "/api/v1/join", json={"invitation_code": code, **profile()})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_a_resident_sees_the_open_polls_of_their_wijk(api, world, service_config):
    admin = world["admin"][UTRECHT]
    batch = api.request(
        "POST", "/admin/v1/invitation-batches", token=admin, json={"per_wijk": {"WK034401": 1}}
    ).json()
    code = batch["csv"].splitlines()[1].split(",")[0]
    session = api.request(
        "POST", "/api/v1/join", json={"invitation_code": code, **profile()}
    ).json()
    token = session["access_token"]
    ours = api.request(
        "POST",
        "/admin/v1/polls",
        token=admin,
        json={
            "template_id": "verlichting",
            "audience": {"kind": "areas", "area_codes": ["WK034401"]},
        },
    ).json()
    elsewhere = api.request(
        "POST",
        "/admin/v1/polls",
        token=admin,
        json={"template_id": "afval", "audience": {"kind": "areas", "area_codes": ["WK034403"]}},
    ).json()
    for poll in (ours, elsewhere):
        assert (
            api.request("POST", f"/admin/v1/polls/{poll['id']}/publish", token=admin).json()[
                "status"
            ]
            == "open"
        )
    wait_for(
        lambda: api.request("GET", "/api/v1/polls", token=token).json(),
        message="the poll reaching the gateway cache",
    )
    listed = api.request("GET", "/api/v1/polls", token=token).json()
    assert [p["poll_id"] for p in listed] == [ours["id"]]
    assert api.request("GET", f"/api/v1/polls/{ours['id']}", token=token).status_code == 200
    assert api.request("GET", f"/api/v1/polls/{elsewhere['id']}", token=token).status_code == 404
    api.request("POST", f"/admin/v1/polls/{ours['id']}/close", token=admin)
    wait_for(
        lambda: api.request("GET", "/api/v1/polls", token=token).json() == [],
        message="the closed poll leaving the cache",
    )

    me = api.request("GET", "/api/v1/me", token=token).json()
    assert me["wijk_code"] == "WK034401" and me["birth_year"] == 1980
    refreshed = api.request(
        "POST", "/api/v1/token/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert refreshed.status_code == 200
    # (A reused refresh token ends the whole session, its access tokens too, as the revocation
    # reaches the gateway: test_access_revocation.py. Leaving after one raced that revocation.)
    assert api.request("DELETE", "/api/v1/me", token=token).status_code == 204
    # The session is revoked (sessions_revoked reaches every gateway): the old token is refused.
    wait_for(
        lambda: api.request("GET", "/api/v1/me", token=token).status_code == 401,
        message="the token of a resident who left refused",
    )


def test_bad_input_gets_a_clear_4xx_naming_the_field(api, world):
    admin = world["admin"][UTRECHT]
    cases = [
        (dict(data="{not json", headers={"Content-Type": "application/json"}), 400, "body"),
        (dict(data="template_id=x", headers={"Content-Type": "text/plain"}), 415, None),
        (dict(json={"template_id": "veiligheidsgevoel", "closes_at": "morgen"}), 422, "closes_at"),
        (
            dict(
                json={
                    "template_id": "veiligheidsgevoel",
                    "audience": {"kind": "areas", "area_codes": ["WK036301"]},
                }
            ),
            422,
            "audience.area_codes[0]",
        ),
        (dict(json=["a", "list"]), 422, "body"),
        (dict(data="x" * 26_000_000, headers={"Content-Type": "application/json"}), 413, None),
    ]
    for kwargs, status, field in cases:
        response = api.request("POST", "/admin/v1/polls", token=admin, **kwargs)
        assert response.status_code == status, (status, response.text[:300])
        problem = response.json()
        assert response.headers["Content-Type"] == PROBLEM and problem["status"] == status
        if field:
            assert problem["errors"][0]["field"] == field, problem
    unknown = api.request("GET", "/admin/v1/nothing-here", token=admin)
    assert unknown.status_code == 404 and unknown.headers["Content-Type"] == PROBLEM
    stale = api.request(
        "PATCH",
        f"/admin/v1/polls/{world['objects'][UTRECHT]['poll']}",
        token=admin,
        json={"reminder_after_hours": [1]},
        headers={"If-Match": '"999"'},
    )
    assert stale.status_code == 409
    assert (
        api.request(
            "PATCH",
            f"/admin/v1/polls/{world['objects'][UTRECHT]['poll']}",
            token=admin,
            json={},
            headers={"If-Match": "soon"},
        ).status_code
        == 412
    )


def test_branding_is_public_and_cacheable_with_etag(api, world):
    first = api.request("GET", f"/api/v1/municipalities/{UTRECHT}/branding")
    assert first.status_code == 200 and first.json()["text_on_primary"] in ("#FFFFFF", "#000000")
    etag = first.headers["ETag"]
    again = api.request(
        "GET", f"/api/v1/municipalities/{UTRECHT}/branding", headers={"If-None-Match": etag}
    )
    assert again.status_code == 304
    patched = api.request(
        "PATCH",
        "/admin/v1/branding",
        token=world["admin"][UTRECHT],
        json={"primary_color": "#C8102E"},
    )
    assert patched.status_code == 200
    # The answer is the changed resource as GET shows it.
    shown = api.request("GET", "/admin/v1/branding", token=world["admin"][UTRECHT]).json()
    assert patched.json() == shown and shown["municipality_code"] == UTRECHT
    assert shown["primary_color"] == "#C8102E"
    changed = api.request(
        "GET", f"/api/v1/municipalities/{UTRECHT}/branding", headers={"If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_openapi_is_valid_31_and_lists_every_route_served(api):
    from openapi_spec_validator import validate

    spec = api.request("GET", "/openapi.json").json()
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    routes = {(r.openapi_path, r.method): r for r in ROUTES}
    assert documented == set(routes)
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert params == set(path.replace("}", "{").split("{")[1::2]), (path, method)
            errors = [s for s in op["responses"] if s.startswith(("4", "5"))]
            assert "500" in errors, (path, method)
            # 503: a service did not answer; /healthz, /metrics and /openapi.json call none
            assert ("503" in errors) == routes[(path, method.upper())].calls_services
            if "security" in op:
                assert "401" in errors


def test_operations_endpoints(api):
    assert api.request("GET", "/healthz").json() == {"status": "ok"}
    ready = api.request("GET", "/readyz").json()
    assert ready["status"] == "ready" and all(ready["checks"].values())
    metrics = api.request("GET", "/metrics").text
    healthz = [
        line
        for line in metrics.splitlines()
        if line.startswith("buurtpeil_entrypoint_calls_total{")
        and 'entrypoint="healthz"' in line
        and 'service="gateway"' in line
    ]
    assert healthz and float(healthz[0].split()[-1]) >= 1

    def refused() -> float:
        return (
            REGISTRY.get_sample_value(
                "buurtpeil_http_responses_total", {"route": "list_polls", "status": "401"}
            )
            or 0.0
        )

    before = refused()
    api.request("GET", "/admin/v1/polls")  # no token: 401
    assert refused() == before + 1
    assert (
        'buurtpeil_http_responses_total{route="list_polls",status="401"}'
        in api.request("GET", "/metrics").text
    )


def test_cors_only_for_configured_origins(api):
    ok = api.request(
        "OPTIONS",
        "/api/v1/me",
        headers={"Origin": "http://localhost:5173", "Access-Control-Request-Method": "GET"},
    )
    assert ok.status_code == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    other = api.request("OPTIONS", "/api/v1/me", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_devices_are_registered_validated_and_removed(api, world, push_service):
    batch = api.request(
        "POST",
        "/admin/v1/invitation-batches",
        token=world["admin"][UTRECHT],
        json={"per_wijk": {"WK034401": 1}},
    ).json()
    code = batch["csv"].splitlines()[1].split(",")[0]
    token = api.request("POST", "/api/v1/join", json={"invitation_code": code, **profile()}).json()[
        "access_token"
    ]
    key = api.request("GET", "/api/v1/push/vapid-public-key").json()["application_server_key"]
    subscription = push_service.subscribe(key)
    bad = api.request(
        "POST",
        "/api/v1/devices",
        token=token,
        json={
            "channel": "webpush",
            "endpoint": subscription["endpoint"],
            "keys": {"p256dh": "not base64!", "auth": subscription["keys"]["auth"]},
        },
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "keys.p256dh"
    missing = api.request("POST", "/api/v1/devices", token=token, json={"channel": "fcm"})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "token"
    device = api.request(
        "POST",
        "/api/v1/devices",
        token=token,
        json={
            "channel": "webpush",
            "endpoint": subscription["endpoint"],
            "keys": subscription["keys"],
        },
    )
    assert device.status_code == 201
    device_id = device.json()["device_id"]
    assert [d["device_id"] for d in api.request("GET", "/api/v1/devices", token=token).json()] == [
        device_id
    ]
    assert api.request("DELETE", f"/api/v1/devices/{device_id}", token=token).status_code == 204
    assert api.request("DELETE", f"/api/v1/devices/{device_id}", token=token).status_code == 404


def test_push_endpoints_only_on_known_push_services(api, world, push_service):
    """Defect 15.13: any URL was accepted as a Web Push endpoint (notify would POST to it: a
    blind SSRF). Only https on a known push service's host, or (development) the fake."""
    batch = api.request(
        "POST",
        "/admin/v1/invitation-batches",
        token=world["admin"][UTRECHT],
        json={"per_wijk": {"WK034401": 1}},
    ).json()
    code = batch["csv"].splitlines()[1].split(",")[0]
    token = api.request("POST", "/api/v1/join", json={"invitation_code": code, **profile()}).json()[
        "access_token"
    ]
    keys = push_service.subscribe()["keys"]

    def register(endpoint):
        return api.request(
            "POST",
            "/api/v1/devices",
            token=token,
            json={"channel": "webpush", "endpoint": endpoint, "keys": keys},
        )

    for endpoint in (
        "https://169.254.169.254/latest/meta-data/x",
        "http://fcm.googleapis.com/fcm/send/abc",
        "https://fcm.googleapis.com:8443/fcm/send/abc",
        "https://user:pw@fcm.googleapis.com/fcm/send/abc",
        "https://wns2-am3p.notify.windows.com.attacker.example/w/?token=x",
        "https://notify.windows.com/w/?token=x",
        "https://push.internal.example/p/1",
        "http://127.0.0.2:8089/push/abc",
    ):
        refused = register(endpoint)
        assert refused.status_code == 422, endpoint
        assert refused.headers["Content-Type"].startswith("application/problem+json")
        (error,) = refused.json()["errors"]
        assert (error["field"], error["code"]) == ("endpoint", "push_service_not_allowed")
    for endpoint in (
        "https://fcm.googleapis.com/fcm/send/abc:APA91b",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
        "https://wns2-am3p.notify.windows.com/w/?token=BQYAAA",
        "https://web.push.apple.com/QGuQyavXutnMH",
        push_service.subscribe()["endpoint"],  # the fake: allowed in development (the tests)
    ):
        assert register(endpoint).status_code == 201, endpoint
