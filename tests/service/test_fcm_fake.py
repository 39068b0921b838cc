"""FcmSender and ServiceAccountToken end to end against the fake FCM v1 endpoint over real HTTP.

No broker or database: only the fake (a threaded HTTP server) and ``requests``.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from services.notify import fcm
from services.notify.fcm import FcmSender, ServiceAccountToken, StaticToken, build_message
from tests.fakes.fcm_receiver import FakeFcm, make_service_account

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "buurtpeil-test"
MESSAGE: dict[str, Any] = {
    "title": "Nieuwe peiling",
    "body": "Wat vindt u van de nieuwe fietsenstalling?",
    "data": {"poll": "p-1"},
    "collapse_key": "poll-p-1",
    "ttl_seconds": 3600,
    "urgency": "normal",
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeFcm]:
    with FakeFcm(project_id=PROJECT, static_tokens=["ya29.static"]) as service:
        yield service


@pytest.fixture(scope="module")
def account(fake: FakeFcm) -> dict[str, str]:
    return fake.new_service_account()


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with fcm.make_session() as session:
        yield session


@pytest.fixture(scope="module")
def source(account: dict[str, str], session: requests.Session) -> ServiceAccountToken:
    return ServiceAccountToken(account, session=session)


@pytest.fixture
def sender(fake: FakeFcm, source: ServiceAccountToken, session: requests.Session) -> FcmSender:
    return FcmSender(fake.url, PROJECT, source, session)


def device() -> str:
    return "fcm-" + secrets.token_urlsafe(24)


# --- FcmSender with ServiceAccountToken -----------------------------------------------------


def test_sent(fake: FakeFcm, sender: FcmSender) -> None:
    token = device()
    outcome = sender.send(token, **MESSAGE)
    assert outcome.status == "sent" and outcome.error is None
    [accepted] = fake.messages_for(token)
    assert outcome.message_id == accepted.name
    assert accepted.name.startswith(f"projects/{PROJECT}/messages/")
    assert accepted.message["data"] == {"poll": "p-1"}
    assert accepted.message["android"] == {
        "collapse_key": "poll-p-1",
        "ttl": "3600s",
        "priority": "NORMAL",
    }
    assert accepted.message["apns"]["headers"]["apns-priority"] == "5"


def test_one_token_and_one_connection_for_many_sends(
    fake: FakeFcm, account: dict[str, str]
) -> None:
    token_requests, connections = fake.token_requests, fake.connections
    with FcmSender(fake.url, PROJECT, StaticToken("unused")) as sender:
        sender.token_source = ServiceAccountToken(account, session=sender.session)
        outcomes = [sender.send(device(), **MESSAGE) for _ in range(10)]
    assert {o.status for o in outcomes} == {"sent"}
    assert fake.token_requests - token_requests == 1
    assert fake.connections - connections == 1  # the token request and the sends: keep-alive


def test_unregistered_is_gone(fake: FakeFcm, sender: FcmSender) -> None:
    token = device()
    fake.unregister(token)
    outcome = sender.send(token, **MESSAGE)
    assert outcome.status == "gone"
    assert outcome.error is not None and "UNREGISTERED" in outcome.error
    assert fake.messages_for(token) == []


def test_quota_exceeded_is_retried_after_retry_after(fake: FakeFcm, sender: FcmSender) -> None:
    token = device()
    fake.fail(token, 429, times=1, retry_after=7)
    outcome = sender.send(token, **MESSAGE)
    assert (outcome.status, outcome.retry_after) == ("retry", 7.0)
    assert outcome.error is not None and "QUOTA_EXCEEDED" in outcome.error
    assert sender.send(token, **MESSAGE).status == "sent"  # times=1: healed


def test_quota_exceeded_without_retry_after_waits_a_minute(
    fake: FakeFcm, sender: FcmSender
) -> None:
    token = device()
    fake.fail(token, 429, times=1)
    outcome = sender.send(token, **MESSAGE)
    assert (outcome.status, outcome.retry_after) == ("retry", 60.0)


@pytest.mark.parametrize(("status", "code"), [(500, "INTERNAL"), (503, "UNAVAILABLE")])
def test_server_errors_are_retried_with_backoff(
    fake: FakeFcm, sender: FcmSender, status: int, code: str
) -> None:
    token = device()
    fake.fail(token, status, times=1)
    outcome = sender.send(token, **MESSAGE)
    assert (outcome.status, outcome.retry_after) == ("retry", None)  # the caller backs off
    assert outcome.error is not None and code in outcome.error


def test_unavailable_with_retry_after(fake: FakeFcm, sender: FcmSender) -> None:
    token = device()
    fake.fail(token, 503, times=1, retry_after=3)
    assert sender.send(token, **MESSAGE).retry_after == 3.0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"priority": "urgent"}, "message.android.priority"),
        ({"ttl": "1h"}, "message.android.ttl"),
        ({"ttl": 3600}, "message.android.ttl"),
        ({"ttl": "2419201s"}, "message.android.ttl"),
    ],
)
def test_an_invalid_message_fails_without_retry(
    fake: FakeFcm, sender: FcmSender, change: dict[str, Any], field: str
) -> None:
    body = build_message(device(), **MESSAGE)
    body["message"]["android"].update(change)
    outcome = sender.send_body(body)
    assert outcome.status == "failed" and outcome.retry_after is None
    assert outcome.error is not None and outcome.error.startswith("400 INVALID_ARGUMENT")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m["data"].update(n=12),
        lambda m: m.update(colour="red"),
        lambda m: m.update(topic="polls"),
        lambda m: m.pop("token"),
        lambda m: m["notification"].update(title=None),
        lambda m: m["data"].update({"google.sent_time": "1"}),
        lambda m: m["apns"]["headers"].update({"apns-priority": "7"}),
    ],
)
def test_the_fake_validates_the_message_strictly(
    fake: FakeFcm, sender: FcmSender, mutate: Any
) -> None:
    body = build_message(device(), **MESSAGE)
    mutate(body["message"])
    outcome = sender.send_body(body)
    assert outcome.status == "failed"
    assert outcome.error is not None and "INVALID_ARGUMENT" in outcome.error


def test_unknown_top_level_field_is_invalid(fake: FakeFcm, sender: FcmSender) -> None:
    outcome = sender.send_body({**build_message(device(), **MESSAGE), "dry_run": True})
    assert outcome.status == "failed"
    assert outcome.error is not None and 'Unknown name "dry_run"' in outcome.error


def test_validate_only_records_nothing(fake: FakeFcm, sender: FcmSender) -> None:
    token = device()
    outcome = sender.send_body({**build_message(token, **MESSAGE), "validate_only": True})
    assert outcome.status == "sent"
    assert outcome.message_id == f"projects/{PROJECT}/messages/fake_message_id"
    assert fake.messages_for(token) == []


def test_wrong_bearer_fails(fake: FakeFcm, session: requests.Session) -> None:
    requests_before = fake.requests
    sender = FcmSender(fake.url, PROJECT, StaticToken("ya29.forged"), session)
    outcome = sender.send(device(), **MESSAGE)
    assert outcome.status == "failed"
    assert outcome.error is not None and "401 UNAUTHENTICATED" in outcome.error
    assert fake.requests - requests_before == 1  # the same static token is not tried twice


def test_a_revoked_access_token_is_replaced_once(
    fake: FakeFcm, sender: FcmSender, source: ServiceAccountToken
) -> None:
    assert sender.send(device(), **MESSAGE).status == "sent"
    fetches = source.fetches
    fake.expire_tokens()
    assert sender.send(device(), **MESSAGE).status == "sent"
    assert source.fetches == fetches + 1


def test_a_static_token_works(fake: FakeFcm, session: requests.Session) -> None:
    sender = FcmSender(fake.url, PROJECT, StaticToken("ya29.static"), session)
    assert sender.send(device(), **MESSAGE).status == "sent"


@pytest.mark.parametrize(
    ("status", "code"), [(401, "THIRD_PARTY_AUTH_ERROR"), (403, "SENDER_ID_MISMATCH")]
)
def test_auth_errors_of_the_device_platform_fail(
    fake: FakeFcm, sender: FcmSender, source: ServiceAccountToken, status: int, code: str
) -> None:
    token = device()
    source.token()
    fetches = source.fetches
    fake.fail(token, status)
    outcome = sender.send(token, **MESSAGE)
    assert outcome.status == "failed"
    assert outcome.error is not None and outcome.error.startswith(f"{status} {code}")
    assert source.fetches == fetches  # not mistaken for our access token being refused


def test_another_project_is_permission_denied_not_gone(
    fake: FakeFcm, source: ServiceAccountToken, session: requests.Session
) -> None:
    outcome = FcmSender(fake.url, "someone-else", source, session).send(device(), **MESSAGE)
    assert outcome.status == "failed"
    assert outcome.error is not None and "PERMISSION_DENIED" in outcome.error


def test_a_wrong_base_url_does_not_prune(
    fake: FakeFcm, source: ServiceAccountToken, session: requests.Session
) -> None:
    outcome = FcmSender(fake.url + "/nope", PROJECT, source, session).send(device(), **MESSAGE)
    assert outcome.status == "failed"  # a 404 without UNREGISTERED


def test_an_untrusted_key_gets_no_token(fake: FakeFcm, session: requests.Session) -> None:
    stranger = make_service_account(fake.port, project_id=PROJECT)  # not trusted by the fake
    sender = FcmSender(fake.url, PROJECT, ServiceAccountToken(stranger, session=session), session)
    outcome = sender.send(device(), **MESSAGE)
    assert outcome.status == "failed"
    assert outcome.error is not None and outcome.error.startswith("auth:")
    assert "invalid_grant" in outcome.error


def test_connection_refused_is_retried(account: dict[str, str], session: requests.Session) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = FcmSender(f"http://127.0.0.1:{port}", PROJECT, StaticToken("t"), session)
    outcome = sender.send(device(), **MESSAGE)
    assert (outcome.status, outcome.retry_after) == ("retry", None)
    assert outcome.error is not None and outcome.error.startswith("connection:")


def test_a_timeout_is_retried(session: requests.Session) -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        sender = FcmSender(f"http://127.0.0.1:{port}", PROJECT, StaticToken("t"), session, 0.2)
        outcome = sender.send(device(), **MESSAGE)
    assert outcome.status == "retry"
    assert outcome.error is not None and "Timeout" in outcome.error


def test_token_endpoint_unreachable_is_retried(
    account: dict[str, str], fake: FakeFcm, session: requests.Session
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    info = {**account, "token_uri": f"http://127.0.0.1:{port}/token"}
    sender = FcmSender(fake.url, PROJECT, ServiceAccountToken(info, session=session), session)
    outcome = sender.send(device(), **MESSAGE)
    assert outcome.status == "retry" and outcome.error is not None
    assert outcome.error.startswith("auth: token endpoint")


# --- the fake's token endpoint directly -----------------------------------------------------


def test_token_endpoint_checks_grant_type_and_signature(
    fake: FakeFcm, source: ServiceAccountToken, session: requests.Session
) -> None:
    assertion = source.assertion(int(time.time()))

    wrong_grant = session.post(
        fake.token_uri, data={"grant_type": "client_credentials", "assertion": assertion}
    )
    assert wrong_grant.status_code == 400
    assert wrong_grant.json()["error"] == "unsupported_grant_type"

    head, claims, signature = assertion.split(".")
    forged = f"{head}.{claims}.{signature[:-4]}AAAA"
    refused = session.post(fake.token_uri, data={"grant_type": fcm.GRANT_TYPE, "assertion": forged})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

    ok = session.post(fake.token_uri, data={"grant_type": fcm.GRANT_TYPE, "assertion": assertion})
    assert ok.status_code == 200
    answer = ok.json()
    assert set(answer) == {"access_token", "expires_in", "token_type"}
    assert (answer["expires_in"], answer["token_type"]) == (3600, "Bearer")


def test_error_bodies_are_google_shaped(fake: FakeFcm, session: requests.Session) -> None:
    token = device()
    fake.unregister(token)
    r = session.post(
        f"{fake.url}/v1/projects/{PROJECT}/messages:send",
        json=build_message(token, **MESSAGE),
        headers={"Authorization": "Bearer ya29.static"},
    )
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "code": 404,
            "message": "Requested entity was not found.",
            "status": "NOT_FOUND",
            "details": [
                {
                    "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                    "errorCode": "UNREGISTERED",
                }
            ],
        }
    }


# --- under eventlet -------------------------------------------------------------------------

EVENTLET_SCRIPT = textwrap.dedent(
    """
    import eventlet
    eventlet.monkey_patch()
    import json, sys
    from services.notify.fcm import FcmSender, ServiceAccountToken, make_session

    base_url, info_path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    info = json.load(open(info_path))
    session = make_session()
    sender = FcmSender(base_url, info["project_id"], ServiceAccountToken(info, session=session),
                       session)
    message = dict(title="t", body="b", data={"i": "0"}, collapse_key="k", ttl_seconds=60,
                   urgency="high")
    pool = eventlet.GreenPool(50)
    outcomes = list(pool.imap(lambda i: sender.send(f"device-{i}", **message).status, range(n)))
    print(json.dumps(outcomes))
    """
)


def test_fifty_greenthreads_share_one_sender_under_eventlet(
    fake: FakeFcm, account: dict[str, str], tmp_path: Path
) -> None:
    info_path = tmp_path / "sa.json"
    info_path.write_text(json.dumps(account))
    token_requests, connections = fake.token_requests, fake.connections
    accepted = len(fake.messages)
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", EVENTLET_SCRIPT, fake.url, str(info_path), "100"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["sent"] * 100
    assert len(fake.messages) - accepted == 100
    assert fake.token_requests - token_requests == 1  # the greenthreads waited for one fetch
    assert fake.connections - connections <= fcm.POOL_SIZE  # reused, not one per message
