"""The personal link in invitation and reminder e-mails: answer a poll in the browser without
the app or a password (issue 14).

notify signs the link's token (``tokens.issue_link_token``, typ ``poll+link``) with an Ed25519
key of its own (``LINK_PRIVATE_KEY_FILE``); the gateway verifies it with the public half
(``LINK_PUBLIC_KEY_FILE``). notify signs because it is the one that writes the e-mail and
knows, at that moment, the invitation (this poll, this participant) and when the poll closes:
no call per e-mail to another service in a fan-out. Its key is not the panel's: a leak of one
cannot forge the other's tokens (and the typ keeps them apart as well).

Revocation is notify's too: the invitation row keeps ``link_revoked_at`` (``link_status``,
``revoke_link``); the gateway asks on every use. The link works until the answer is recorded
(responses keeps one answer per participant and poll; the invitation's ``answered``).

A revoked link can be reissued (``reissue_link``): whoever holds a revoked link of the
invitation may ask, and a new link — the next ``link_generation``, a new token — goes by e-mail
to the participant's own address, never to the asker's screen. Only the invitation's current
generation answers: the old link stays revoked, and the reminders from then on carry the new
one. A request never revokes a link that works (a forwarded old link cannot take the new one
away): while the current link is not revoked, it is sent again instead. At most
``REISSUE_LIMIT`` requests per participant and poll count (``link_requests``), whatever their
outcome, so a forwarded link cannot flood the participant's inbox.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common import tokens

log = logging.getLogger(__name__)

# A poll without a closing time: its link lives this long after the poll opened.
OPEN_ENDED = timedelta(days=90)

OPEN, ANSWERED, REVOKED, UNKNOWN = "open", "answered", "revoked", "unknown"
# What a request for a new link did (``reissue_link``). The gateway shows the same page for all
# of them but LIMITED; they are for tests and metrics, never for the asker.
SENT, CLOSED, LIMITED, NO_ADDRESS = "sent", "closed", "limited", "no_address"
# Requests for a new link per participant and poll (each may send one e-mail).
REISSUE_LIMIT = 3


class LinkSigner:
    """Makes the link (and the revocation link) of one invitation."""

    def __init__(self, private_pem: str, *, issuer: str, audience: str, app_url: str):
        self.key = tokens.load_private_key(private_pem)
        self.key_id = tokens.key_id(self.key.public_key())
        self.issuer, self.audience = issuer, audience
        self.app_url = app_url.rstrip("/")

    @classmethod
    def from_file(cls, path: str | None, *, development: bool, **kwargs: Any) -> LinkSigner | None:
        """None (e-mails without a personal link) when no key is configured, or — in
        development only — when the configured file does not exist."""
        if not path:
            return None
        file = Path(path)
        if development and not file.exists():
            log.warning("no link key at %s: e-mails carry no personal link", path)
            return None
        return cls(file.read_text(), **kwargs)

    def token(
        self,
        *,
        resident_id: str,
        poll_id: str,
        municipality_code: str,
        opens_at: datetime,
        closes_at: datetime | None,
        generation: int = 0,
    ) -> str:
        return tokens.issue_link_token(
            self.key,
            resident=resident_id,
            poll=poll_id,
            municipality=municipality_code,
            issued_at=opens_at,
            expires_at=closes_at or opens_at + OPEN_ENDED,
            issuer=self.issuer,
            audience=self.audience,
            key_id=self.key_id,
            generation=generation,
        )

    def urls(self, municipality_code: str, token: str) -> dict[str, str]:
        """The link to answer and the link to revoke it: both exchanged by the gateway at once
        for a short session cookie and a redirect to an address without the token."""
        base = f"{self.app_url}/app/{municipality_code}/link"
        quoted = quote(token, safe="")
        return {"answer": f"{base}?t={quoted}", "revoke": f"{base}/intrekken?t={quoted}"}


def link_status(session: Session, *, poll_id: Any, resident_id: Any, generation: int = 0) -> str:
    """open | answered | revoked | unknown (no such invitation: never invited, or gone) — of the
    link of this ``generation``: one older than the invitation's current is revoked."""
    row = session.execute(
        sa.text(
            "SELECT answered, link_revoked_at, link_generation FROM invitations "
            "WHERE poll_id = :poll AND resident_id = :resident"
        ),
        {"poll": poll_id, "resident": resident_id},
    ).first()
    if row is None or generation > row.link_generation:  # the latter never minted here
        return UNKNOWN
    # Revoked before answered: whoever holds a revoked (forwarded) link must not learn that
    # the participant answered since, through the app or a new link.
    if generation < row.link_generation or row.link_revoked_at is not None:
        return REVOKED
    return ANSWERED if row.answered else OPEN


def revoke_link(
    session: Session, *, poll_id: Any, resident_id: Any, now: datetime, generation: int = 0
) -> str:
    """Revoke the invitation's link of this generation (idempotent; an older one is revoked
    already, and revoking it leaves the current one alone); its status after."""
    session.execute(
        sa.text(
            "UPDATE invitations SET link_revoked_at = :now WHERE poll_id = :poll "
            "AND resident_id = :resident AND link_revoked_at IS NULL AND NOT answered "
            "AND link_generation = :generation"
        ),
        {"poll": poll_id, "resident": resident_id, "now": now, "generation": generation},
    )
    return link_status(session, poll_id=poll_id, resident_id=resident_id, generation=generation)


# The address the participant got this poll's e-mails at (the newest of them), or — when that
# address is gone — their e-mail address now: theirs either way, never one the asker gives.
_ADDRESS = """
SELECT id FROM (
    SELECT e.id, 0 AS rank, d.queued_at AS at FROM deliveries d
    JOIN endpoints e ON e.id = d.endpoint_id AND e.channel = 'email'
    WHERE d.poll_id = :poll AND d.resident_id = :resident AND d.channel = 'email'
      AND d.kind IN ('invitation', 'reminder', 'link')
    UNION ALL
    SELECT e.id, 1, e.created_at FROM endpoints e
    WHERE e.resident_id = :resident AND e.channel = 'email'
) found ORDER BY rank, at DESC LIMIT 1
"""


def reissue_link(
    session: Session,
    *,
    poll_id: Any,
    resident_id: Any,
    generation: int,
    now: datetime,
    limit: int = REISSUE_LIMIT,
) -> str:
    """A request for a new link by the holder of a revoked link of this ``generation``: queue
    an e-mail with the invitation's current link to the participant's own address — a new
    generation first if the current link is revoked. What it did: sent, or why not (unknown,
    limited, answered, closed, open: the asker's link works, no_address).

    Every request of a known invitation counts towards ``limit``, whatever it did, so the
    answer "limited" tells the asker only how often was asked. The e-mail is a delivery of kind
    ``link`` (seq: the request's number) through the same deliveries as every other
    notification: the dispatcher sends it, retries it, and cancels it if the participant
    answers or the poll closes first."""
    row = session.execute(
        sa.text(
            "SELECT i.answered, i.link_revoked_at, i.link_generation, i.link_requests, "
            "p.closed_at, p.closes_at FROM invitations i JOIN polls p ON p.id = i.poll_id "
            "WHERE i.poll_id = :poll AND i.resident_id = :resident FOR UPDATE OF i"
        ),
        {"poll": poll_id, "resident": resident_id},
    ).first()
    if row is None or generation > row.link_generation:
        return UNKNOWN
    if row.link_requests >= limit:
        return LIMITED
    request = row.link_requests + 1
    session.execute(
        sa.text(
            "UPDATE invitations SET link_requests = :n WHERE poll_id = :poll "
            "AND resident_id = :resident"
        ),
        {"n": request, "poll": poll_id, "resident": resident_id},
    )
    if row.answered:
        return ANSWERED
    if row.closed_at is not None or (row.closes_at is not None and row.closes_at <= now):
        return CLOSED
    if generation == row.link_generation and row.link_revoked_at is None:
        return OPEN
    endpoint = session.execute(
        sa.text(_ADDRESS), {"poll": poll_id, "resident": resident_id}
    ).scalar()
    if endpoint is None:
        return NO_ADDRESS
    if row.link_revoked_at is not None:
        session.execute(
            sa.text(
                "UPDATE invitations SET link_generation = link_generation + 1, "
                "link_revoked_at = NULL WHERE poll_id = :poll AND resident_id = :resident"
            ),
            {"poll": poll_id, "resident": resident_id},
        )
    session.execute(
        sa.text(
            "INSERT INTO deliveries (kind, ref_id, seq, poll_id, resident_id, channel, "
            "endpoint_id, status, attempts, queued_at, updated_at) VALUES ('link', :poll, :seq, "
            ":poll, :resident, 'email', :endpoint, 'queued', 0, :now, :now) "
            "ON CONFLICT DO NOTHING"
        ),
        {
            "poll": poll_id,
            "resident": resident_id,
            "seq": request,
            "endpoint": endpoint,
            "now": now,
        },
    )
    return SENT
