"""What the browser tests find in each municipality, made over the JSON API as staff and
residents would: an open poll for everyone, a closed poll with published feedback and a
measure, and a resident who joined and answered (for the pages of a signed-in resident)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.browser.system import AMERSFOORT, UTRECHT, System
from tests.support.answers import minimal_answers

FEEDBACK = {
    "title": "Meer licht op de fietsroutes",
    "heard": "Veel bewoners voelen zich ’s avonds onveilig op donkere fietsroutes.",
    "plan": "We plaatsen dit jaar extra lantaarns langs drie fietsroutes.",
    "not_followed": "Cameratoezicht zetten we niet in: de politie ziet er geen reden voor.",
}


def until(what: str, probe: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def open_poll(system: System, municipality: str, audience: dict[str, Any] | None = None) -> str:
    admin = system.admin(municipality)
    made = system.api.request(
        "POST",
        "/admin/v1/polls",
        token=admin,
        json={
            "template_id": "veiligheidsgevoel",
            "audience": audience or {"kind": "municipality"},
        },
    )
    assert made.status_code == 201, made.text
    poll_id = made.json()["id"]
    published = system.api.request("POST", f"/admin/v1/polls/{poll_id}/publish", token=admin)
    assert published.status_code == 200, published.text
    return poll_id


def publish_feedback(system: System, municipality: str, poll_id: str) -> str:
    admin = system.admin(municipality)
    closed = system.api.request("POST", f"/admin/v1/polls/{poll_id}/close", token=admin)
    assert closed.status_code == 200, closed.text
    path = f"/admin/v1/polls/{poll_id}/feedback"
    until(
        "feedback to know the closed poll",
        lambda: system.api.request("PUT", path, token=admin, json=FEEDBACK).status_code == 200,
    )
    measure = system.api.request(
        "POST",
        f"{path}/measures",
        token=admin,
        json={"title": "Lantaarns langs de Vleutenseweg", "owner": "Openbare Ruimte"},
    )
    assert measure.status_code == 201, measure.text
    published = until(
        "feedback to know the poll is closed",
        lambda: (lambda r: r.json() if r.status_code == 200 else None)(
            system.api.request("POST", f"{path}/publish", token=admin)
        ),
    )
    return published["feedback_id"]


def join(system: System, municipality: str, buurt: str) -> dict[str, Any]:
    joined = system.api.request(
        "POST",
        "/api/v1/join",
        json={
            "invitation_code": system.letter_code(municipality, "WK" + buurt[2:8]),
            "buurt_code": buurt,
            "birth_year": 1968,
            "sex": "man",
            "consent": True,
        },
    )
    assert joined.status_code == 201, joined.text
    return joined.json()


def answer(system: System, session: dict[str, Any], poll_id: str) -> str:
    token = session["access_token"]
    poll = until(
        "the poll in the gateway's cache",
        lambda: (lambda r: r.json() if r.status_code == 200 else None)(
            system.api.request("GET", f"/api/v1/polls/{poll_id}", token=token)
        ),
    )
    sent = system.api.request(
        "POST",
        f"/api/v1/polls/{poll_id}/responses",
        token=token,
        json={"answers": minimal_answers(poll["definition"])},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    assert sent.status_code == 202, sent.text
    return sent.json()["receipt_id"]


def buurt_of(municipality: str) -> str:
    return f"BU{municipality[2:]}0111"


def make_world(system: System) -> dict[str, dict[str, Any]]:
    world = {}
    for code in (UTRECHT, AMERSFOORT):
        past = open_poll(system, code)
        resident = join(system, code, buurt_of(code))
        answer(system, resident, past)
        feedback_id = publish_feedback(system, code, past)
        poll_id = open_poll(system, code)
        receipt = answer(system, resident, poll_id)
        world[code] = {
            "poll": poll_id,
            "feedback": feedback_id,
            "resident": resident,
            "receipt": receipt,
        }
    return world


def neighbours_answer(
    system: System,
    municipality: str,
    poll_id: str,
    buurten: list[str],
    n: int,
    values: tuple[int, ...] = (4, 2),
    sessions: list[dict[str, Any]] | None = None,
) -> list[str]:
    """``n`` residents of these buurten join and answer, the first question (a scale) with
    ``values`` in turn (by default half 4, half 2: counts large enough to be shown). Residents
    who joined already (``sessions``, e.g. before the poll was published, so they are invited
    panel members) answer instead of new ones."""
    known_to_responses(system, municipality, poll_id)
    receipts = []
    for i in range(n):
        session = sessions[i] if sessions else join(system, municipality, buurten[i % len(buurten)])
        token = session["access_token"]
        poll = until(
            "the poll in the gateway's cache",
            lambda token=token: (lambda r: r.json() if r.status_code == 200 else None)(
                system.api.request("GET", f"/api/v1/polls/{poll_id}", token=token)
            ),
        )
        answers = minimal_answers(poll["definition"])
        first = poll["definition"]["questions"][0]
        if first["type"] == "likert5":
            answers[first["id"]] = values[i % len(values)]
        sent = system.api.request(
            "POST",
            f"/api/v1/polls/{poll_id}/responses",
            token=token,
            json={"answers": answers},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert sent.status_code == 202, sent.text
        receipts.append((token, sent.json()["receipt_id"]))
    for token, receipt in receipts:
        state = until(
            "the answers recorded or rejected",
            lambda token=token, receipt=receipt: (
                lambda found: found if found.get("status") in ("recorded", "rejected") else None
            )(system.api.request("GET", f"/api/v1/receipts/{receipt}", token=token).json()),
        )
        assert state["status"] == "recorded", state
    return [r for _, r in receipts]


def known_to_responses(system: System, municipality: str, poll_id: str) -> None:
    """Wait until the responses service has heard of the published poll: the gateway may take
    answers a moment before, and intake then rejects them (``unknown_poll``)."""
    admin = system.admin(municipality)
    until(
        "responses to know the poll",
        lambda: (
            system.api.request("GET", f"/admin/v1/polls/{poll_id}/results", token=admin).status_code
            == 200
        ),
    )
