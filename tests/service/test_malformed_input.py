"""Malformed input never gets a 500: generated from the route table, every route that takes a
body, a path parameter or a query gets bodies that are not UTF-8, JSON nested 10,000 deep (the
whole body or one field), strings PostgreSQL cannot store (NUL, other C0 controls, unpaired
surrogates), NaN and 5,000-digit numbers — and answers each with the 4xx problem+json that names
what is wrong. Bodies are bounded before anything reads them (413)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from gateway.routes import ROUTES
from tests.support.gateway import resident_token
from tests.support.panel import UTRECHT

PROBLEM = "application/problem+json"
BODY_ROUTES = [r for r in ROUTES if r.body is not None]
PARAM_ROUTES = [r for r in ROUTES if r.path_params]
QUERY_ROUTES = [r for r in ROUTES if r.query is not None]
DEEP = "[" * 10_000 + "]" * 10_000


@pytest.fixture
def gateway_overrides():
    """Limits out of the way: the login route must answer about the body, not with 429."""
    return {
        "RATE_LIMITS": {
            name: "10000/min"
            for name in (
                "login",
                "login_ip",
                "join",
                "signup",
                "verify",
                "refresh",
                "locate",
                "token",
            )
        }
    }


def token_for(api, route) -> str | None:
    if route.auth == "resident":
        return resident_token(api, municipality=UTRECHT, buurt="BU03440100")
    if route.auth == "staff" and route.role == "platform_admin":
        return api.staff_token(None, "platform_admin")
    if route.auth == "staff":
        return api.staff_token(UTRECHT, "admin")
    return None


def path_of(route, value: str | None = None) -> str:
    """The route's path with every parameter ``value`` (already URL-encoded), or a valid-looking
    one."""
    path = route.path
    for name in route.path_params:
        filler = value or (UTRECHT if name == "municipality_code" else str(uuid.uuid4()))
        path = path.replace(f"<{name}>", filler)
    return path


def first_field(route) -> str:
    name, found = next(iter(route.body_schema.fields.items()))
    return found.data_key or name


def send(api, route, *, path: str | None = None, **kwargs: Any):
    return api.request(
        route.method,
        path or path_of(route),
        token=token_for(api, route),
        headers={"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())},
        **kwargs,
    )


def refused(response, status: int, field: str | None = None, code: str | None = None) -> str:
    """'' if ``response`` is the expected problem, else what is wrong with it."""
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    wrong = []
    if response.status_code != status:
        wrong.append(f"status {response.status_code}")
    if response.headers.get("Content-Type") != PROBLEM:
        wrong.append(f"not problem+json: {response.headers.get('Content-Type')}")
    elif problem.get("status") != response.status_code:
        wrong.append(f"problem status {problem.get('status')}")
    errors = problem.get("errors") or [{}]
    if field is not None and not str(errors[0].get("field", "")).startswith(field):
        wrong.append(f"field {errors[0].get('field')!r}")
    if code is not None and errors[0].get("code") != code:
        wrong.append(f"code {errors[0].get('code')!r}")
    return "; ".join(wrong) + (f": {response.text[:200]}" if wrong else "")


def body_cases(field: str) -> list[tuple[str, bytes, int, str | None, str | None]]:
    """(name, raw body, status, field named, error code)."""
    return [
        ("not UTF-8", b'{"' + field.encode() + b'": "caf\xe9"}', 400, "body", "invalid_utf8"),
        ("nested 10,000 deep", DEEP.encode(), 400, "body", "too_deep"),
        ("a field nested 10,000 deep", f'{{"{field}": {DEEP}}}'.encode(), 400, "body", None),
        (
            "a field nested 40 deep",
            json.dumps({field: json.loads("[" * 40 + "]" * 40)}).encode(),
            422,
            field,
            "too_deep",
        ),
        ("NUL", json.dumps({field: "a\u0000b"}).encode(), 422, field, "control_character"),
        ("escape", json.dumps({field: "a\u001bb"}).encode(), 422, field, "control_character"),
        ("lone surrogate", f'{{"{field}": "x\\ud800"}}'.encode(), 422, field, "unpaired_surrogate"),
        ("NUL in a name", json.dumps({"a\u0000": 1}).encode(), 422, "a", "control_character"),
        ("NaN", f'{{"{field}": NaN}}'.encode(), 400, "body", "invalid_json"),
        ("5,000 digits", f'{{"{field}": 1{"0" * 5000}}}'.encode(), 400, "body", "invalid_json"),
    ]


def test_the_route_table_has_routes_to_check():
    # Guards the generated tests below against silently checking nothing.
    assert len(BODY_ROUTES) >= 26 and len(PARAM_ROUTES) >= 20 and len(QUERY_ROUTES) >= 5


def test_malformed_bodies_get_a_4xx_problem_on_every_route(api):
    failures = []
    for route in BODY_ROUTES:
        field = first_field(route)
        for name, raw, status, named, code in body_cases(field):
            why = refused(send(api, route, data=raw), status, named, code)
            if why:
                failures.append(f"{route.method} {route.path} ({name}): {why}")
    assert not failures, "\n".join(failures)


def test_control_characters_in_path_parameters_get_422_naming_them(api):
    failures = []
    for route in PARAM_ROUTES:
        for value in ("%00", "GM%1F0344"):
            response = send(api, route, path=path_of(route, value))
            why = refused(response, 422, f"path.{route.path_params[0]}", "control_character")
            if why:
                failures.append(f"{route.method} {route.path} ({value}): {why}")
    assert not failures, "\n".join(failures)


def test_control_characters_in_query_values_get_422_naming_them(api):
    failures = []
    for route in QUERY_ROUTES:
        name, found = next(iter(route.query_schema.fields.items()))
        name = found.data_key or name
        response = send(api, route, params={name: "a\x00b"}, data=b"{}")
        why = refused(response, 422, f"query.{name}", "control_character")
        if why:
            failures.append(f"{route.method} {route.path}: {why}")
    assert not failures, "\n".join(failures)


def test_a_receipt_id_with_a_non_ascii_tag_is_a_404(api):
    token = resident_token(api, municipality=UTRECHT, buurt="BU03440100")
    response = api.request("GET", f"/api/v1/receipts/{uuid.uuid4()}.%C3%A9t%C3%A9", token=token)
    assert refused(response, 404) == ""


def test_open_text_with_a_nul_or_lone_surrogate_is_refused_at_the_gateway(api):
    """Never accepted with 202 to be dead-lettered at intake later."""
    token = resident_token(api, municipality=UTRECHT, buurt="BU03440100")
    path = f"/api/v1/polls/{uuid.uuid4()}/responses"
    headers = {"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())}
    for raw, code in (
        (json.dumps({"answers": {"q2": "licht\u0000kapot"}}), "control_character"),
        ('{"answers": {"q2": "licht \\udfff kapot"}}', "unpaired_surrogate"),
    ):
        response = api.request("POST", path, token=token, data=raw, headers=headers)
        assert refused(response, 422, "answers.q2", code) == ""


def test_a_utc_offset_postgresql_refuses_is_422_naming_the_field(api):
    admin = api.staff_token(UTRECHT, "admin")
    far = "2520-06-30T06:54:13-18:49"
    created = api.request(
        "POST",
        "/admin/v1/polls",
        token=admin,
        json={"template_id": "veiligheidsgevoel", "opens_at": far},
    )
    assert refused(created, 422, "opens_at", "invalid_offset") == ""
    poll = api.request(
        "POST", "/admin/v1/polls", token=admin, json={"template_id": "veiligheidsgevoel"}
    )
    assert poll.status_code == 201, poll.text
    patched = api.request(
        "PATCH", f"/admin/v1/polls/{poll.json()['id']}", token=admin, json={"closes_at": far}
    )
    assert refused(patched, 422, "closes_at", "invalid_offset") == ""
    fine = api.request(
        "PATCH",
        f"/admin/v1/polls/{poll.json()['id']}",
        token=admin,
        json={"closes_at": "2520-06-30T06:54:13-15:59"},
    )
    assert fine.status_code == 200, fine.text


def test_line_breaks_and_tabs_only_where_the_field_is_free_text(api):
    platform = api.staff_token(None, "platform_admin")
    header_injection = {"code": UTRECHT, "name": "Utrecht\r\nBcc: iedereen@example.org"}
    named = api.request("POST", "/admin/v1/municipalities", token=platform, json=header_injection)
    assert refused(named, 422, "name", "control_character") == ""
    created = api.request(
        "POST",
        "/admin/v1/municipalities",
        token=platform,
        json={"code": UTRECHT, "name": "Utrecht"},
    )
    assert created.status_code == 201, created.text
    admin = api.staff_token(UTRECHT, "admin")
    tabbed = api.request(
        "PATCH", "/admin/v1/branding", token=admin, json={"app_name": "Buurtpeil\tUtrecht"}
    )
    assert refused(tabbed, 422, "app_name", "control_character") == ""
    welcome = "Welkom bij het panel.\n\n\tUw mening telt."
    free = api.request("PATCH", "/admin/v1/branding", token=admin, json={"welcome_text": welcome})
    assert free.status_code == 200, free.text
    assert free.json()["welcome_text"] == welcome


# --- item 12: bounded bodies ------------------------------------------------------------------


def test_bodies_over_256_kib_get_413_before_anything_reads_them(api):
    big = b'{"email": "' + b"a" * 300_000 + b'@x.nl", "password": "x"}'
    login = api.request(
        "POST", "/admin/v1/login", data=big, headers={"Content-Type": "application/json"}
    )
    assert refused(login, 413) == ""

    def chunks():  # no Content-Length: refused unread (the WSGI server gives no end)
        for _ in range(40):
            yield b" " * 10_000
        yield b"{}"

    chunked = api.request(
        "POST", "/admin/v1/login", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert refused(chunked, 400, "body", "length_required") == ""
    admin = api.staff_token(UTRECHT, "admin")
    poll = api.request(
        "POST",
        "/admin/v1/polls",
        token=admin,
        data=b" " * 300_000 + b"{}",
        headers={"Content-Type": "application/json"},
    )
    assert refused(poll, 413) == ""


def test_the_area_import_alone_takes_up_to_25_mb(api):
    admin = api.staff_token(UTRECHT, "admin")
    body = json.dumps({"kwb_csv": "x" * 1_000_000}).encode()
    response = api.request(
        "POST",
        "/admin/v1/areas/import",
        token=admin,
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text[:300]  # read and validated, not 413
    too_big = api.request(
        "POST",
        "/admin/v1/areas/import",
        token=admin,
        data=b" " * 25_000_001,
        headers={"Content-Type": "application/json"},
    )
    assert refused(too_big, 413) == ""


def test_web_forms_are_bounded_too(api):
    response = api.request(
        "POST",
        f"/app/{UTRECHT}/aanmelden",
        data={"code": "x" * 300_000},
    )
    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("text/html")
