"""Publishing a poll to an audience and following who it reached, over the gateway's API
(the audience tests and the tests of participant kinds share these)."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa


def publish(api: Any, admin: str, audience: dict[str, Any], **fields: Any) -> str:
    """A poll from the veiligheidsgevoel template, published; ``fields`` go into its creation
    (``reminder_after_hours``, say)."""
    poll = api.request(
        "POST",
        "/admin/v1/polls",
        token=admin,
        json={"template_id": "veiligheidsgevoel", "audience": audience, **fields},
    )
    assert poll.status_code == 201, poll.text
    published = api.request("POST", f"/admin/v1/polls/{poll.json()['id']}/publish", token=admin)
    assert published.json()["status"] == "open", published.text
    return str(poll.json()["id"])


def invited(engine: sa.Engine, poll_id: str) -> set[str]:
    """Who notify invited to the poll (resident ids)."""
    with engine.connect() as conn:
        return set(
            conn.execute(
                sa.text("SELECT resident_id::text FROM invitations WHERE poll_id = :p"),
                {"p": poll_id},
            ).scalars()
        )


def submit(api: Any, token: str, poll_id: str, answers: dict[str, Any]) -> Any:
    return api.request(
        "POST",
        f"/api/v1/polls/{poll_id}/responses",
        token=token,
        json={"answers": answers},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


def listed(api: Any, token: str) -> list[str]:
    """The open polls the resident app lists for this token."""
    found = api.request("GET", "/api/v1/polls", token=token)
    assert found.status_code == 200, found.text
    return [p["poll_id"] for p in found.json()]


def register_device(api: Any, push: Any, token: str) -> dict[str, Any]:
    """This participant's browser turns on messages: a Web Push subscription at the fake push
    service, registered through the gateway."""
    key = api.request("GET", "/api/v1/push/vapid-public-key").json()["application_server_key"]
    subscription = push.subscribe(key)
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
    assert device.status_code == 201, device.text
    return {**subscription, "device_id": device.json()["device_id"]}


def sign_up_by_email(
    api: Any, smtp_sink: Any, municipality_code: str, email: str, profile: dict[str, Any]
) -> Any:
    """Sign up by e-mail over the gateway (the code from the verification e-mail at the fake
    mail server); the verify response, whatever its status."""
    from tests.conftest import wait_for

    api.request(
        "POST",
        "/api/v1/signup",
        json={"municipality_code": municipality_code, "email": email, "language": "nl"},
    )
    wait_for(lambda: smtp_sink.to(email), message="the verification e-mail")
    text = smtp_sink.to(email)[0].get_body(("plain",)).get_content()
    code = next(w for w in text.split() if w.isdigit() and len(w) == 6)
    return api.request(
        "POST",
        "/api/v1/signup/verify",
        json={"municipality_code": municipality_code, "email": email, "code": code, **profile},
    )
