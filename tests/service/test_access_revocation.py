"""Access can be revoked (issue 15, item 10), tried over HTTP against the real services on
every route of the route table.

Staff access tokens live 15 minutes and are refreshed with rotation; every token names its
session (``sid``); panel's revoked-session list reaches every gateway by the
``sessions_revoked`` broadcast. A disabled account, a changed role and a resident who left are
refused (401 problem+json) on every route; a receipt is readable by its submitter only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy.orm import Session

from gateway.routes import ROUTES
from services.panel import accounts
from tests.conftest import wait_for
from tests.support.answers import minimal_answers
from tests.support.gateway import resident_token
from tests.support.panel import UTRECHT, profile, utrecht_files

PROBLEM = "application/problem+json"
PASSWORD = "Zes lange woorden hier"


@pytest.fixture
def utrecht(api, service_config, engines):
    """Utrecht with its areas, an admin and an editor with passwords (as an operator seeds
    them), signed in over HTTP."""
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.import_areas(UTRECHT, utrecht_files())
    ids = {}
    with Session(engines["panel"]) as session, session.begin():
        for role in ("admin", "editor"):
            staff = accounts.create_staff(
                session,
                municipality_code=UTRECHT,
                email=f"{role}@utrecht.nl",
                role=role,
                password=PASSWORD,
                now=datetime.now(UTC),
            )
            ids[role] = str(staff.id)
    return {"ids": ids, "admin": login(api, "admin")}


def login(api, role):
    found = api.request(
        "POST", "/admin/v1/login", json={"email": f"{role}@utrecht.nl", "password": PASSWORD}
    )
    assert found.status_code == 200, found.text
    return found.json()


def path_of(route) -> str:
    """The route's path with a valid-looking value for each parameter."""
    path = route.path
    for name in route.path_params:
        path = path.replace(
            f"<{name}>", UTRECHT if name == "municipality_code" else str(uuid.uuid4())
        )
    return path


def refused(api, method, path, token, **kwargs):
    found = api.request(method, path, token=token, **kwargs)
    return (found.status_code == 401 and found.headers["Content-Type"].startswith(PROBLEM)) or None


def publish(api, admin, template, wijk="WK034401"):
    poll = api.request(
        "POST",
        "/admin/v1/polls",
        token=admin,
        json={"template_id": template, "audience": {"kind": "areas", "area_codes": [wijk]}},
    ).json()
    published = api.request("POST", f"/admin/v1/polls/{poll['id']}/publish", token=admin)
    assert published.json()["status"] == "open"
    return poll["id"]


def submit(api, token, poll_id, definition):
    return api.request(
        "POST",
        f"/api/v1/polls/{poll_id}/responses",
        token=token,
        json={"answers": minimal_answers(definition)},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


def test_staff_tokens_are_short_and_refresh_rotates(api, utrecht):
    session = login(api, "editor")
    assert session["expires_in"] <= 900 and session["refresh_token"]
    renewed = api.request(
        "POST", "/admin/v1/token/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert renewed.status_code == 200, renewed.text
    fresh = renewed.json()
    assert fresh["staff"]["role"] == "editor" and fresh["refresh_token"] != session["refresh_token"]
    assert api.request("GET", "/admin/v1/polls", token=fresh["access_token"]).status_code == 200
    reused = api.request(
        "POST", "/admin/v1/token/refresh", json={"refresh_token": session["refresh_token"]}
    )
    assert reused.status_code == 401 and reused.headers["Content-Type"].startswith(PROBLEM)
    # A reused refresh token ends the session: its access tokens too, and its successor.
    wait_for(
        lambda: refused(api, "GET", "/admin/v1/polls", fresh["access_token"]),
        timeout=60,
        message="the reused session's access token refused",
    )
    again = api.request(
        "POST", "/admin/v1/token/refresh", json={"refresh_token": fresh["refresh_token"]}
    )
    assert again.status_code == 401


def test_a_disabled_staff_account_is_refused_on_every_route(api, utrecht):
    editor = login(api, "editor")
    token = editor["access_token"]
    assert api.request("GET", "/admin/v1/polls", token=token).status_code == 200
    changed = api.request(
        "PATCH",
        f"/admin/v1/staff/{utrecht['ids']['editor']}",
        token=utrecht["admin"]["access_token"],
        json={"status": "disabled"},
    )
    assert changed.status_code == 200, changed.text
    wait_for(
        lambda: refused(api, "GET", "/admin/v1/polls", token),
        timeout=60,
        message="the disabled account's token refused",
    )
    not_refused = [
        (route.method, route.path)
        for route in ROUTES
        if route.auth == "staff" and not refused(api, route.method, path_of(route), token, json={})
    ]
    assert not_refused == []  # every staff route of the route table
    renewed = api.request(
        "POST", "/admin/v1/token/refresh", json={"refresh_token": editor["refresh_token"]}
    )
    assert renewed.status_code == 401
    # The admin who did it is not affected.
    assert (
        api.request("GET", "/admin/v1/polls", token=utrecht["admin"]["access_token"]).status_code
        == 200
    )


def test_a_demoted_staff_members_old_token_no_longer_carries_the_old_role(api, utrecht):
    editor = login(api, "editor")
    old = editor["access_token"]
    body = {"template_id": "afval", "audience": {"kind": "municipality"}}
    assert api.request("POST", "/admin/v1/polls", token=old, json=body).status_code == 201
    changed = api.request(
        "PATCH",
        f"/admin/v1/staff/{utrecht['ids']['editor']}",
        token=utrecht["admin"]["access_token"],
        json={"role": "viewer"},
    )
    assert changed.status_code == 200, changed.text
    wait_for(
        lambda: refused(api, "POST", "/admin/v1/polls", old, json=body),
        timeout=60,
        message="the old editor token refused",
    )
    assert refused(api, "GET", "/admin/v1/polls", old)
    assert (
        api.request(
            "POST", "/admin/v1/token/refresh", json={"refresh_token": editor["refresh_token"]}
        ).status_code
        == 401
    )
    viewer = login(api, "editor")["access_token"]  # signs in again: the new role
    assert api.request("GET", "/admin/v1/polls", token=viewer).status_code == 200
    assert api.request("POST", "/admin/v1/polls", token=viewer, json=body).status_code == 403


def test_a_resident_who_left_is_refused_everywhere_even_on_a_new_poll(api, utrecht):
    admin = utrecht["admin"]["access_token"]
    batch = api.request(
        "POST", "/admin/v1/invitation-batches", token=admin, json={"per_wijk": {"WK034401": 1}}
    ).json()
    code = batch["csv"].splitlines()[1].split(",")[0]
    joined = api.request("POST", "/api/v1/join", json={"invitation_code": code, **profile()})
    assert joined.status_code == 201, joined.text
    token = joined.json()["access_token"]
    first = publish(api, admin, "verlichting")
    definition = wait_for(
        lambda: api.request("GET", f"/api/v1/polls/{first}", token=token).json().get("definition"),
        message="the poll reaching the gateway",
    )
    accepted = submit(api, token, first, definition)
    assert accepted.status_code == 202
    receipt_path = accepted.headers["Location"]

    assert api.request("DELETE", "/api/v1/me", token=token).status_code == 204
    wait_for(
        lambda: refused(api, "GET", "/api/v1/polls", token),
        timeout=60,
        message="the token of a resident who left refused",
    )
    assert refused(api, "GET", receipt_path, token)
    not_refused = [
        (route.method, route.path)
        for route in ROUTES
        if route.auth == "resident"
        and not refused(api, route.method, path_of(route), token, json={})
    ]
    assert not_refused == []  # every resident route of the route table

    # A poll opened after the resident left: still refused (before the fix: 202, recorded).
    later = publish(api, admin, "afval")
    neighbour = resident_token(api, municipality=UTRECHT, buurt="BU03440111")
    later_definition = wait_for(
        lambda: (
            api.request("GET", f"/api/v1/polls/{later}", token=neighbour).json().get("definition")
        ),
        message="the new poll reaching the gateway",
    )
    assert refused(api, "GET", f"/api/v1/polls/{later}", token)
    found = submit(api, token, later, later_definition)
    assert found.status_code == 401 and found.headers["Content-Type"].startswith(PROBLEM)
    assert (
        api.request(
            "POST", "/api/v1/token/refresh", json={"refresh_token": joined.json()["refresh_token"]}
        ).status_code
        == 401
    )


def test_a_receipt_is_readable_by_its_submitter_only(api, utrecht):
    admin = utrecht["admin"]["access_token"]
    poll = publish(api, admin, "verlichting")
    mine = resident_token(api, municipality=UTRECHT, buurt="BU03440111")
    other = resident_token(api, municipality=UTRECHT, buurt="BU03440111")
    definition = wait_for(
        lambda: api.request("GET", f"/api/v1/polls/{poll}", token=mine).json().get("definition"),
        message="the poll reaching the gateway",
    )
    accepted = submit(api, mine, poll, definition)
    assert accepted.status_code == 202
    path = accepted.headers["Location"]
    assert api.request("GET", path, token=mine).status_code == 200
    theirs = api.request("GET", path, token=other)
    assert theirs.status_code == 404 and theirs.headers["Content-Type"].startswith(PROBLEM)
