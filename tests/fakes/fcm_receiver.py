"""A fake Firebase Cloud Messaging HTTP v1 endpoint, with Google's OAuth 2.0 token endpoint,
for tests, benchmarks and ``make run``. It speaks the real wire formats (JSON bodies, Google
error bodies, the JWT-bearer grant) over HTTP/1.1 with keep-alive.

    fcm = FakeFcm(project_id="buurtpeil-test").start()
    info = fcm.new_service_account()            → a service-account JSON whose key fcm trusts
    ... FcmSender(fcm.url, "buurtpeil-test", ServiceAccountToken(info, session=s)) ...
    fcm.wait_for(1); fcm.messages[0].message      → the accepted Message
    fcm.unregister(token)                         → 404 UNREGISTERED from now on
    fcm.fail(token, 429, times=1, retry_after=7)  → 429 QUOTA_EXCEEDED, Retry-After: 7
    python -m tests.fakes.fcm_receiver --port 8090 [--service-account-out sa.json]

``POST /token`` (application/x-www-form-urlencoded): grant_type must be
urn:ietf:params:oauth:grant-type:jwt-bearer (else 400 unsupported_grant_type); the assertion
must be an RS256 JWT from a trusted service account (``trust`` / ``new_service_account``), by
its iss (client_email) and kid (private_key_id), verified with that account's public key, with
aud = the account's token_uri, iat within a minute of now, exp - iat <= 3600 and a scope that
includes firebase.messaging or cloud-platform (else 400 invalid_grant / invalid_scope, as
Google answers). The answer: {"access_token", "expires_in": 3600, "token_type": "Bearer"}.

``POST /v1/projects/<project>/messages:send`` checks, in this order:

- ``Authorization: Bearer <t>``: t issued here and not expired, or a static token → else 401
  UNAUTHENTICATED (no FcmError detail: it is about the caller, not the device);
- the project: the one the token was issued for (a static token: ``project_id``) → else 403
  PERMISSION_DENIED;
- the body: a JSON object with only ``message`` and ``validate_only``; the message strictly:
  known fields only, exactly one of token/topic/condition, notification title/body/image
  strings, data a map of strings without reserved keys (and at most 4096 octets of data and
  notification text), android.ttl a Duration ("^\\d+(\\.\\d+)?s$", at most 4 weeks),
  android.priority NORMAL or HIGH, apns.headers strings (apns-priority 5 or 10,
  apns-expiration digits), webpush headers/data strings → else 400 INVALID_ARGUMENT with a
  google.rpc.BadRequest field violation and an FcmError INVALID_ARGUMENT detail;
- for a token: ``unregister``-ed → 404 NOT_FOUND / UNREGISTERED; a failure injected with
  ``fail`` → that status (429 RESOURCE_EXHAUSTED / QUOTA_EXCEEDED, 500 INTERNAL, 503
  UNAVAILABLE, 401 THIRD_PARTY_AUTH_ERROR, 403 SENDER_ID_MISMATCH, 400 INVALID_ARGUMENT,
  404 UNREGISTERED), with Retry-After if given;
- otherwise the message is recorded (unless validate_only) and the answer is 200
  {"name": "projects/<project>/messages/<id>"}.

Test-only GETs for other processes: ``/messages`` and ``/stats``.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPES = (
    "https://www.googleapis.com/auth/firebase.messaging",
    "https://www.googleapis.com/auth/cloud-platform",
)
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
TOKEN_LIFETIME = 3600
CLOCK_SKEW = 60  # seconds of leeway on iat/exp, as Google allows some
MAX_TTL = 2_419_200
MAX_PAYLOAD = 4096  # "4096 bytes for most messages" (keys and values)
MAX_BODY = 64 * 1024
DEFAULT_PROJECT = "buurtpeil-test"

_SEND_PATH = re.compile(r"/v1/projects/([^/]+)/messages:send")
_DURATION = re.compile(r"\d+(\.\d{1,9})?s")
_DIGITS = re.compile(r"\d+")
_TOPIC = re.compile(r"(/topics/)?[a-zA-Z0-9\-_.~%]+")

# The Message resource and its parts: every field name, in both spellings the JSON mapping of
# proto3 accepts (lowerCamelCase and the original snake_case).
_MESSAGE_FIELDS = {
    "name",
    "data",
    "notification",
    "android",
    "webpush",
    "apns",
    "fcm_options",
    "fcmOptions",
    "token",
    "topic",
    "condition",
}
_NOTIFICATION_FIELDS = {"title", "body", "image"}
_ANDROID_FIELDS = {
    "collapse_key",
    "collapseKey",
    "priority",
    "ttl",
    "restricted_package_name",
    "restrictedPackageName",
    "data",
    "notification",
    "fcm_options",
    "fcmOptions",
    "direct_boot_ok",
    "directBootOk",
    "bandwidth_constrained_ok",
    "bandwidthConstrainedOk",
    "restricted_satellite_ok",
    "restrictedSatelliteOk",
}
_APNS_FIELDS = {
    "headers",
    "payload",
    "fcm_options",
    "fcmOptions",
    "live_activity_token",
    "liveActivityToken",
}
_WEBPUSH_FIELDS = {"headers", "data", "notification", "fcm_options", "fcmOptions"}

# Canonical status and FcmError code for each status ``fail`` can inject.
_FAILURES = {
    400: ("INVALID_ARGUMENT", "INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "Auth error from APNS or Web Push Service"),
    403: ("PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"),
    404: ("NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
    429: ("RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for the message target."),
    500: ("INTERNAL", "INTERNAL", "Internal error encountered."),
    503: ("UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."),
}


class Invalid(Exception):
    """A message FCM would refuse with 400 INVALID_ARGUMENT, ``field`` as Google names it; for
    the token endpoint, ``field`` is the OAuth error code (invalid_grant)."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(description)
        self.field = field
        self.description = description


@dataclass(frozen=True)
class Accepted:
    project: str
    message: dict[str, Any]
    message_id: str
    received_at: float

    @property
    def name(self) -> str:
        return f"projects/{self.project}/messages/{self.message_id}"

    @property
    def target(self) -> str | None:
        return self.message.get("token")


@dataclass
class _Failure:
    status: int
    remaining: int | None  # None: always
    retry_after: int | float | None


@dataclass(frozen=True)
class _Account:
    client_email: str
    key_id: str
    project_id: str
    token_uri: str
    public_key: rsa.RSAPublicKey


def make_service_account(
    port: int, *, project_id: str = DEFAULT_PROJECT, host: str = "127.0.0.1"
) -> dict[str, str]:
    """A service-account key file as the Firebase console downloads it, with a fresh RSA key
    and the token_uri of a fake on ``host:port``. The fake must ``trust`` it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    client_id = str(secrets.randbelow(10**20)).rjust(21, "1")
    email = f"firebase-adminsdk-{secrets.token_hex(3)}@{project_id}.iam.gserviceaccount.com"
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": email,
        "client_id": client_id,
        "auth_uri": f"http://{host}:{port}/auth",
        "token_uri": f"http://{host}:{port}/token",
        "auth_provider_x509_cert_url": f"http://{host}:{port}/certs",
        "client_x509_cert_url": f"http://{host}:{port}/certs/{email}",
        "universe_domain": "googleapis.com",
    }


class FakeFcm:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        project_id: str = DEFAULT_PROJECT,
        static_tokens: tuple[str, ...] | list[str] = (),
        echo: bool = False,
    ) -> None:
        self.project_id = project_id
        self.echo = echo
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._accounts: dict[tuple[str, str], _Account] = {}  # (client_email, kid) → account
        self._issued: dict[str, tuple[str, float]] = {}  # access token → (project, expiry)
        self._static = set(static_tokens)
        self._unregistered: set[str] = set()
        self._failures: dict[str, _Failure] = {}
        self._messages: list[Accepted] = []
        self.requests = 0  # POSTs to messages:send, whatever the answer
        self.token_requests = 0
        self.rejected: dict[str, int] = {}  # "status CODE" → count
        self._server = _Server((host, port), self)
        self.host, self.port = self._server.server_address[:2]
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL a sender uses in place of https://fcm.googleapis.com."""
        return f"http://{self.host}:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def connections(self) -> int:
        """TCP connections accepted so far: with keep-alive, one per concurrent sender."""
        return self._server.accepted

    def start(self) -> FakeFcm:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> FakeFcm:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- credentials --------------------------------------------------------------------------

    def trust(self, info: dict[str, Any]) -> None:
        """Accept token requests signed with this service account's key."""
        key = serialization.load_pem_private_key(info["private_key"].encode("ascii"), None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("service account keys are RSA keys")
        account = _Account(
            info["client_email"],
            info.get("private_key_id", ""),
            info.get("project_id", self.project_id),
            info["token_uri"],
            key.public_key(),
        )
        with self._lock:
            self._accounts[(account.client_email, account.key_id)] = account

    def new_service_account(self, project_id: str | None = None) -> dict[str, str]:
        """``make_service_account`` for this fake, trusted."""
        info = make_service_account(
            self.port, project_id=project_id or self.project_id, host=self.host
        )
        self.trust(info)
        return info

    def add_static_token(self, token: str) -> None:
        """An access token accepted for ``project_id`` without the token endpoint."""
        with self._lock:
            self._static.add(token)

    def expire_tokens(self) -> None:
        """Every access token issued so far is refused from now on (as after revocation)."""
        with self._lock:
            self._issued.clear()

    # --- registration tokens ------------------------------------------------------------------

    def unregister(self, token: str) -> None:
        """The app was uninstalled: sends to this token answer 404 UNREGISTERED from now on."""
        with self._lock:
            self._unregistered.add(token)

    def fail(
        self,
        token: str,
        status: int,
        times: int | None = None,
        retry_after: int | float | None = None,
    ) -> None:
        """Answer ``status`` (one of 400, 401, 403, 404, 429, 500, 503) with FCM's error body
        to sends to this token, the next ``times`` times or (None) always, with
        ``Retry-After: retry_after`` if given."""
        if status not in _FAILURES:
            raise ValueError("status must be one of " + ", ".join(map(str, sorted(_FAILURES))))
        with self._lock:
            self._failures[token] = _Failure(status, times, retry_after)

    def heal(self, token: str) -> None:
        with self._lock:
            self._failures.pop(token, None)
            self._unregistered.discard(token)

    # --- what arrived -------------------------------------------------------------------------

    @property
    def messages(self) -> list[Accepted]:
        with self._lock:
            return list(self._messages)

    def messages_for(self, token: str) -> list[Accepted]:
        return [m for m in self.messages if m.target == token]

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        """Block until at least ``n`` messages were accepted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._messages) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._arrived.wait(left)
            return True

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            self.rejected.clear()
            self.requests = 0
            self.token_requests = 0

    # --- the token endpoint -------------------------------------------------------------------

    def _token(self, content_type: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.token_requests += 1
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return 400, {}, _oauth_error("invalid_request", "form-encoded body expected")
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        grant_type = form.get("grant_type", [""])
        if grant_type != [GRANT_TYPE]:
            return 400, {}, _oauth_error("unsupported_grant_type", "Invalid grant_type: ")
        assertion = form.get("assertion", [""])
        if len(assertion) != 1 or not assertion[0]:
            return 400, {}, _oauth_error("invalid_request", "Missing required parameter: assertion")
        try:
            account, claims = self._verify_assertion(assertion[0])
        except Invalid as e:
            return 400, {}, _oauth_error(e.field, e.description)
        scopes = str(claims.get("scope", "")).split()
        if not any(s in SCOPES for s in scopes):
            return (
                400,
                {},
                _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience"),
            )
        access_token = "ya29.fake-" + secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            for t in [t for t, (_, exp) in self._issued.items() if exp <= now]:
                del self._issued[t]
            self._issued[access_token] = (account.project_id, now + TOKEN_LIFETIME)
        return (
            200,
            {"Cache-Control": "no-store"},
            {
                "access_token": access_token,
                "expires_in": TOKEN_LIFETIME,
                "token_type": "Bearer",
            },
        )

    def _verify_assertion(self, assertion: str) -> tuple[_Account, dict[str, Any]]:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Invalid("invalid_grant", "Invalid JWT Signature.") from None
        if header.get("alg") != "RS256":
            raise Invalid("invalid_grant", "Invalid JWT: the algorithm must be RS256.")
        with self._lock:
            account = self._accounts.get((str(unverified.get("iss")), str(header.get("kid", ""))))
        if account is None:
            raise Invalid("invalid_grant", "Invalid grant: account not found")
        try:
            claims = jwt.decode(
                assertion,
                account.public_key,
                algorithms=["RS256"],
                audience=account.token_uri,
                issuer=account.client_email,
                leeway=CLOCK_SKEW,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.InvalidSignatureError:
            raise Invalid("invalid_grant", "Invalid JWT Signature.") from None
        except jwt.PyJWTError as e:
            raise Invalid("invalid_grant", f"Invalid JWT: {e}") from None
        # PyJWT has checked the signature, aud, iss, exp (not past) and iat (not future).
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise Invalid("invalid_grant", "Invalid JWT: iat and exp must be numbers")
        if exp - iat > TOKEN_LIFETIME:
            raise Invalid(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
                "reasonable timeframe. Check your iat and exp values in the JWT claim.",
            )
        return account, claims

    # --- messages:send ------------------------------------------------------------------------

    def _send(
        self, project: str, authorization: str | None, body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.requests += 1
        granted = self._authorize(authorization)
        if granted is None:
            return (
                401,
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
                (
                    _google_error(
                        401,
                        "UNAUTHENTICATED",
                        "Request had invalid authentication credentials. Expected OAuth 2 access "
                        "token, login cookie or other valid authentication credential.",
                    )
                ),
            )
        if project != granted:
            return (
                403,
                {},
                _google_error(
                    403,
                    "PERMISSION_DENIED",
                    f"Permission 'cloudmessaging.messages.create' denied on resource "
                    f"'//cloudresourcemanager.googleapis.com/projects/{project}' "
                    "(or it may not exist).",
                ),
            )
        try:
            request = json.loads(body)
        except ValueError:
            return _invalid(Invalid("", "Invalid JSON payload received."))
        try:
            message, validate_only = _check_request(request)
        except Invalid as e:
            return _invalid(e)

        token = message.get("token")
        if token is not None:
            with self._lock:
                if token in self._unregistered:
                    return 404, {}, _fcm_error(404, *_FAILURES[404])
                failure = self._failures.get(token)
                if failure is not None:
                    if failure.remaining is not None:
                        failure.remaining -= 1
                        if failure.remaining <= 0:
                            del self._failures[token]
                    extra = {}
                    if failure.retry_after is not None:
                        extra["Retry-After"] = str(failure.retry_after)
                    return (
                        failure.status,
                        extra,
                        _fcm_error(failure.status, *_FAILURES[failure.status]),
                    )

        if validate_only:
            return 200, {}, {"name": f"projects/{project}/messages/fake_message_id"}
        accepted = Accepted(
            project, message, f"0:{time.time_ns()}%{secrets.token_hex(8)}", time.time()
        )
        with self._arrived:
            self._messages.append(accepted)
            self._arrived.notify_all()
        if self.echo:
            print(f"[fcm] {accepted.name} → {token or message.get('topic')}", flush=True)
        return 200, {}, {"name": accepted.name}

    def _authorize(self, authorization: str | None) -> str | None:
        """The project the bearer token is good for, or None."""
        if not authorization:
            return None
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            return None
        with self._lock:
            if credential in self._static:
                return self.project_id
            issued = self._issued.get(credential)
        if issued is None or issued[1] <= time.time():
            return None
        return issued[0]

    def _count(self, status: int, payload: Any) -> None:
        if status == 200:
            return
        label = str(status)
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            label = f"{status} {payload['error'].get('status')}"
        with self._lock:
            self.rejected[label] = self.rejected.get(label, 0) + 1

    def _report(self) -> list[dict[str, Any]]:
        return [
            {"name": m.name, "message": m.message, "received_at": m.received_at}
            for m in self.messages
        ]


# --- the schema -------------------------------------------------------------------------------


def _check_request(request: Any) -> tuple[dict[str, Any], bool]:
    if not isinstance(request, dict):
        raise Invalid("", "Invalid JSON payload received. Expected an object.")
    for name in request:
        if name not in ("message", "validate_only", "validateOnly"):
            raise Invalid(
                name, f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
            )
    validate_only = request.get("validate_only", request.get("validateOnly", False))
    if not isinstance(validate_only, bool):
        raise Invalid("validate_only", "Invalid value at 'validate_only' (TYPE_BOOL)")
    message = request.get("message")
    if not isinstance(message, dict):
        raise Invalid("message", "Message is required.")
    _check_message(message)
    return message, validate_only


def _check_message(m: dict[str, Any]) -> None:
    _known(m, _MESSAGE_FIELDS, "message")
    targets = [k for k in ("token", "topic", "condition") if k in m]
    if len(targets) != 1:
        raise Invalid(
            "message",
            "Recipient of the message is not set."
            if not targets
            else "Exactly one of token, topic or condition must be set.",
        )
    target = targets[0]
    value = m[target]
    if not isinstance(value, str) or not value:
        raise Invalid(f"message.{target}", f"Invalid value at 'message.{target}' (TYPE_STRING)")
    if target == "topic" and not _TOPIC.fullmatch(value):
        raise Invalid("message.topic", "Invalid topic name.")
    if "name" in m and not isinstance(m["name"], str):
        raise Invalid("message.name", "Invalid value at 'message.name' (TYPE_STRING)")

    size = 0
    if "notification" in m:
        size += _check_notification(m["notification"], "message.notification")
    if "data" in m:
        size += _check_string_map(m["data"], "message.data", data=True)
    if size > MAX_PAYLOAD:
        raise Invalid(
            "message", f"Message is too big: {size} octets of payload, at most {MAX_PAYLOAD}."
        )
    if "android" in m:
        _check_android(m["android"])
    if "apns" in m:
        _check_apns(m["apns"])
    if "webpush" in m:
        _check_webpush(m["webpush"])
    for name in ("fcm_options", "fcmOptions"):
        if name in m:
            _object(m[name], f"message.{name}")


def _check_notification(n: Any, where: str) -> int:
    _object(n, where)
    _known(n, _NOTIFICATION_FIELDS, where)
    size = 0
    for key, value in n.items():
        if not isinstance(value, str):
            raise Invalid(f"{where}.{key}", f"Invalid value at '{where}.{key}' (TYPE_STRING)")
        size += len(value.encode("utf-8"))
    return size


def _check_string_map(d: Any, where: str, *, data: bool = False) -> int:
    _object(d, where)
    size = 0
    for i, (key, value) in enumerate(d.items()):
        if not isinstance(value, str):
            raise Invalid(
                f"{where}[{i}].value",
                f"Invalid value at '{where}[{i}].value' (TYPE_STRING), {json.dumps(value)}",
            )
        if data and (key in ("from", "message_type") or key.startswith(("google.", "gcm"))):
            raise Invalid(f"{where}[{i}].key", f"Invalid data key: {key!r} is reserved.")
        size += len(key.encode("utf-8")) + len(value.encode("utf-8"))
    return size


def _check_android(a: Any) -> None:
    where = "message.android"
    _object(a, where)
    _known(a, _ANDROID_FIELDS, where)
    for name in ("collapse_key", "collapseKey", "restricted_package_name", "restrictedPackageName"):
        if name in a and not isinstance(a[name], str):
            raise Invalid(f"{where}.{name}", f"Invalid value at '{where}.{name}' (TYPE_STRING)")
    if "priority" in a and a["priority"] not in ("NORMAL", "HIGH"):
        raise Invalid(
            f"{where}.priority",
            f"Invalid value at '{where}.priority' (type.googleapis.com/"
            f"google.firebase.fcm.v1.AndroidMessagePriority), {json.dumps(a['priority'])}",
        )
    if "ttl" in a:
        ttl = a["ttl"]
        if not isinstance(ttl, str) or not _DURATION.fullmatch(ttl):
            raise Invalid(
                f"{where}.ttl",
                f"Invalid value at '{where}.ttl' (type.googleapis.com/"
                f"google.protobuf.Duration), {json.dumps(ttl)}",
            )
        if float(ttl[:-1]) > MAX_TTL:
            raise Invalid(f"{where}.ttl", "The TTL must be at most 4 weeks (2419200s).")
    if "data" in a:
        _check_string_map(a["data"], f"{where}.data", data=True)
    if "notification" in a:
        _object(a["notification"], f"{where}.notification")
    for name in ("direct_boot_ok", "directBootOk"):
        if name in a and not isinstance(a[name], bool):
            raise Invalid(f"{where}.{name}", f"Invalid value at '{where}.{name}' (TYPE_BOOL)")


def _check_apns(a: Any) -> None:
    where = "message.apns"
    _object(a, where)
    _known(a, _APNS_FIELDS, where)
    headers = a.get("headers", {})
    _check_string_map(headers, f"{where}.headers")
    priority = headers.get("apns-priority")
    if priority is not None and priority not in ("5", "10"):
        raise Invalid(f"{where}.headers", "apns-priority must be 5 or 10.")
    expiration = headers.get("apns-expiration")
    if expiration is not None and not _DIGITS.fullmatch(expiration):
        raise Invalid(f"{where}.headers", "apns-expiration must be a UNIX time in seconds.")
    collapse_id = headers.get("apns-collapse-id")
    if collapse_id is not None and len(collapse_id.encode("utf-8")) > 64:
        raise Invalid(f"{where}.headers", "apns-collapse-id must be at most 64 bytes.")
    if "payload" in a:
        _object(a["payload"], f"{where}.payload")


def _check_webpush(w: Any) -> None:
    where = "message.webpush"
    _object(w, where)
    _known(w, _WEBPUSH_FIELDS, where)
    if "headers" in w:
        _check_string_map(w["headers"], f"{where}.headers")
    if "data" in w:
        _check_string_map(w["data"], f"{where}.data", data=True)
    if "notification" in w:
        _object(w["notification"], f"{where}.notification")


def _object(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise Invalid(where, f"Invalid value at '{where}': expected an object.")


def _known(obj: dict[str, Any], fields: set[str], where: str) -> None:
    for name in obj:
        if name not in fields:
            raise Invalid(
                where,
                f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': "
                "Cannot find field.",
            )


# --- answers ----------------------------------------------------------------------------------


def _google_error(code: int, status: str, message: str, details: list[Any] | None = None) -> Any:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def _fcm_error(code: int, status: str, error_code: str, message: str) -> Any:
    return _google_error(
        code, status, message, [{"@type": FCM_ERROR_TYPE, "errorCode": error_code}]
    )


def _invalid(e: Invalid) -> tuple[int, dict[str, str], Any]:
    details: list[Any] = [{"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"}]
    if e.field:
        details.append(
            {
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [{"field": e.field, "description": e.description}],
            }
        )
    return 400, {}, _google_error(400, "INVALID_ARGUMENT", e.description, details)


def _oauth_error(error: str, description: str) -> Any:
    return {"error": error, "error_description": description}


# --- HTTP -------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive: senders reuse their connections
    server_version = "buurtpeil-fake-fcm/1"
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    timeout = 60  # an idle keep-alive connection is closed after this

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        fcm = self.server.fcm
        path = urlsplit(self.path).path
        body = self._read_body()
        if body is None:
            return
        match = _SEND_PATH.fullmatch(path)
        if match:
            status, headers, payload = fcm._send(
                match.group(1), self.headers.get("Authorization"), body
            )
            fcm._count(status, payload)
        elif path == "/token":
            status, headers, payload = fcm._token(self.headers.get("Content-Type", ""), body)
        else:
            status, headers, payload = 404, {}, _google_error(404, "NOT_FOUND", "Not Found")
        self._reply(status, headers, payload)

    def do_GET(self) -> None:
        fcm = self.server.fcm
        path = urlsplit(self.path).path
        if path == "/messages":
            self._reply(200, {}, fcm._report())
        elif path == "/stats":
            with fcm._lock:
                stats = {
                    "requests": fcm.requests,
                    "accepted": len(fcm._messages),
                    "token_requests": fcm.token_requests,
                    "rejected": dict(fcm.rejected),
                    "connections": fcm.connections,
                }
            self._reply(200, {}, stats)
        else:
            self._reply(404, {}, _google_error(404, "NOT_FOUND", "Not Found"))

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._reply(411, {}, _google_error(411, "INVALID_ARGUMENT", "Length required"))
            return None
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit():
            self.close_connection = True
            self._reply(400, {}, _google_error(400, "INVALID_ARGUMENT", "Bad Content-Length"))
            return None
        size = int(length)
        if size > MAX_BODY:
            self.close_connection = True
            self._reply(413, {}, _google_error(413, "INVALID_ARGUMENT", "Request too large"))
            return None
        return self.rfile.read(size)

    def _reply(self, status: int, headers: dict[str, str], payload: Any) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fcm: FakeFcm) -> None:
        self.fcm = fcm
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.accepted = 0
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, is_open: bool) -> None:
        with self._open_lock:
            if is_open:
                self._open.add(connection)
                self.accepted += 1
            else:
                self._open.discard(connection)

    def close_connections(self) -> None:
        with self._open_lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.fcm_receiver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--project", default=DEFAULT_PROJECT)
    parser.add_argument(
        "--service-account-out",
        metavar="PATH",
        help="write a trusted service-account JSON key file here",
    )
    parser.add_argument(
        "--static-token",
        action="append",
        default=[],
        help="an access token accepted as is (repeatable)",
    )
    parser.add_argument("--echo", action="store_true", help="print every accepted message")
    args = parser.parse_args()
    fcm = FakeFcm(
        args.host,
        args.port,
        project_id=args.project,
        static_tokens=args.static_token,
        echo=args.echo,
    ).start()
    info = fcm.new_service_account()
    if args.service_account_out:
        with open(args.service_account_out, "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
    print(
        f"[fcm] fake FCM v1 on {fcm.url} for project {args.project}; service account "
        f"{info['client_email']}"
        + (f" in {args.service_account_out}" if args.service_account_out else ""),
        flush=True,
    )
    window: deque[tuple[float, int]] = deque(maxlen=2)
    try:
        while True:
            time.sleep(1.0)
            with fcm._lock:
                now, requests = time.monotonic(), fcm.requests
                accepted, rejected = len(fcm._messages), sum(fcm.rejected.values())
            window.append((now, requests))
            rate = (
                (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
                if len(window) == 2
                else 0.0
            )
            if len(window) == 2 and window[-1][1] != window[0][1]:  # only while busy
                print(
                    f"[fcm] {requests} requests, {accepted} accepted, {rejected} rejected, "
                    f"{rate:.0f}/s",
                    flush=True,
                )
    except KeyboardInterrupt:
        pass
    finally:
        fcm.stop()


if __name__ == "__main__":
    main()
