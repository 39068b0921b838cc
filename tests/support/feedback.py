"""Closing a poll and publishing its feedback and measures over the gateway's API, and reading
what the fake push service decrypted (the feedback, overview and participant-kind tests share
these)."""

from __future__ import annotations

import json

from tests.conftest import wait_for


def close(api, token, poll_id):
    closed = api.request("POST", f"/admin/v1/polls/{poll_id}/close", token=token)
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text


def draft(title):
    return {
        "title": title,
        "heard": "Veel bewoners voelen zich 's avonds onveilig op straat.",
        "plan": "We plaatsen extra verlichting en praten met de wijkagent.",
        "not_followed": "Cameratoezicht: daarvoor is de overlast te klein.",
    }


def save_draft(api, token, poll_id, body):
    """PUT the draft once feedback has heard of the poll (poll_published reaches it async)."""

    def attempt():
        response = api.request("PUT", f"/admin/v1/polls/{poll_id}/feedback", token=token, json=body)
        assert response.status_code in (200, 404), response.text
        return response if response.status_code == 200 else None

    return wait_for(attempt, timeout=15, message="feedback knowing the poll").json()


def publish(api, token, poll_id):
    """Publish once feedback has heard the poll closed (409 until poll_closed reaches it)."""

    def attempt():
        response = api.request("POST", f"/admin/v1/polls/{poll_id}/feedback/publish", token=token)
        assert response.status_code in (200, 409), response.text
        return response if response.status_code == 200 else None

    return wait_for(attempt, timeout=15, message="feedback knowing the poll closed").json()


def add_measure(api, token, poll_id, title, area_codes=("WK034401",), **extra):
    response = api.request(
        "POST",
        f"/admin/v1/polls/{poll_id}/feedback/measures",
        token=token,
        json={
            "title": title,
            "description": "Twaalf extra lantaarnpalen langs het fietspad.",
            "area_codes": list(area_codes),
            "owner": "Afdeling Openbare Ruimte",
            "expected_date": "2030-03-01",
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def feedback_id_of(view):
    return view.get("feedback_id") or view["id"]


def measure_id_of(view):
    return view.get("measure_id") or view["id"]


def messages(push, subscription, kind=None):
    found = [json.loads(d.payload) for d in push.deliveries_for(subscription["endpoint"])]
    return [m for m in found if kind is None or m["type"] == kind]
