"""The fake Web Push service over real HTTP: what it accepts, what it refuses, and its hooks.

No broker or database: only the fake (a threaded HTTP server) and ``requests``.
"""

from __future__ import annotations

import base64
import http.client
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec

from services.notify import webpush
from tests.fakes.push_service import FakePushService


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@pytest.fixture
def push() -> Iterator[FakePushService]:
    with FakePushService() as service:
        yield service


@pytest.fixture(scope="module")
def vapid() -> webpush.Vapid:
    return webpush.Vapid(webpush.generate_vapid_key(), "mailto:push@buurtpeil.example")


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


class Browser:
    """A subscription: keys made here, endpoint from the fake."""

    def __init__(self, push: FakePushService, **register: Any) -> None:
        self.private_key, self.p256dh, self.auth = webpush.generate_subscription_keys()
        self.endpoint = push.register(self.private_key, unb64(self.auth), **register)
        self.id = push.subscription_id(self.endpoint)


def post(
    session: requests.Session,
    vapid: webpush.Vapid,
    browser: Browser,
    payload: bytes = b'{"poll":"p1"}',
    *,
    body: bytes | None = None,
    **headers: str | None,
) -> requests.Response:
    sent = {"TTL": "3600", "Content-Encoding": "aes128gcm", "Urgency": "normal"}
    sent.update(vapid.headers(browser.endpoint))
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    if body is None:
        body = webpush.encrypt(payload, p256dh=browser.p256dh, auth=browser.auth)
    return session.post(
        browser.endpoint, data=body, headers={k: v for k, v in sent.items() if v is not None}
    )


def test_valid_push_is_created_and_decrypted(push, vapid, session) -> None:
    browser = Browser(push)
    topic = webpush.topic_for("poll-1", "invitation")
    response = post(
        session, vapid, browser, b'{"title":"Nieuwe peiling"}', Topic=topic, Urgency="high"
    )
    assert response.status_code == 201, response.text
    assert response.headers["Location"].startswith(f"{push.origin}/message/")
    assert response.headers["TTL"] == "3600"
    assert push.wait_for(1, timeout=2)
    (delivery,) = push.deliveries
    assert delivery.payload == b'{"title":"Nieuwe peiling"}'
    assert delivery.subscription_id == browser.id
    assert (delivery.topic, delivery.urgency, delivery.ttl) == (topic, "high", 3600)
    assert delivery.vapid_key == vapid.public_key_b64
    assert push.decrypted_count == 1


def test_largest_payload_accepted(push, vapid, session) -> None:
    browser = Browser(push)
    payload = b"x" * webpush.MAX_PAYLOAD
    response = post(session, vapid, browser, payload)
    assert response.status_code == 201
    assert len(response.request.body) == 4096
    assert push.deliveries[0].payload == payload


def test_push_without_payload_needs_no_encoding(push, vapid, session) -> None:
    browser = Browser(push)
    response = post(session, vapid, browser, body=b"", Content_Encoding=None)
    assert response.status_code == 201
    assert push.deliveries[0].payload == b""


def test_missing_vapid_is_401(push, vapid, session) -> None:
    browser = Browser(push)
    response = post(session, vapid, browser, Authorization=None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "vapid"
    response = post(session, vapid, browser, Authorization="WebPush eyJ.eyJ.sig")  # draft scheme
    assert response.status_code == 401
    assert push.decrypted_count == 0


def test_wrong_audience_is_403(push, vapid, session) -> None:
    browser = Browser(push)
    elsewhere = vapid.headers("https://fcm.googleapis.com/fcm/send/x")["Authorization"]
    response = post(session, vapid, browser, Authorization=elsewhere)
    assert response.status_code == 403
    assert "wrong_audience" in response.json()["reason"]
    other_port = vapid.headers(f"http://{push.host}:{push.port + 1}/push/x")["Authorization"]
    assert post(session, vapid, browser, Authorization=other_port).status_code == 403


def test_expired_or_forged_vapid_is_403(push, vapid, session) -> None:
    browser = Browser(push)
    expired = webpush.Vapid(webpush.generate_vapid_key(), "mailto:a@b.example")
    old = expired.headers(browser.endpoint, now=1_000_000_000)["Authorization"]
    assert post(session, vapid, browser, Authorization=old).status_code == 403
    token = vapid.headers(browser.endpoint)["Authorization"].split(",")[0]
    other_key = webpush.vapid_public_key_b64(webpush.generate_vapid_key())
    forged = post(session, vapid, browser, Authorization=f"{token}, k={other_key}")
    assert forged.status_code == 403
    assert "bad_signature" in forged.json()["reason"]


def test_restricted_subscription_needs_its_key(push, vapid, session) -> None:
    browser = Browser(push, application_server_key=vapid.public_key_b64)
    assert post(session, vapid, browser).status_code == 201
    stranger = webpush.Vapid(webpush.generate_vapid_key(), "mailto:a@b.example")
    assert post(session, stranger, browser).status_code == 403


@pytest.mark.parametrize(
    "headers",
    [
        {"TTL": None},
        {"TTL": ""},
        {"TTL": "-1"},
        {"TTL": "1.5"},
        {"TTL": "soon"},
        {"Urgency": "urgent"},
        {"Urgency": "HIGH"},
        {"Topic": "has space"},
        {"Topic": "x" * 33},
        {"Topic": "plus+slash/"},
        {"Content-Encoding": None},
        {"Content-Encoding": "aesgcm"},
        {"Content-Encoding": "aes128gcm, aes128gcm"},
        {"Content-Encoding": "gzip"},
    ],
)
def test_bad_headers_are_400(push, vapid, session, headers: dict[str, str | None]) -> None:
    browser = Browser(push)
    response = post(session, vapid, browser, **{k.replace("-", "_"): v for k, v in headers.items()})
    assert response.status_code == 400, headers
    assert push.decrypted_count == 0


def test_body_that_does_not_decrypt_is_400(push, vapid, session) -> None:
    browser = Browser(push)
    body = bytearray(webpush.encrypt(b"hello", p256dh=browser.p256dh, auth=browser.auth))
    body[-1] ^= 1
    response = post(session, vapid, browser, body=bytes(body))
    assert response.status_code == 400
    assert "decryption_failed" in response.json()["reason"]
    other = Browser(push)  # encrypted for someone else
    body = webpush.encrypt(b"hello", p256dh=other.p256dh, auth=other.auth)
    assert post(session, vapid, browser, body=body).status_code == 400
    assert post(session, vapid, browser, body=b"\x00" * 40).status_code == 400


def test_vapid_key_reused_for_ecdh_is_400(push, vapid, session) -> None:
    """RFC 8292 §3.2: the push service SHOULD refuse a keyid equal to the VAPID key."""
    browser = Browser(push)
    body = webpush._encrypt(
        b"hello", unb64(browser.p256dh), unb64(browser.auth), salt=b"s" * 16, server_key=vapid._key
    )
    assert post(session, vapid, browser, body=body).status_code == 400


def test_too_large_is_413(push, vapid, session) -> None:
    browser = Browser(push)
    assert post(session, vapid, browser, body=b"x" * 4097).status_code == 413
    # the connection is still usable afterwards
    assert post(session, vapid, browser).status_code == 201


def test_unknown_endpoint_is_404(push, vapid, session) -> None:
    browser = Browser(push)
    browser.endpoint = f"{push.origin}/push/nosuchsubscription"
    assert post(session, vapid, browser).status_code == 404
    assert session.post(f"{push.origin}/elsewhere", data=b"x").status_code == 404


def test_gone_subscription_is_410(push, vapid, session) -> None:
    gone, failing = Browser(push), Browser(push)
    push.unregister(gone.endpoint)
    assert post(session, vapid, gone).status_code == 410
    push.fail(failing.endpoint, 410)
    assert [post(session, vapid, failing).status_code for _ in range(3)] == [410, 410, 410]
    assert push.decrypted_count == 0
    assert push.rejected == {410: 4}


def test_429_with_retry_after_then_recovers(push, vapid, session) -> None:
    browser = Browser(push)
    push.fail(browser.id, 429, times=2, retry_after=30)
    first, second, third = (post(session, vapid, browser) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 201)
    assert first.headers["Retry-After"] == "30"
    assert push.decrypted_count == 1


def test_500_once_and_heal(push, vapid, session) -> None:
    browser = Browser(push)
    push.fail(browser.endpoint, 500, times=1)
    assert post(session, vapid, browser).status_code == 500
    assert post(session, vapid, browser).status_code == 201
    push.fail(browser.endpoint, 503)
    assert post(session, vapid, browser).status_code == 503
    push.heal(browser.endpoint)
    assert post(session, vapid, browser).status_code == 201


def test_topic_replaces_undelivered_message(push, vapid, session) -> None:
    browser = Browser(push)
    invite = webpush.topic_for("poll-1", "invitation")
    feedback = webpush.topic_for("poll-1", "feedback")
    for payload, topic in [
        (b"invite v1", invite),
        (b"untopiced 1", None),
        (b"feedback v1", feedback),
        (b"invite v2 (resend)", invite),
        (b"untopiced 2", None),
    ]:
        assert post(session, vapid, browser, payload, Topic=topic).status_code == 201
    assert len(push.deliveries_for(browser.endpoint)) == 5
    latest = [d.payload for d in push.latest_by_topic(browser.endpoint)]
    assert latest == [b"untopiced 1", b"feedback v1", b"invite v2 (resend)", b"untopiced 2"]


def test_keep_alive_connection_is_reused(push, vapid) -> None:
    browser = Browser(push)
    connection = http.client.HTTPConnection(push.host, push.port, timeout=5)
    try:
        for i in range(5):
            body = webpush.encrypt(f"m{i}".encode(), p256dh=browser.p256dh, auth=browser.auth)
            headers = {"TTL": "60", "Content-Encoding": "aes128gcm"}
            headers.update(vapid.headers(browser.endpoint))
            connection.request("POST", f"/push/{browser.id}", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            assert response.status == 201
            assert response.version == 11 and not response.will_close
            if i == 0:
                first_socket = connection.sock
            assert connection.sock is first_socket  # never reopened
    finally:
        connection.close()
    assert [d.payload for d in push.deliveries] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert push.connections == 1


def test_concurrent_senders(push, vapid) -> None:
    browsers = [Browser(push) for _ in range(4)]
    errors: list[Any] = []

    def sender(browser: Browser) -> None:
        with requests.Session() as session:
            for i in range(25):
                response = post(session, vapid=vapid, browser=browser, payload=b"%d" % i)
                if response.status_code != 201:
                    errors.append(response.status_code)

    threads = [threading.Thread(target=sender, args=(b,)) for b in browsers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert push.wait_for(100, timeout=5)
    assert push.decrypted_count == 100
    for browser in browsers:
        assert sorted(int(d.payload) for d in push.deliveries_for(browser.id)) == list(range(25))


def test_wait_for_times_out(push) -> None:
    assert push.wait_for(1, timeout=0.05) is False


def test_http_helpers_for_other_processes(push, vapid, session) -> None:
    made = session.post(f"{push.origin}/subscribe", json={})
    assert made.status_code == 201
    subscription = made.json()
    assert set(subscription) == {"endpoint", "expirationTime", "keys"}
    assert subscription["endpoint"].startswith(f"{push.origin}/push/")
    body = webpush.encrypt(b"hallo", **subscription["keys"])
    headers = {"TTL": "0", "Content-Encoding": "aes128gcm"}
    headers.update(vapid.headers(subscription["endpoint"]))
    assert session.post(subscription["endpoint"], data=body, headers=headers).status_code == 201
    report = session.get(
        f"{push.origin}/deliveries", params={"subscription": made.headers["Location"]}
    )
    assert [d["payload"] for d in report.json()] == ["hallo"]
    stats = session.get(f"{push.origin}/stats").json()
    assert stats["delivered"] == 1 and stats["subscriptions"] == 1
    assert session.post(f"{push.origin}/subscribe", data=b"[1]").status_code == 400
    # restricted subscription made over HTTP
    restricted = session.post(
        f"{push.origin}/subscribe", json={"applicationServerKey": vapid.public_key_b64}
    ).json()
    other = webpush.Vapid(webpush.generate_vapid_key(), "mailto:a@b.example")
    body = webpush.encrypt(b"hallo", **restricted["keys"])
    headers.update(other.headers(restricted["endpoint"]))
    assert session.post(restricted["endpoint"], data=body, headers=headers).status_code == 403


def test_register_checks_auth(push) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValueError):
        push.register(key, b"short")
