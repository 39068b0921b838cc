"""Browser sessions: our own tokens in cookies, and CSRF tokens for every form.

A session is the access token and the refresh token the JSON API hands out, each in an
HttpOnly, SameSite=Lax cookie scoped to its app's path, Secure unless the page is served on a
loopback address (development: http://127.0.0.1). When the access token has expired, the
refresh token is exchanged through the gateway's own refresh route (rotation as in the app);
which route that is, is part of the session's kind (``SessionKind.refresh_route``), so staff
sessions use whatever refresh function the gateway exposes for staff — or, while it has none,
end with their access token.

Rotation refuses a refresh token used twice (and revokes its family). A browser may send two
requests with the same expired cookie at once (a page and its htmx call), so the successor of
a refresh token is kept in memory for a minute and handed to the second request as well.

CSRF: a random cookie per browser (HttpOnly, SameSite=Lax) and, in every form, an HMAC of it
under the gateway's web secret; a POST without the matching token is refused (403).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

CSRF_COOKIE = "bp_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SUCCESSOR_TTL = 60.0


@dataclass(frozen=True)
class SessionKind:
    app: str  # "resident" | "staff"
    auth: str  # the route table's caller kind for this session's tokens
    path: str  # cookie path: the app's pages
    refresh_route: str | None  # the gateway route that rotates this kind's refresh token
    lifetime: int = 180 * 24 * 3600  # cookie Max-Age; the refresh token's own expiry rules

    @property
    def access_cookie(self) -> str:
        return f"bp_{self.app}_access"

    @property
    def refresh_cookie(self) -> str:
        return f"bp_{self.app}_refresh"


RESIDENT = SessionKind("resident", "resident", "/app/", "token_refresh")
# Staff: a working day at most in the browser; the 15-minute access token is refreshed through
# the staff refresh route (``POST /admin/v1/token/refresh``).
STAFF = SessionKind("staff", "staff", "/staff/", "staff_token_refresh", lifetime=12 * 3600)
# Each app's session kind, by the pages' ``app``: the generated tenancy and role tests sign in
# with it.
KINDS: dict[str, SessionKind] = {"resident": RESIDENT, "staff": STAFF}


def secure_cookies(request: Request, setting: str) -> bool:
    """``auto``: Secure unless the page is served on a loopback address (development)."""
    if setting in ("true", "false"):
        return setting == "true"
    host = (request.host or "").rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


@dataclass
class CookieJar:
    """Cookies to set or clear on the response of this request."""

    secure: bool
    changes: list[tuple[str, str | None, str, int | None, str]] = field(default_factory=list)

    def set(self, name: str, value: str, *, path: str, max_age: int | None, same_site="Lax"):
        self.changes.append((name, value, path, max_age, same_site))

    def clear(self, name: str, *, path: str) -> None:
        self.changes.append((name, None, path, 0, "Lax"))

    def apply(self, response: Response) -> None:
        for name, value, path, max_age, same_site in self.changes:
            if value is None:
                response.delete_cookie(
                    name, path=path, secure=self.secure, httponly=True, samesite=same_site
                )
            else:
                response.set_cookie(
                    name,
                    value,
                    max_age=max_age,
                    path=path,
                    secure=self.secure,
                    httponly=True,
                    samesite=same_site,
                )


class Successors:
    """refresh token → the tokens it was exchanged for, for a minute (see the module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: dict[str, tuple[float, dict[str, Any]]] = {}
        self._running: dict[str, threading.Event] = {}

    @staticmethod
    def _key(refresh_token: str) -> str:
        return hashlib.sha256(refresh_token.encode()).hexdigest()

    def exchange(self, refresh_token: str, rotate: Any) -> dict[str, Any]:
        key = self._key(refresh_token)
        while True:
            with self._lock:
                now = time.monotonic()
                for k in [k for k, (t, _) in self._recent.items() if now - t > SUCCESSOR_TTL]:
                    del self._recent[k]
                if key in self._recent:
                    return self._recent[key][1]
                waiting = self._running.get(key)
                if waiting is None:
                    self._running[key] = threading.Event()
                    break
            waiting.wait(10)
        try:
            tokens = rotate()
            with self._lock:
                self._recent[key] = (time.monotonic(), tokens)
            return tokens
        finally:
            with self._lock:
                self._running.pop(key).set()


class Csrf:
    def __init__(self, secret: str):
        self.secret = secret.encode()

    def token_for(self, cookie_value: str) -> str:
        return hmac.new(self.secret, cookie_value.encode(), hashlib.sha256).hexdigest()[:40]

    def ensure_cookie(self, request: Request, jar: CookieJar) -> str:
        value = request.cookies.get(CSRF_COOKIE, "")
        if len(value) < 32:
            value = secrets.token_urlsafe(32)
            jar.set(CSRF_COOKIE, value, path="/", max_age=None)
        return value

    def valid(self, request: Request) -> bool:
        cookie = request.cookies.get(CSRF_COOKIE, "")
        sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
        if len(cookie) < 32 or not sent.isascii():  # compare_digest takes ASCII strings only
            return False
        return hmac.compare_digest(sent, self.token_for(cookie))


LINK_COOKIE = "bp_link"
LINK_SESSION_TTL = 1800  # seconds: a personal link's browser session (web/link.py)


class LinkSessions:
    """The short session a personal link is exchanged for (web/link.py): the participant, the
    poll, what the gateway needs to submit for them, and the receipt once they answered — JSON,
    base64url, with an HMAC under the web secret (its own context, so a CSRF token can never be
    one). It lives ``LINK_SESSION_TTL`` at most and never beyond the link's own expiry; it holds
    no token, so a cookie that leaks cannot be turned back into the link."""

    def __init__(self, secret: str):
        self.secret = b"link-session|" + secret.encode()

    def _mac(self, body: str) -> str:
        return hmac.new(self.secret, body.encode("ascii"), hashlib.sha256).hexdigest()[:43]

    def dumps(self, data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode()
        body = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        return f"{body}.{self._mac(body)}"

    def loads(self, value: str | None, now: float | None = None) -> dict[str, Any] | None:
        """The session, or None: absent, tampered with, or expired."""
        if not value or not value.isascii() or "." not in value:
            return None
        body, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("exp"), int | float):
            return None
        if data["exp"] <= (time.time() if now is None else now):
            return None
        return data
