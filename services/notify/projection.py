"""notify's copy of the panel: residents (from resident_* events) and their endpoints
(registered through the gateway: every device of a participant, whichever of its contacts
registered it — contacts share the participant's id). A resident who leaves is dropped with
everything notify held on them: endpoints (every contact's devices), invitations and
deliveries — and leaves a tombstone (the hash of their id), because the events come on
separate queues: a resident_joined/updated processed after resident_left (a retry, a backlog
after a restart) must not bring the resident back. An older profile event processed after a
newer one does not overwrite it either."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.common.db import rowcount
from services.common.errors import NotFound, NotPermitted, invalid
from services.notify.models import (
    CHANNELS,
    DEVICE_CHANNELS,
    Delivery,
    Endpoint,
    Invitation,
    LeftContact,
    LeftResident,
    Resident,
)


def id_hash(resident_id: str | uuid.UUID) -> str:
    return hashlib.sha256(str(resident_id).encode()).hexdigest()


def has_left(session: Session, resident_id: str | uuid.UUID) -> bool:
    return session.get(LeftResident, id_hash(resident_id)) is not None


def upsert_resident(session: Session, payload: dict[str, Any], now: datetime) -> bool:
    """Apply a resident_joined/updated; False when the resident has left (nothing written).

    ``updated_at`` is the event's own time, so an older event never overwrites a newer one."""
    if has_left(session, payload["resident_id"]):
        return False
    at = payload.get("updated_at") or payload.get("joined_at")
    changed = datetime.fromisoformat(at) if at else now
    values = {
        "id": uuid.UUID(payload["resident_id"]),
        "municipality_code": payload["municipality_code"],
        "wijk_code": payload["wijk_code"],
        "buurt_code": payload["buurt_code"],
        "kind": payload.get("kind") or "resident",  # absent in events before issue 14
        "language": payload["language"],
        "consent": payload["consent"],
        "email": payload.get("email"),
        "updated_at": changed,
    }
    written = rowcount(
        session.execute(
            insert(Resident)
            .values(**values, channel_order=list(CHANNELS))
            .on_conflict_do_update(
                index_elements=["id"], set_=values, where=Resident.updated_at <= changed
            )
        )
    )
    if written and not payload.get("email"):
        # No address (any more): a contact who left took the organisation's with them.
        session.execute(
            sa.delete(Endpoint).where(
                Endpoint.resident_id == values["id"], Endpoint.channel == "email"
            )
        )
    if written and payload.get("email"):
        session.execute(
            insert(Endpoint)
            .values(
                id=uuid.uuid4(),
                resident_id=values["id"],
                channel="email",
                address=payload["email"],
                created_at=now,
            )
            .on_conflict_do_nothing()
        )
    return bool(written)


def drop_resident(session: Session, resident_id: str, left_at: datetime) -> None:
    rid = uuid.UUID(resident_id)
    session.execute(
        insert(LeftResident).values(id_hash=id_hash(rid), left_at=left_at).on_conflict_do_nothing()
    )
    for model in (Endpoint, Invitation, Delivery):
        session.execute(sa.delete(model).where(model.resident_id == rid))
    session.execute(sa.delete(Resident).where(Resident.id == rid))


def drop_contact(session: Session, resident_id: str, contact_id: str, left_at: datetime) -> None:
    """One contact of a business or organisation left (``contact_left``): the devices it
    registered go, the organisation's others stay; a tombstone keeps a late registration by
    its token out."""
    session.execute(
        insert(LeftContact)
        .values(id_hash=id_hash(contact_id), left_at=left_at)
        .on_conflict_do_nothing()
    )
    session.execute(
        sa.delete(Endpoint).where(
            Endpoint.resident_id == uuid.UUID(resident_id),
            Endpoint.contact_id == uuid.UUID(contact_id),
        )
    )


def register_device(
    session: Session,
    *,
    resident_id: str,
    data: dict[str, Any],
    now: datetime,
    max_devices: int = 20,
    contact_id: str | None = None,
) -> Endpoint:
    """A Web Push subscription or an FCM token, beside the participant's other devices: a
    second phone or laptop, another contact of the same business, each gets every
    notification. Registering the same one again is a no-op (and moves it to this resident,
    as when a phone changes hands). Beyond ``max_devices`` the devices least recently reached
    are let go — one notification costs a request per device, so no participant may make it
    cost thousands — and a browser that was reset registers a new subscription while its old
    one may linger until its push service answers 410."""
    if has_left(session, resident_id):  # a token outliving its resident: keep nothing
        raise NotFound("no such resident")
    contact = uuid.UUID(contact_id) if contact_id else None
    if contact is not None and session.get(LeftContact, id_hash(contact)) is not None:
        raise NotFound("no such contact")  # a token outliving its contact: keep nothing
    if data["channel"] == "webpush":
        values = {
            "address": data["endpoint"],
            "p256dh": data["keys"]["p256dh"],
            "auth": data["keys"]["auth"],
        }
    else:
        values = {"address": data["token"], "p256dh": None, "auth": None}
    stmt = insert(Endpoint).values(
        id=uuid.uuid4(),
        resident_id=uuid.UUID(resident_id),
        contact_id=contact,
        channel=data["channel"],
        created_at=now,
        **values,
    )
    upsert = stmt.on_conflict_do_update(
        constraint="endpoints_unique",
        set_={
            "resident_id": uuid.UUID(resident_id),
            "contact_id": contact,
            "p256dh": values["p256dh"],
            "auth": values["auth"],
        },
    ).returning(Endpoint.id)
    endpoint_id = session.execute(upsert).scalar_one()
    _keep_newest_devices(session, uuid.UUID(resident_id), keep=endpoint_id, limit=max_devices)
    endpoint = session.get(Endpoint, endpoint_id)
    assert endpoint is not None  # the upsert above has just written this row
    return endpoint


def _keep_newest_devices(
    session: Session, resident_id: uuid.UUID, *, keep: uuid.UUID, limit: int
) -> None:
    """At most ``limit`` devices per participant: the one just registered, and those reached
    (or registered) most recently."""
    stale = (
        sa.select(Endpoint.id)
        .where(
            Endpoint.resident_id == resident_id,
            Endpoint.channel.in_(DEVICE_CHANNELS),
        )
        .order_by(
            (Endpoint.id == keep).desc(),
            sa.func.coalesce(Endpoint.last_success_at, Endpoint.created_at).desc(),
            Endpoint.created_at.desc(),
        )
        .offset(max(1, limit))
    )
    session.execute(
        sa.delete(Endpoint)
        .where(Endpoint.id.in_(stale.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )


def list_devices(
    session: Session, resident_id: str, contact_id: str | None = None
) -> list[dict[str, Any]]:
    """The participant's devices, the caller's own first (``registered_by``: ``me``, a
    ``colleague`` — another contact of the business or organisation, ``contact_id`` says
    which — or ``unknown``, registered before contacts were told apart)."""
    rows = session.scalars(
        sa.select(Endpoint)
        .where(Endpoint.resident_id == uuid.UUID(resident_id), Endpoint.channel != "email")
        .order_by(Endpoint.created_at, Endpoint.id)
    )
    found = [serialize_device(e, contact_id) for e in rows]
    return sorted(found, key=lambda d: d["registered_by"] != "me")


def registered_by(e: Endpoint, contact_id: str | None) -> str:
    """Whose a device is, seen by the caller: a resident's are all its own; a contact's own
    are those its token registered."""
    if contact_id is None or (e.contact_id is not None and str(e.contact_id) == str(contact_id)):
        return "me"
    return "colleague" if e.contact_id is not None else "unknown"


def serialize_device(e: Endpoint, contact_id: str | None = None) -> dict[str, Any]:
    return {
        "device_id": str(e.id),
        "channel": e.channel,
        "created_at": e.created_at.isoformat(),
        "last_success_at": e.last_success_at.isoformat() if e.last_success_at else None,
        "registered_by": registered_by(e, contact_id),
        "contact_id": str(e.contact_id) if e.contact_id else None,
    }


def remove_device(
    session: Session, *, resident_id: str, device_id: str, contact_id: str | None = None
) -> None:
    """Stop notifications to a device of the participant. A contact of a business or
    organisation removes its own devices (and those whose contact is unknown), not a
    colleague's: that is refused (NotPermitted), so no contact can silence another."""
    try:
        did = uuid.UUID(device_id)
    except ValueError:
        raise NotFound("no such device") from None
    device = session.scalars(
        sa.select(Endpoint).where(
            Endpoint.id == did,
            Endpoint.resident_id == uuid.UUID(resident_id),
            Endpoint.channel != "email",
        )
    ).first()
    if device is None:
        raise NotFound("no such device")
    if registered_by(device, contact_id) == "colleague":
        raise NotPermitted(
            "this device belongs to another contact of your organisation: only they can remove it",
            [
                {
                    "field": "device_id",
                    "code": "colleague_s_device",
                    "message": "registered by another contact",
                }
            ],
        )
    session.delete(device)
    session.flush()


def unsubscribe_email(session: Session, resident_id: uuid.UUID) -> None:
    """The e-mail footer's one-click link: no more e-mail to this resident."""
    session.execute(
        sa.delete(Endpoint).where(Endpoint.resident_id == resident_id, Endpoint.channel == "email")
    )


def set_preferences(
    session: Session, *, resident_id: str, changes: dict[str, Any], now: datetime
) -> dict[str, Any]:
    resident = session.get(Resident, uuid.UUID(resident_id))
    if resident is None:
        raise NotFound("your profile has not reached the notification service yet; retry")
    if "channel_order" in changes:
        order = changes["channel_order"]
        if sorted(order) != sorted(set(order)):
            raise invalid("channel_order", "duplicate", "name each channel once")
        resident.channel_order = order + [c for c in CHANNELS if c not in order]
    if "quiet_hours" in changes:
        resident.quiet_hours = changes["quiet_hours"]
    # updated_at is the time of the panel profile applied (the order guard of upsert_resident):
    # a preference change here must not make a later profile event look older.
    return {"channel_order": resident.channel_order, "quiet_hours": resident.quiet_hours}
