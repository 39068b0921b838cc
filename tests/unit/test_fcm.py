"""FCM HTTP v1: the message body, the service-account token flow, and how answers are read.

No network: token requests go to a recording fake session; answers are built by hand in the
shapes Google documents (error.details[] with google.firebase.fcm.v1.FcmError).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from requests.structures import CaseInsensitiveDict

from services.notify import fcm
from services.notify.fcm import FcmAuthError, FcmOutcome, ServiceAccountToken, build_message
from tests.fakes.fcm_receiver import make_service_account

NOW = 1_750_000_000.0
MESSAGE = {
    "title": "Nieuwe peiling",
    "body": "Wat vindt u van de nieuwe fietsenstalling?",
    "data": {"poll": "p-1", "kind": "invite"},
    "collapse_key": "poll-p-1",
    "ttl_seconds": 86_400,
    "urgency": "high",
}


@pytest.fixture(scope="module")
def account() -> dict[str, str]:
    return make_service_account(9, project_id="buurtpeil-unit")


# --- build_message ----------------------------------------------------------------------------


def test_build_message_has_the_documented_shape() -> None:
    assert build_message("tok-1", now=NOW, **MESSAGE) == {
        "message": {
            "token": "tok-1",
            "notification": {"title": MESSAGE["title"], "body": MESSAGE["body"]},
            "data": {"poll": "p-1", "kind": "invite"},
            "android": {"collapse_key": "poll-p-1", "ttl": "86400s", "priority": "HIGH"},
            "apns": {
                "headers": {
                    "apns-collapse-id": "poll-p-1",
                    "apns-priority": "10",
                    "apns-expiration": str(int(NOW) + 86_400),  # absolute UNIX time
                }
            },
        }
    }


@pytest.mark.parametrize(
    ("urgency", "android", "apns"),
    [
        ("high", "HIGH", "10"),
        ("normal", "NORMAL", "5"),
        ("low", "NORMAL", "5"),
        ("very-low", "NORMAL", "5"),
    ],
)
def test_urgency_maps_to_android_and_apns_priority(urgency: str, android: str, apns: str) -> None:
    m = build_message("t", now=NOW, **{**MESSAGE, "urgency": urgency})["message"]
    assert m["android"]["priority"] == android
    assert m["apns"]["headers"]["apns-priority"] == apns


def test_ttl_zero_means_now_or_never_on_both_platforms() -> None:
    m = build_message("t", now=NOW, **{**MESSAGE, "ttl_seconds": 0})["message"]
    assert m["android"]["ttl"] == "0s"
    assert m["apns"]["headers"]["apns-expiration"] == "0"


def test_apns_expiration_defaults_to_the_clock() -> None:
    before = time.time()
    m = build_message("t", **MESSAGE)["message"]
    expiration = int(m["apns"]["headers"]["apns-expiration"])
    assert before + 86_400 <= expiration <= time.time() + 86_401


def test_every_header_and_data_value_is_a_string_and_it_is_json() -> None:
    body = build_message("t", now=NOW, **MESSAGE)
    assert json.loads(json.dumps(body)) == body
    m = body["message"]
    assert all(isinstance(v, str) for v in m["data"].values())
    assert all(isinstance(v, str) for v in m["apns"]["headers"].values())


def test_data_is_copied() -> None:
    data = {"poll": "p-1"}
    m = build_message("t", now=NOW, **{**MESSAGE, "data": data})["message"]
    data["poll"] = "changed"
    assert m["data"] == {"poll": "p-1"}


@pytest.mark.parametrize("value", [12, 1.5, None, True, b"p-1", ["a"], {"a": "b"}])
def test_data_values_must_be_strings(value: Any) -> None:
    with pytest.raises(ValueError, match="must be a string"):
        build_message("t", now=NOW, **{**MESSAGE, "data": {"poll": "p-1", "n": value}})


@pytest.mark.parametrize("key", ["from", "message_type", "google.c.a", "gcm.notification.x", ""])
def test_reserved_or_empty_data_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="data key"):
        build_message("t", now=NOW, **{**MESSAGE, "data": {key: "x"}})


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"ttl_seconds": -1}, "ttl_seconds"),
        ({"ttl_seconds": fcm.MAX_TTL + 1}, "ttl_seconds"),
        ({"ttl_seconds": 1.5}, "integer"),
        ({"ttl_seconds": True}, "integer"),
        ({"urgency": "urgent"}, "urgency"),
        ({"urgency": "HIGH"}, "urgency"),
        ({"collapse_key": ""}, "collapse_key"),
        ({"collapse_key": "é" * 33}, "64 octets"),
        ({"title": None}, "title"),
        ({"body": 3}, "body"),
        ({"data": [("a", "b")]}, "mapping"),
    ],
)
def test_what_fcm_would_refuse_is_refused_here(change: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_message("t", now=NOW, **{**MESSAGE, **change})


def test_the_longest_ttl_and_collapse_key_are_accepted() -> None:
    m = build_message(
        "t", now=NOW, **{**MESSAGE, "ttl_seconds": fcm.MAX_TTL, "collapse_key": "k" * 64}
    )["message"]
    assert m["android"]["ttl"] == "2419200s"


def test_a_token_is_required() -> None:
    with pytest.raises(ValueError, match="token"):
        build_message("", now=NOW, **MESSAGE)


# --- access tokens ----------------------------------------------------------------------------


class FakeTokenSession:
    """Records token requests and answers from a list (a dict is a 200 JSON answer, an int a
    bare status, an exception is raised)."""

    def __init__(self, *answers: Any, delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.posts: list[tuple[str, dict[str, str]]] = []
        self.delay = delay
        self.issued = 0

    def post(self, url: str, data: dict[str, str], timeout: Any = None) -> requests.Response:
        self.posts.append((url, data))
        if self.delay:
            time.sleep(self.delay)
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, BaseException):
            raise answer
        if answer is None:
            self.issued += 1
            answer = {
                "access_token": f"ya29.t{self.issued}",
                "expires_in": 3599,
                "token_type": "Bearer",
            }
        if isinstance(answer, tuple):
            return response(*answer)
        return response(200, answer)


def response(
    status: int,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    if body is None:
        r._content = b""
    elif isinstance(body, bytes):
        r._content = body
    else:
        r._content = json.dumps(body).encode()
    r.headers = CaseInsensitiveDict(headers or {})
    return r


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def public_key(account: dict[str, str]) -> Any:
    key = serialization.load_pem_private_key(account["private_key"].encode(), None)
    return key.public_key()


def test_the_assertion_is_an_rs256_jwt_with_googles_claims(account: dict[str, str]) -> None:
    session = FakeTokenSession()
    source = ServiceAccountToken(account, session=session, now=Clock())  # type: ignore[arg-type]
    assert source.token() == "ya29.t1"

    [(url, form)] = session.posts
    assert url == account["token_uri"]
    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    header = jwt.get_unverified_header(form["assertion"])
    assert header == {"alg": "RS256", "typ": "JWT", "kid": account["private_key_id"]}
    claims = jwt.decode(
        form["assertion"],
        public_key(account),
        algorithms=["RS256"],
        audience=account["token_uri"],
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "iss": account["client_email"],
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": account["token_uri"],
        "iat": int(NOW),
        "exp": int(NOW) + 3600,
    }


def test_the_token_is_cached_until_five_minutes_before_it_expires(
    account: dict[str, str],
) -> None:
    session, clock = FakeTokenSession(), Clock()
    source = ServiceAccountToken(account, session=session, now=clock)  # type: ignore[arg-type]
    assert source.token() == "ya29.t1"
    clock.t = NOW + 3599 - 300 - 0.001  # expires_in 3599, as Google answers
    assert source.token() == "ya29.t1"
    assert len(session.posts) == 1
    clock.t = NOW + 3599 - 300
    assert source.token() == "ya29.t2"
    assert len(session.posts) == 2
    claims = jwt.decode(session.posts[1][1]["assertion"], options={"verify_signature": False})
    assert claims["iat"] == int(clock.t) and claims["exp"] == int(clock.t) + 3600
    assert source.fetches == 2


def test_invalidate_forces_a_new_token(account: dict[str, str]) -> None:
    session = FakeTokenSession()
    source = ServiceAccountToken(account, session=session, now=Clock())  # type: ignore[arg-type]
    assert source.token() == "ya29.t1"
    source.invalidate()
    assert source.token() == "ya29.t2"
    source.invalidate("ya29.t1")  # refused earlier, already replaced: keep t2
    assert source.token() == "ya29.t2"
    source.invalidate("ya29.t2")
    assert source.token() == "ya29.t3"


def test_concurrent_callers_share_one_token_request(account: dict[str, str]) -> None:
    session = FakeTokenSession(delay=0.05)
    source = ServiceAccountToken(account, session=session)  # type: ignore[arg-type]
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(source.token())) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tokens == ["ya29.t1"] * 20
    assert len(session.posts) == 1


@pytest.mark.parametrize(
    ("answer", "retryable", "match"),
    [
        (
            (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
            False,
            "invalid_grant",
        ),
        ((401, {"error": "unauthorized_client"}), False, "401"),
        ((503, b"<html>busy</html>"), True, "503"),
        ((429, None), True, "429"),
        ((200, {"token_type": "Bearer"}), True, "no access_token"),
        ((200, b"not json"), True, "no access_token"),
        (requests.ConnectionError("refused"), True, "ConnectionError"),
        (requests.Timeout("slow"), True, "Timeout"),
    ],
)
def test_token_endpoint_failures(
    account: dict[str, str], answer: Any, retryable: bool, match: str
) -> None:
    source = ServiceAccountToken(account, session=FakeTokenSession(answer))  # type: ignore[arg-type]
    with pytest.raises(FcmAuthError, match=match) as raised:
        source.token()
    assert raised.value.retryable is retryable


def test_a_failed_fetch_is_not_cached(account: dict[str, str]) -> None:
    session = FakeTokenSession(requests.ConnectionError("down"))
    source = ServiceAccountToken(account, session=session)  # type: ignore[arg-type]
    with pytest.raises(FcmAuthError):
        source.token()
    assert source.token() == "ya29.t1"


@pytest.mark.parametrize("missing", ["client_email", "private_key", "token_uri"])
def test_service_account_info_is_checked(account: dict[str, str], missing: str) -> None:
    info = {k: v for k, v in account.items() if k != missing}
    with pytest.raises(ValueError, match=missing):
        ServiceAccountToken(info, session=FakeTokenSession())  # type: ignore[arg-type]


def test_not_a_service_account(account: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="service_account"):
        ServiceAccountToken({**account, "type": "authorized_user"}, session=FakeTokenSession())  # type: ignore[arg-type]


def test_static_token() -> None:
    source = fcm.StaticToken("ya29.static")
    source.invalidate()
    assert source.token() == "ya29.static"
    assert "ya29" not in repr(source)
    with pytest.raises(ValueError):
        fcm.StaticToken("")


# --- reading answers --------------------------------------------------------------------------


def fcm_error(code: int, status: str, error_code: str | None, message: str = "m") -> Any:
    details = []
    if error_code:
        details.append(
            {
                "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                "errorCode": error_code,
            }
        )
    return {"error": {"code": code, "message": message, "status": status, "details": details}}


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (
            200,
            {"name": "projects/p/messages/0:1"},
            {},
            FcmOutcome("sent", message_id="projects/p/messages/0:1"),
        ),
        (404, fcm_error(404, "NOT_FOUND", "UNREGISTERED"), {}, FcmOutcome("gone")),
        # UNREGISTERED decides, whatever the HTTP status
        (400, fcm_error(400, "INVALID_ARGUMENT", "UNREGISTERED"), {}, FcmOutcome("gone")),
        (400, fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), {}, FcmOutcome("failed")),
        (
            401,
            fcm_error(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
            {},
            FcmOutcome("failed"),
        ),
        (403, fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), {}, FcmOutcome("failed")),
        (
            429,
            fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
            {"Retry-After": "17"},
            FcmOutcome("retry", 17.0),
        ),
        (
            429,
            fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
            {},
            FcmOutcome("retry", 60.0),
        ),
        (500, fcm_error(500, "INTERNAL", "INTERNAL"), {}, FcmOutcome("retry")),
        (
            503,
            fcm_error(503, "UNAVAILABLE", "UNAVAILABLE"),
            {"Retry-After": "5"},
            FcmOutcome("retry", 5.0),
        ),
        (
            502,
            b"<!DOCTYPE html><title>Error 502 (Server Error)!!1</title>",
            {},
            FcmOutcome("retry"),
        ),
        # a 404 without UNREGISTERED (a wrong project or URL) must not prune tokens
        (404, fcm_error(404, "NOT_FOUND", None), {}, FcmOutcome("failed")),
        (404, b"Not Found", {}, FcmOutcome("failed")),
    ],
)
def test_answers_are_classified(
    status: int, body: Any, headers: dict[str, str], expected: FcmOutcome
) -> None:
    outcome, token_refused = fcm.classify(response(status, body, headers))
    assert (outcome.status, outcome.retry_after, outcome.message_id) == (
        expected.status,
        expected.retry_after,
        expected.message_id,
    )
    assert token_refused is False
    assert (outcome.error is None) == (status == 200)


def test_sender_id_mismatch_reported_as_error_info_is_read_too() -> None:
    body = {
        "error": {
            "code": 403,
            "message": "SenderId mismatch",
            "status": "PERMISSION_DENIED",
            "details": [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "SENDER_ID_MISMATCH",
                    "domain": "googleapis.com",
                }
            ],
        }
    }
    outcome, _ = fcm.classify(response(403, body))
    assert outcome.status == "failed"
    assert outcome.error == "403 SENDER_ID_MISMATCH: SenderId mismatch"


def test_our_refused_access_token_is_told_apart() -> None:
    body = {
        "error": {
            "code": 401,
            "message": "Request had invalid authentication credentials.",
            "status": "UNAUTHENTICATED",
        }
    }
    outcome, token_refused = fcm.classify(response(401, body))
    assert outcome.status == "failed" and token_refused is True
    assert outcome.error is not None and "UNAUTHENTICATED" in outcome.error


def test_retry_after_as_http_date() -> None:
    assert fcm.retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
    assert fcm.retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412510.0) == 0.0
    assert fcm.retry_after_seconds("soon") is None
    assert fcm.retry_after_seconds(None) is None
    assert fcm.retry_after_seconds(" 120 ") == 120.0


def test_make_session_pools_fifty_connections_and_never_retries() -> None:
    with fcm.make_session() as session:
        adapter = session.get_adapter("https://fcm.googleapis.com")
        assert adapter._pool_maxsize == fcm.POOL_SIZE == 50  # type: ignore[attr-defined]
        assert adapter.max_retries.total == 0  # type: ignore[attr-defined]


def test_sender_checks_the_project_id() -> None:
    with pytest.raises(ValueError, match="project"):
        fcm.FcmSender(fcm.FCM_BASE_URL, "projects/x", fcm.StaticToken("t"))
    sender = fcm.FcmSender("https://fcm.googleapis.com/", "buurtpeil-prod", fcm.StaticToken("t"))
    assert sender.url == "https://fcm.googleapis.com/v1/projects/buurtpeil-prod/messages:send"
    sender.close()
