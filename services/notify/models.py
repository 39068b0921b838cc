"""notify's tables: who can be reached (projection of panel's residents, and their endpoints),
what was promised to whom (invitations), and every attempt to reach them (deliveries).

Volume lives in ``invitations`` and ``deliveries`` (one row per resident per poll); they are
written with INSERT … SELECT in the database, never row by row from Python.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common import outbox

TS = sa.DateTime(timezone=True)
CHANNELS = ("webpush", "fcm", "email")
# A participant's devices: a notification on one of these channels goes to every device the
# participant registered on either (each contact's phone and computer), not to one of them.
DEVICE_CHANNELS = ("webpush", "fcm")
# link: a new personal link the participant asked for after revoking theirs (links.py).
KINDS = ("invitation", "reminder", "feedback", "measure", "link")
STATUSES = ("queued", "sent", "retrying", "deferred", "failed", "dead", "cancelled")


class Base(DeclarativeBase):
    pass


class Resident(Base):
    """Projection of panel's residents: only what reaching them needs."""

    __tablename__ = "residents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    wijk_code: Mapped[str] = mapped_column(sa.String(8))
    buurt_code: Mapped[str] = mapped_column(sa.String(10))
    # resident | ondernemer | organisatie: a poll reaches the kinds its audience names.
    kind: Mapped[str] = mapped_column(sa.String(12), default="resident", server_default="resident")
    language: Mapped[str] = mapped_column(sa.String(2))
    consent: Mapped[bool]
    email: Mapped[str | None] = mapped_column(sa.String(320))
    channel_order: Mapped[list[str]] = mapped_column(JSONB, default=lambda: list(CHANNELS))
    quiet_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONB)  # None: municipality's
    # When panel changed the profile applied here (the event's time): an older event is
    # ignored. Preference changes do not touch it.
    updated_at: Mapped[datetime] = mapped_column(TS)

    __table_args__ = (
        sa.Index("notify_residents_area", "municipality_code", "wijk_code", "buurt_code"),
    )


class Endpoint(Base):
    """A way to reach a resident: a Web Push subscription, an FCM token (a device) or an
    e-mail address. A participant may have several devices — a resident's phone and laptop,
    each contact of a business or organisation their own (they share its participant id) —
    and every one of them gets the participant's notifications. ``contact_id``: the contact
    who registered a device (the ``cid`` of its token; None for a resident's, and for a
    device registered before contacts were told apart): a contact sees which devices are its
    own, removes only those, and takes them along when it leaves (``contact_left``)."""

    __tablename__ = "endpoints"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # No foreign key: a device may register before resident_joined reaches notify.
    resident_id: Mapped[uuid.UUID] = mapped_column(index=True)
    channel: Mapped[str] = mapped_column(sa.String(10))
    address: Mapped[str] = mapped_column(sa.Text)  # push endpoint URL, FCM token or e-mail
    contact_id: Mapped[uuid.UUID | None]
    p256dh: Mapped[str | None] = mapped_column(sa.String(100))
    auth: Mapped[str | None] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(TS)
    last_success_at: Mapped[datetime | None] = mapped_column(TS)

    __table_args__ = (sa.UniqueConstraint("channel", "address", name="endpoints_unique"),)


class Poll(Base):
    """Projection of published polls: what notifications about them need."""

    __tablename__ = "polls"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    title: Mapped[str] = mapped_column(sa.String(200))
    audience: Mapped[dict[str, Any]] = mapped_column(JSONB)
    opens_at: Mapped[datetime] = mapped_column(TS)
    closes_at: Mapped[datetime | None] = mapped_column(TS)
    reminder_after_hours: Mapped[list[int]] = mapped_column(JSONB, default=list)
    estimated_minutes: Mapped[int] = mapped_column(default=5)
    closed_at: Mapped[datetime | None] = mapped_column(TS)


class Notice(Base):
    """What a feedback or measure notification says (from feedback's events)."""

    __tablename__ = "notices"

    ref_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(12))
    poll_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(sa.String(300))
    status: Mapped[str | None] = mapped_column(sa.String(20))


class Invitation(Base):
    __tablename__ = "invitations"

    poll_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    resident_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    # Where the resident was invited: their answer counts there even if they move (the
    # gateway asks, invitation_areas). Cleared once they answered, with no time kept: an
    # answered invitation must not be joinable to a response row on area and day.
    wijk_code: Mapped[str | None] = mapped_column(sa.String(8))
    buurt_code: Mapped[str | None] = mapped_column(sa.String(10))
    invited_at: Mapped[datetime] = mapped_column(TS)
    answered: Mapped[bool] = mapped_column(default=False, server_default="false")
    reminders_sent: Mapped[int] = mapped_column(default=0)
    # The participant revoked the personal link of this invitation (links.py): it answers no
    # more, in the invitation or any reminder.
    link_revoked_at: Mapped[datetime | None] = mapped_column(TS)
    # The link's generation: 0 the first, one more for each link reissued after a revocation;
    # only the current one answers. link_requests: requests for a new link (at most a few).
    link_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    link_requests: Mapped[int] = mapped_column(default=0, server_default="0")

    __table_args__ = (sa.Index("invitations_by_resident", "resident_id", "invited_at"),)


class LeftResident(Base):
    """A tombstone per resident who left: the SHA-256 of their id (no id, nothing else), so a
    resident_joined/updated that arrives after resident_left cannot re-insert them."""

    __tablename__ = "left_residents"

    id_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    left_at: Mapped[datetime] = mapped_column(TS)


class LeftContact(Base):
    """A tombstone per contact of a business or organisation who left alone: the SHA-256 of
    its id, so a device its token registers in the moment before the gateways refuse that
    token is not kept."""

    __tablename__ = "left_contacts"

    id_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    left_at: Mapped[datetime] = mapped_column(TS)


class Delivery(Base):
    """One notification to one participant, on the channel chosen for them, and its fate.

    One row per participant and notification whatever the number of devices: reminders, the
    monthly cap, quiet hours, cancellation and the staff's summaries count participants. On a
    device channel the row is sent to every device of the participant (``done_endpoints``
    keeps those it is finished with); ``endpoint_id`` is the e-mail address's endpoint, and
    NULL for devices."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(12))
    ref_id: Mapped[uuid.UUID]  # the poll, feedback or measure it is about
    seq: Mapped[int] = mapped_column(default=0)  # reminder number, measure update number
    poll_id: Mapped[uuid.UUID]
    resident_id: Mapped[uuid.UUID] = mapped_column(index=True)
    channel: Mapped[str] = mapped_column(sa.String(10))
    endpoint_id: Mapped[uuid.UUID | None]
    # The devices this delivery reached or that refused it for good: a retry, a sweep or a
    # replay sends to the participant's other devices only.
    done_endpoints: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(sa.Uuid()), default=list, server_default=sa.text("'{}'::uuid[]")
    )
    status: Mapped[str] = mapped_column(sa.String(10), default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    queued_at: Mapped[datetime] = mapped_column(TS)
    dispatched_at: Mapped[datetime | None] = mapped_column(TS)
    not_before: Mapped[datetime | None] = mapped_column(TS)  # quiet hours
    sent_at: Mapped[datetime | None] = mapped_column(TS)  # when it first reached anyone
    updated_at: Mapped[datetime] = mapped_column(TS)

    __table_args__ = (
        # Redelivered events write nothing twice.
        sa.UniqueConstraint("kind", "ref_id", "seq", "resident_id", name="deliveries_once"),
        sa.Index(
            "deliveries_to_dispatch",
            "id",
            postgresql_where=sa.text("status = 'queued' AND dispatched_at IS NULL"),
        ),
        sa.Index(
            "deliveries_deferred", "not_before", postgresql_where=sa.text("status = 'deferred'")
        ),
        sa.Index("deliveries_by_ref", "ref_id", "status"),
    )


target_metadata = [Base.metadata, outbox.metadata]
