"""Firebase Cloud Messaging, HTTP v1 API: message bodies, OAuth 2.0 access tokens, sending.

- ``build_message``: the JSON body of ``POST {base}/v1/projects/{project}/messages:send`` for one
  registration token (Message resource: token, notification, data, android, apns).
- Access tokens: ``StaticToken`` (tests, a token obtained elsewhere) and
  ``ServiceAccountToken``, Google's OAuth 2.0 flow for server-to-server applications: an RS256
  JWT signed with the service account's key (iss = client_email, scope, aud = token_uri,
  iat, exp = iat + 3600) is exchanged at ``token_uri`` (grant_type
  ``urn:ietf:params:oauth:grant-type:jwt-bearer``) for an access token, cached until five
  minutes before it expires.
- ``FcmSender.send`` posts one message and classifies the answer as an ``FcmOutcome``:

  ========================================================  ========  ==========================
  answer                                                    status    retry_after
  ========================================================  ========  ==========================
  200                                                       sent      (message_id = body.name)
  FcmError errorCode UNREGISTERED (FCM sends it with 404)   gone      prune the token
  400 INVALID_ARGUMENT                                      failed    not retried
  401 THIRD_PARTY_AUTH_ERROR, 403 SENDER_ID_MISMATCH        failed
  401 UNAUTHENTICATED (our access token)                    failed    after one fresh token
  404 without UNREGISTERED (wrong project, base URL)        failed    tokens are kept
  429 QUOTA_EXCEEDED                                        retry     Retry-After, else 60 s
  5xx (500 INTERNAL, 503 UNAVAILABLE, 502, 504)             retry     Retry-After, else None
  connection error, timeout                                 retry     None
  ========================================================  ========  ==========================

  ``retry_after`` None means: back off exponentially (``dispatch.retry_delay``).

Why "gone" needs the UNREGISTERED detail and not just a 404: the error codes live in
``error.details[]`` (``@type`` ``type.googleapis.com/google.firebase.fcm.v1.FcmError``); the
top-level ``status`` is only the canonical gRPC code (NOT_FOUND for an unregistered token, but
also for a project or URL that does not exist). Pruning on a bare 404 would delete every token
of a misconfigured deployment. The Firebase Admin SDKs make the same distinction.

One ``requests.Session`` carries every send (HTTP/1.1 keep-alive, a pool of ``POOL_SIZE``
connections per host, no urllib3 retries: the caller retries). Under eventlet's monkey
patching that session, the token cache's lock and the socket timeouts are all green, so ~50
greenthreads can share one sender.
"""

from __future__ import annotations

import email.utils
import functools
import json
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote

import jwt
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from requests.adapters import HTTPAdapter

__all__ = [
    "FCM_BASE_URL",
    "MAX_TTL",
    "POOL_SIZE",
    "SCOPE",
    "URGENCIES",
    "FcmAuthError",
    "FcmOutcome",
    "FcmSender",
    "ServiceAccountToken",
    "StaticToken",
    "TokenSource",
    "build_message",
    "classify",
    "make_session",
    "parse_error",
    "retry_after_seconds",
]

FCM_BASE_URL = "https://fcm.googleapis.com"
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
ERROR_INFO_TYPE = "type.googleapis.com/google.rpc.ErrorInfo"

ASSERTION_LIFETIME = 3600  # Google: exp "has a maximum of 1 hour after the issued time"
TOKEN_REFRESH_MARGIN = 300  # renew a cached access token this long before it expires
MAX_TTL = 2_419_200  # 4 weeks: FCM's maximum (and default) time to live, in seconds
MAX_COLLAPSE_ID = 64  # octets: Apple's limit for apns-collapse-id
POOL_SIZE = 50  # keep-alive connections per host: one per concurrent send
DEFAULT_QUOTA_RETRY_AFTER = 60.0  # 429 without Retry-After: FCM asks for at least 1 minute
ERROR_TEXT_LIMIT = 300

# The vocabulary of RFC 8030 §5.3, as for Web Push; "high" is FCM's HIGH / APNs priority 10,
# the rest NORMAL / 5 (which lets Android batch and iOS save power).
URGENCIES = ("very-low", "low", "normal", "high")

# Message.data: "The key should not be a reserved word ("from", "message_type", or any word
# starting with "google." or "gcm.notification.")"; the error code table also names "gcm".
_RESERVED_DATA_KEYS = frozenset({"from", "message_type"})
_RESERVED_DATA_PREFIXES = ("google.", "gcm")
_PROJECT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")

Status = Literal["sent", "gone", "retry", "failed"]


# --- the message ------------------------------------------------------------------------------


def build_message(
    token: str,
    *,
    title: str,
    body: str,
    data: Mapping[str, str],
    collapse_key: str,
    ttl_seconds: int,
    urgency: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The request body of projects.messages.send for one registration token.

    ``ttl_seconds`` (0 … 2 419 200) becomes ``android.ttl`` as a protobuf Duration ("3600s")
    and ``apns-expiration``, which APNs wants as an absolute UNIX time: ``now`` + ttl (``now``
    defaults to the clock), or "0" for a TTL of 0 (APNs then tries once and does not store).
    ``collapse_key`` is both the Android collapse key and the apns-collapse-id (at most 64
    octets), so that a resend replaces rather than duplicates what is still queued.
    ``urgency`` is one of URGENCIES. ValueError for anything FCM would refuse: a data value
    that is not a string, a reserved data key, a TTL out of range, an unknown urgency.
    """
    if not isinstance(token, str) or not token:
        raise ValueError("token must be a non-empty string")
    for name, value in (("title", title), ("body", body)):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string")
    if not isinstance(data, Mapping):
        raise ValueError("data must be a mapping of strings to strings")
    for key, value in data.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"data key {key!r} is not a non-empty string")
        if key in _RESERVED_DATA_KEYS or key.startswith(_RESERVED_DATA_PREFIXES):
            raise ValueError(f"data key {key!r} is reserved by FCM")
        if not isinstance(value, str):
            raise ValueError(
                f"data value of {key!r} must be a string, not {type(value).__name__} "
                "(FCM data is a map<string, string>)"
            )
    if not isinstance(collapse_key, str) or not collapse_key:
        raise ValueError("collapse_key must be a non-empty string")
    if len(collapse_key.encode("utf-8")) > MAX_COLLAPSE_ID:
        raise ValueError(
            f"collapse_key must be at most {MAX_COLLAPSE_ID} octets (apns-collapse-id)"
        )
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int):
        raise ValueError("ttl_seconds must be an integer")
    if not 0 <= ttl_seconds <= MAX_TTL:
        raise ValueError(f"ttl_seconds must be between 0 and {MAX_TTL} (4 weeks)")
    if urgency not in URGENCIES:
        raise ValueError("urgency must be one of " + ", ".join(URGENCIES))

    high = urgency == "high"
    if ttl_seconds == 0:
        expiration = "0"
    else:
        expiration = str(math.ceil((time.time() if now is None else now) + ttl_seconds))
    return {
        "message": {
            "token": token,
            "notification": {"title": title, "body": body},
            "data": dict(data),
            "android": {
                "collapse_key": collapse_key,
                "ttl": f"{ttl_seconds}s",
                "priority": "HIGH" if high else "NORMAL",
            },
            "apns": {
                "headers": {
                    "apns-collapse-id": collapse_key,
                    "apns-priority": "10" if high else "5",
                    "apns-expiration": expiration,
                }
            },
        }
    }


# --- access tokens ----------------------------------------------------------------------------


class FcmAuthError(Exception):
    """No access token: the token endpoint refused (``retryable`` False: a bad key, a revoked
    account) or could not be reached or failed (``retryable`` True)."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


class TokenSource(Protocol):
    def token(self) -> str: ...

    def invalidate(self, token: str | None = None) -> None: ...


class StaticToken:
    """An access token obtained elsewhere (or a test's); never renewed."""

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("token must be a non-empty string")
        self._token = token

    def token(self) -> str:
        return self._token

    def invalidate(self, token: str | None = None) -> None:
        pass

    def __repr__(self) -> str:
        return "StaticToken(…)"


class ServiceAccountToken:
    """OAuth 2.0 access tokens for a Google service account (the JSON key file, as a dict).

    ``token()`` returns the cached token while it has more than five minutes left, else signs
    a new assertion and asks ``info["token_uri"]`` for a new one (one request at a time: the
    others wait for it). ``now`` is a clock returning UNIX seconds (default ``time.time``);
    the assertion's iat is taken from it, so it must be the wall clock in production.
    Raises FcmAuthError when no token can be had.
    """

    def __init__(
        self,
        info: Mapping[str, Any],
        *,
        session: requests.Session,
        now: Callable[[], float] | None = None,
        scope: str = SCOPE,
        timeout: float | tuple[float, float] = 10,
    ) -> None:
        missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
        if missing:
            raise ValueError("service account info lacks " + ", ".join(missing))
        if info.get("type", "service_account") != "service_account":
            raise ValueError("not a service account key (type must be service_account)")
        self._key = _load_rsa_key(info["private_key"])
        self.client_email: str = info["client_email"]
        self.token_uri: str = info["token_uri"]
        self.key_id: str | None = info.get("private_key_id") or None
        self.project_id: str | None = info.get("project_id") or None
        self.scope = scope
        self._session = session
        self._now = now or time.time
        self._timeout = timeout
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.fetches = 0  # token requests made: for tests and metrics

    def assertion(self, iat: int) -> str:
        """The signed JWT for the token request (header alg RS256, typ JWT, kid)."""
        claims = {
            "iss": self.client_email,
            "scope": self.scope,
            "aud": self.token_uri,
            "iat": iat,
            "exp": iat + ASSERTION_LIFETIME,
        }
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self._key, algorithm="RS256", headers=headers)

    def token(self) -> str:
        with self._lock:
            if self._token is not None and self._now() < self._renew_at:
                return self._token
            self._token, self._renew_at = self._fetch()
            return self._token

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token (FCM refused it): the next ``token()`` fetches a new one.
        With ``token``, only if that is still the cached one, so that fifty sends refused at
        once cause one new token, not fifty."""
        with self._lock:
            if token is None or token == self._token:
                self._token = None
                self._renew_at = 0.0

    def _fetch(self) -> tuple[str, float]:
        issued = self._now()
        form = {"grant_type": GRANT_TYPE, "assertion": self.assertion(int(issued))}
        self.fetches += 1
        try:
            response = self._session.post(self.token_uri, data=form, timeout=self._timeout)
        except requests.RequestException as e:
            raise FcmAuthError(f"token endpoint: {_describe(e)}", retryable=True) from e
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code != 200:
            detail = ""
            if isinstance(answer, dict):
                detail = f"{answer.get('error', '')}: {answer.get('error_description', '')}"
            raise FcmAuthError(
                f"token endpoint answered {response.status_code} {detail}".strip(),
                retryable=response.status_code == 429 or response.status_code >= 500,
                status=response.status_code,
            )
        if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            raise FcmAuthError("token endpoint: no access_token in the answer", retryable=True)
        expires_in = answer.get("expires_in", ASSERTION_LIFETIME)
        if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
            expires_in = ASSERTION_LIFETIME
        return answer["access_token"], issued + max(0.0, expires_in - TOKEN_REFRESH_MARGIN)

    def __repr__(self) -> str:
        return f"ServiceAccountToken({self.client_email!r})"


# --- sending ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FcmOutcome:
    status: Status
    retry_after: float | None = None
    error: str | None = None
    message_id: str | None = None


def make_session(pool_size: int = POOL_SIZE) -> requests.Session:
    """A session that keeps up to ``pool_size`` connections per host alive and never retries
    by itself (urllib3 retries would hide 5xx answers and double-send)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "buurtpeil-notify/1 (fcm)"
    return session


class FcmSender:
    """Sends to FCM HTTP v1 for one Firebase project.

    ``base_url`` is https://fcm.googleapis.com in production (the fake's URL in tests). Without
    a ``session`` one is made with ``make_session`` and closed by ``close()``; a session passed
    in is the caller's. Safe to share between threads or greenthreads.
    """

    def __init__(
        self,
        base_url: str,
        project_id: str,
        token_source: TokenSource,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = 10,
    ) -> None:
        if not _PROJECT_ID.fullmatch(project_id):
            raise ValueError(f"not a Firebase project id: {project_id!r}")
        self.project_id = project_id
        self.url = f"{base_url.rstrip('/')}/v1/projects/{quote(project_id)}/messages:send"
        self.token_source = token_source
        self._own_session = session is None
        self.session = make_session() if session is None else session
        self.timeout = timeout

    def close(self) -> None:
        """Close the session if this sender made it."""
        if self._own_session:
            self.session.close()

    def __enter__(self) -> FcmSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, token: str, **message: Any) -> FcmOutcome:
        """Build (``build_message`` keyword arguments; its ValueError propagates) and send."""
        return self.send_body(build_message(token, **message))

    def send_body(self, body: Mapping[str, Any]) -> FcmOutcome:
        """POST a ready request body ({"message": {...}}) and classify the answer."""
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        outcome, refused = self._post(payload)
        if outcome is None or refused is None:
            return outcome or FcmOutcome("failed", error="no answer")
        # Our access token was refused (revoked, or expired early): one fresh token, once.
        invalidate = getattr(self.token_source, "invalidate", None)
        if invalidate is not None:
            invalidate(refused)
        retried, _ = self._post(payload, unless=refused)
        return retried or outcome

    def _post(
        self, payload: bytes, unless: str | None = None
    ) -> tuple[FcmOutcome | None, str | None]:
        """(outcome, the access token if FCM refused it); (None, None) without a request when
        the access token is ``unless`` (the one just refused)."""
        try:
            access_token = self.token_source.token()
        except FcmAuthError as e:
            return FcmOutcome("retry" if e.retryable else "failed", error=f"auth: {e}"), None
        if access_token == unless:
            return None, None
        headers = {
            "Authorization": f"Bearer {access_token}",
            "Content-Type": "application/json; charset=UTF-8",
        }
        try:
            response = self.session.post(
                self.url, data=payload, headers=headers, timeout=self.timeout
            )
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        ) as e:
            return FcmOutcome("retry", error=f"connection: {_describe(e)}"), None
        except requests.RequestException as e:  # a bad URL and such: retrying will not help
            return FcmOutcome("failed", error=f"request: {_describe(e)}"), None
        outcome, token_refused = classify(response)
        return outcome, access_token if token_refused else None


def classify(response: requests.Response) -> tuple[FcmOutcome, bool]:
    """(outcome, whether it was our access token that was refused) for an FCM answer."""
    code = response.status_code
    content = response.content  # read it all, so the connection goes back to the pool
    if code == 200:
        try:
            name = json.loads(content).get("name")
        except (ValueError, AttributeError):
            name = None
        return FcmOutcome("sent", message_id=name if isinstance(name, str) else None), False
    status, fcm_code, text = parse_error(content)
    label = fcm_code or status or f"HTTP {code}"
    error = f"{code} {label}: {text}"[:ERROR_TEXT_LIMIT] if text else f"{code} {label}"
    if fcm_code == "UNREGISTERED":
        return FcmOutcome("gone", error=error), False
    if code == 429:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        return FcmOutcome(
            "retry", DEFAULT_QUOTA_RETRY_AFTER if retry_after is None else retry_after, error
        ), False
    if code >= 500:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        return FcmOutcome("retry", retry_after, error), False
    if code == 401 and fcm_code not in ("THIRD_PARTY_AUTH_ERROR", "SENDER_ID_MISMATCH"):
        return FcmOutcome("failed", error=error), True
    return FcmOutcome("failed", error=error), False


def parse_error(content: bytes | str) -> tuple[str | None, str | None, str]:
    """(canonical status, FCM error code, message) of a Google error body; Nones and the start
    of the text for anything else (a proxy's HTML page).

    The FCM code is the ``errorCode`` of the google.firebase.fcm.v1.FcmError detail, or else
    the ``reason`` of a google.rpc.ErrorInfo detail (FCM reports SENDER_ID_MISMATCH that way
    too).
    """
    try:
        error = json.loads(content)["error"]
        if not isinstance(error, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
        return None, None, " ".join(text.split())[:120]
    status, message = error.get("status"), error.get("message")
    status = status if isinstance(status, str) else None
    message = message if isinstance(message, str) else ""
    fcm_code = info_reason = None
    details = error.get("details")
    for detail in details if isinstance(details, list) else ():
        if not isinstance(detail, dict):
            continue
        if detail.get("@type") == FCM_ERROR_TYPE and isinstance(detail.get("errorCode"), str):
            fcm_code = fcm_code or detail["errorCode"]
        elif detail.get("@type") == ERROR_INFO_TYPE and isinstance(detail.get("reason"), str):
            info_reason = info_reason or detail["reason"]
    return status, fcm_code or info_reason, message


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds from now: delay-seconds or an HTTP-date (RFC 9110 §10.2.3);
    None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@functools.lru_cache(maxsize=16)
def _load_rsa_key(pem: str) -> rsa.RSAPrivateKey:
    """The service account's key, loaded once per process (loading checks the RSA key, which
    takes tens of milliseconds)."""
    try:
        key = serialization.load_pem_private_key(pem.encode("utf-8"), None)
    except (ValueError, TypeError) as e:
        raise ValueError(f"the service account's private_key does not load: {e}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the service account's private_key must be an RSA key")
    return key


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:ERROR_TEXT_LIMIT]
