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
        )

    def urls(self, municipality_code: str, token: str) -> dict[str, str]:
        """The link to answer and the link to revoke it: both exchanged by the gateway at once
        for a short session cookie and a redirect to an address without the token."""
        base = f"{self.app_url}/app/{municipality_code}/link"
        quoted = quote(token, safe="")
        return {"answer": f"{base}?t={quoted}", "revoke": f"{base}/intrekken?t={quoted}"}


def link_status(session: Session, *, poll_id: Any, resident_id: Any) -> str:
    """open | answered | revoked | unknown (no such invitation: never invited, or gone)."""
    row = session.execute(
        sa.text(
            "SELECT answered, link_revoked_at FROM invitations "
            "WHERE poll_id = :poll AND resident_id = :resident"
        ),
        {"poll": poll_id, "resident": resident_id},
    ).first()
    if row is None:
        return UNKNOWN
    if row.answered:
        return ANSWERED
    return REVOKED if row.link_revoked_at is not None else OPEN


def revoke_link(session: Session, *, poll_id: Any, resident_id: Any, now: datetime) -> str:
    """Revoke the invitation's link (idempotent); its status after."""
    session.execute(
        sa.text(
            "UPDATE invitations SET link_revoked_at = :now WHERE poll_id = :poll "
            "AND resident_id = :resident AND link_revoked_at IS NULL AND NOT answered"
        ),
        {"poll": poll_id, "resident": resident_id, "now": now},
    )
    return link_status(session, poll_id=poll_id, resident_id=resident_id)
