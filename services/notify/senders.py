"""Senders for each channel: one call per delivery, answering an Outcome.

Web Push keeps one keep-alive connection pool per push-service origin (a fan-out talks to a
handful of push services: Mozilla's, Google's, Apple's); FCM keeps one pool to Google; e-mail
opens an SMTP connection per message (the mail relay queues).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import http.client
import smtplib
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import eventlet

from services.common.mail import Mailer
from services.notify import webpush
from services.notify.channels import POLL_KINDS, Job, Outcome
from services.notify.links import LinkSigner
from services.notify.push_endpoints import PushEndpointPolicy
from services.notify.texts import personal_link

URGENCY = {
    "invitation": "normal",
    "reminder": "low",
    "feedback": "normal",
    "measure": "low",
    "link": "normal",
}
FEEDBACK_TTL = 7 * 24 * 3600
MAX_TTL = 28 * 24 * 3600


def ttl_for(job: Job, now: datetime) -> int:
    """Invitations and reminders are worth nothing once the poll has closed."""
    closes_at = job.context.get("closes_at") if job.kind in POLL_KINDS else None
    if closes_at is None:
        return FEEDBACK_TTL if job.kind in ("feedback", "measure") else MAX_TTL
    return max(60, min(MAX_TTL, int((closes_at - now).total_seconds())))


def retry_after(value: str | None) -> float | None:
    """Retry-After in seconds, or as an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:  # an HTTP date
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


class ReplyTooSlow(TimeoutError):
    """No complete reply within the time allowed for one request (a slow or dripping host)."""


class Connections:
    """Keep-alive HTTP/1.1 connections, a small pool per push-service origin.

    http.client directly rather than requests: per push it costs about a third of the CPU
    (requests re-reads proxy settings from the environment on every call), and a fan-out is
    CPU-bound. Push services are reached directly; ``proxy`` (host:port) tunnels HTTPS through
    an HTTP proxy with CONNECT where a deployment needs one.

    One request, connecting included, gets ``deadline`` seconds in all (a socket timeout alone
    lets a reply trickling in a byte at a time hold a batch up for ever), and at most
    ``max_reply`` octets of a reply are read (a push service answers with a few hundred).
    """

    def __init__(
        self,
        *,
        size: int = 64,
        timeout: float = 10,
        proxy: str | None = None,
        deadline: float = 15,
        max_reply: int = 16384,
    ):
        self.size = size
        self.timeout = min(timeout, deadline)
        self.proxy = proxy
        self.deadline = deadline
        self.max_reply = max_reply
        self._idle: dict[str, list[http.client.HTTPConnection]] = {}

    def _new(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if self.proxy:
            host, _, port = self.proxy.rpartition(":")
            conn = http.client.HTTPSConnection(
                host, int(port), timeout=self.timeout, context=ssl.create_default_context()
            )
            conn.set_tunnel(netloc)
            return conn
        if scheme == "https":
            return http.client.HTTPSConnection(
                netloc, timeout=self.timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(netloc, timeout=self.timeout)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict, bytes]:
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        idle = self._idle.setdefault(key, [])
        conn = idle.pop() if idle else self._new(parts.scheme, parts.netloc)
        too_slow = ReplyTooSlow(f"no complete reply within {self.deadline:g} s")
        try:
            with eventlet.Timeout(self.deadline, too_slow):
                conn.request("POST", path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read(self.max_reply)
        except (OSError, http.client.HTTPException):
            conn.close()
            raise
        if response.will_close or not response.isclosed() or len(idle) >= self.size:
            conn.close()  # closing, or a reply longer than we read: never reused
        else:
            idle.append(conn)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data


class WebPushSender:
    def __init__(
        self,
        vapid: webpush.Vapid,
        *,
        pool_size: int = 64,
        timeout: float = 10,
        proxy: str | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        policy: PushEndpointPolicy | None = None,
        deadline: float = 15,
        max_reply: int = 16384,
    ):
        self.vapid = vapid
        self.connections = Connections(
            size=pool_size, timeout=timeout, proxy=proxy, deadline=deadline, max_reply=max_reply
        )
        self.now = now
        self.policy = policy or PushEndpointPolicy()

    def __call__(self, job: Job) -> Outcome:
        assert job.address is not None  # channels._send answers a job without one itself
        # A Web Push endpoint is stored with its keys (the schema requires them), see projection.
        assert job.p256dh is not None and job.auth is not None
        refused = self.policy.problem(job.address)
        if refused:  # stored before its host left the allow-list: kept, not sent to
            return Outcome("failed", error=f"endpoint refused: {refused}"[:300])
        body = webpush.encrypt(job.payload(), p256dh=job.p256dh, auth=job.auth)
        headers = {
            **self.vapid.headers(job.address),
            "TTL": str(ttl_for(job, self.now())),
            "Urgency": URGENCY[job.kind],
            "Topic": webpush.topic_for(f"{job.ref_id}:{job.resident_id}", job.kind),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
        }
        try:
            status, reply_headers, data = self.connections.post(job.address, body, headers)
        except (OSError, http.client.HTTPException) as exc:
            return Outcome("retry", error=f"network: {type(exc).__name__}: {exc}"[:300])
        return outcome_of(status, reply_headers, data)


def outcome_of(status: int, headers: dict[str, str], body: bytes) -> Outcome:
    """RFC 8030 §5–6: 201 accepted; 404/410 the subscription is gone; 413 and other 4xx will
    never succeed; 429 and 5xx are temporary."""
    if status in (200, 201, 202):
        return Outcome("sent")
    error = f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
    if status in (404, 410):
        return Outcome("gone", error=error)
    if status == 429 or status >= 500:
        return Outcome("retry", retry_after=retry_after(headers.get("retry-after")), error=error)
    return Outcome("failed", error=error)


class EmailSender:
    """Text and HTML in the municipality's house style, with List-Unsubscribe (RFC 2369, and
    RFC 8058 one-click) so a resident can stop e-mail without signing in."""

    def __init__(
        self,
        mailer: Mailer,
        *,
        branding: Callable[[str], dict[str, Any]],
        app_url: str,
        unsubscribe_secret: str,
        links: LinkSigner | None = None,
    ):
        self.mailer = mailer
        self.branding = branding
        self.app_url = app_url.rstrip("/")
        self.secret = unsubscribe_secret.encode()
        self.links = links

    def personal_urls(self, job: Job) -> dict[str, str] | None:
        """The invitation's personal link and its revocation link (links.py) — of its current
        generation — for an invitation, reminder or new link whose link was not revoked; None
        otherwise."""
        if self.links is None or job.kind not in POLL_KINDS:
            return None
        if job.context.get("link_revoked") or job.context.get("opens_at") is None:
            return None
        token = self.links.token(
            resident_id=str(job.resident_id),
            poll_id=str(job.poll_id),
            municipality_code=job.municipality_code,
            opens_at=job.context["opens_at"],
            closes_at=job.context.get("closes_at"),
            generation=int(job.context.get("link_generation") or 0),
        )
        return self.links.urls(job.municipality_code, token)

    def unsubscribe_token(self, resident_id: str) -> str:
        mac = hmac.new(self.secret, resident_id.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{resident_id}.{mac}"

    def resident_of(self, token: str) -> str | None:
        """The resident an unsubscribe token was made for, or None. Compared in constant time
        (``!=`` would tell, by how long it took, how much of a forged MAC was right)."""
        token = str(token)
        resident_id = token.split(".", 1)[0]
        expected = self.unsubscribe_token(resident_id).encode()
        given = token.encode("utf-8", "backslashreplace")
        return resident_id if hmac.compare_digest(expected, given) else None

    def __call__(self, job: Job) -> Outcome:
        assert job.address is not None  # channels._send answers a job without one itself
        content = job.content()
        brand = self.branding(job.municipality_code)
        link = f"{self.app_url}{content['url']}"
        unsubscribe = (
            f"{self.app_url}/api/v1/unsubscribe?token="
            f"{self.unsubscribe_token(str(job.resident_id))}"
        )
        nl = job.language != "en"
        footer = (
            "U ontvangt deze e-mail omdat u meedoet met het inwonerpanel. Afmelden voor e-mail:"
            if nl
            else "You receive this e-mail as a member of the residents' panel. Stop these e-mails:"
        )
        primary = brand.get("primary_color", "#1F4E79")
        on_primary = brand.get("text_on_primary", "#FFFFFF")
        esc = html.escape
        personal = self.personal_urls(job)
        if personal is None and job.kind == "link":  # revoked again before it went out
            return Outcome("failed", error="no link to send: revoked before sending")
        if personal is None:
            text = f"{content['body']}\n\n{link}\n\n--\n{footer} {unsubscribe}\n"
            button, button_text, link_html = (
                link,
                ("Open in de app" if nl else "Open in the app"),
                "",
            )
        else:
            words = personal_link(job.language, job.context.get("closes_at"))
            text = (
                f"{content['body']}\n\n{words['intro']}\n{personal['answer']}\n\n"
                f"{words['forwarding']}\n{words['revoke']}\n{personal['revoke']}\n\n"
                f"--\n{footer} {unsubscribe}\n"
            )
            button, button_text = personal["answer"], words["button"]
            link_html = (
                f"<p>{esc(words['forwarding'])}</p>"
                f'<p>{esc(words["revoke"])} <a href="{esc(personal["revoke"])}">'
                f"{'link intrekken' if nl else 'revoke the link'}</a></p>"
            )
        html_body = (
            f'<!doctype html><html lang="{esc(job.language)}"><body style="font-family:sans-serif">'
            f'<div style="background:{esc(primary)};color:{esc(on_primary)};padding:16px">'
            f"<strong>{esc(brand.get('app_name', 'Buurtpeil'))}</strong></div>"
            f'<h1 style="font-size:20px">{esc(content["title"])}</h1>'
            f"<p>{esc(content['body'])}</p>"
            f'<p><a href="{esc(button)}" style="background:{esc(primary)};color:{esc(on_primary)};'
            f'padding:10px 16px;text-decoration:none">'
            f"{esc(button_text)}</a></p>{link_html}"
            f'<p style="color:#555;font-size:12px">{esc(footer)} '
            f'<a href="{esc(unsubscribe)}">{"afmelden" if nl else "unsubscribe"}</a></p>'
            f"</body></html>"
        )
        try:
            self.mailer.send(
                job.address,
                content["title"],
                text,
                html_body,
                headers={
                    "List-Unsubscribe": f"<{unsubscribe}>",
                    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                },
            )
        except smtplib.SMTPRecipientsRefused as exc:
            return Outcome("failed", error=f"smtp: refused {exc}"[:300])
        except smtplib.SMTPResponseException as exc:  # 5xx is final, 4xx is worth a retry
            status = "failed" if exc.smtp_code >= 500 else "retry"
            return Outcome(status, error=f"smtp {exc.smtp_code}: {exc.smtp_error!r}"[:300])
        except OSError as exc:  # connection refused, timeouts: the relay may come back
            return Outcome("retry", error=f"smtp: {exc}"[:300])
        return Outcome("sent")
