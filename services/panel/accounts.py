"""Sessions and staff accounts: resident and staff refresh tokens with rotation and reuse
detection (a family is a session; its id is the ``sid`` of its access tokens), the revoked-
session list the gateways refuse, staff login with argon2id and lock-out, invitations, roles.

Access tokens are issued by ``TokenIssuer`` (service.py) from what these functions return;
the gateway verifies them with the public key alone.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from eventlet import tpool
from sqlalchemy.orm import Session

from services.common import passwords, tokens
from services.common.errors import Conflict, InvalidInput, NotFound, Unauthorized, invalid
from services.panel.models import RefreshToken, Resident, RevokedSession, Staff, StaffRefreshToken
from services.panel.tenants import get_municipality

REFRESH_TTL = timedelta(days=60)
STAFF_REFRESH_TTL = timedelta(hours=12)  # a working day; the access token lives 15 minutes
# viewer < editor < admin by rank; invoerder (data entry) is outside the ranks: it may key in
# paper forms and nothing else (the gateway's gateway/auth.py).
ROLES = ("viewer", "editor", "admin", "invoerder")
PLATFORM_ADMIN = "platform_admin"
LOCK_AFTER = 5  # failed logins in a row
LOCK_FOR = timedelta(minutes=15)
INVITE_TTL = timedelta(days=7)


def _hash(password: str) -> str:
    # argon2id holds the CPU for ~30 ms: in a real thread, so other greenthreads keep running.
    return tpool.execute(passwords.hash_password, password)


def _verify(password_hash: str | None, password: str) -> bool:
    return tpool.execute(passwords.verify_password, password_hash, password)


# --- residents' refresh tokens ---------------------------------------------------------------


def start_session(
    session: Session, *, resident: Resident, now: datetime, contact_id: Any = None
) -> tuple[str, str]:
    """A new session: (refresh token, session id). The family id is the session id: the
    ``sid`` of every access token the family issues. ``contact_id``: the contact of a
    business or organisation who signs in (every token of the session names it)."""
    token, token_hash = tokens.new_refresh_token()
    family = uuid.uuid4()
    session.add(
        RefreshToken(
            token_hash=token_hash,
            family_id=family,
            resident_id=resident.id,
            contact_id=uuid.UUID(str(contact_id)) if contact_id else None,
            issued_at=now,
            expires_at=now + REFRESH_TTL,
        )
    )
    return token, str(family)


def rotate(
    session: Session, *, refresh_token: str, now: datetime, emit: Any = None
) -> tuple[Resident, str, str, str | None]:
    """Exchange a refresh token for its successor: (resident, refresh token, session id,
    contact id or None); a reused one revokes its whole family (and its access tokens, when
    ``emit`` is given)."""
    resident, successor, sid, contact = _rotate(
        session, RefreshToken, "resident", refresh_token=refresh_token, now=now, emit=emit
    )
    return resident, successor, sid, contact


def _rotate(
    session: Session, model: Any, kind: str, *, refresh_token: str, now: datetime, emit: Any
) -> tuple[Any, str, str, str | None]:
    owner = "resident_id" if kind == "resident" else "staff_id"
    record = session.scalars(
        sa.select(model)
        .where(model.token_hash == tokens.hash_refresh_token(refresh_token))
        .with_for_update()
    ).first()
    decision = tokens.rotation_decision(
        None
        if record is None
        else tokens.RefreshRecord(
            token_hash=record.token_hash,
            family_id=str(record.family_id),
            resident_id=str(getattr(record, owner)),
            expires_at=record.expires_at,
            used_at=record.used_at,
            revoked_at=record.revoked_at,
        ),
        now,
    )
    # rotation_decision answers "unknown" for a missing record; the checks on record say so to mypy.
    if record is not None and decision == "reuse_detected":
        session.execute(
            sa.update(model)
            .where(model.family_id == record.family_id, model.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if emit is not None:
            revoke_sessions(
                session, [record.family_id], kind=kind, reason="refresh_reused", now=now, emit=emit
            )
        raise Unauthorized(
            "this refresh token was used before; sign in again",
            [
                {
                    "field": "refresh_token",
                    "code": "reused",
                    "message": "reuse detected: every session of this family was ended",
                }
            ],
        )
    if record is None or decision != "rotate":
        raise Unauthorized(
            "sign in again",
            [{"field": "refresh_token", "code": decision, "message": f"refresh token {decision}"}],
        )
    record.used_at = now
    successor, successor_hash = tokens.new_refresh_token()
    contact = getattr(record, "contact_id", None)  # a session keeps its contact
    session.add(
        model(
            token_hash=successor_hash,
            family_id=record.family_id,
            issued_at=now,
            expires_at=now + (REFRESH_TTL if kind == "resident" else STAFF_REFRESH_TTL),
            **{owner: getattr(record, owner)},
            **({"contact_id": contact} if kind == "resident" else {}),
        )
    )
    holder = session.get(Resident if kind == "resident" else Staff, getattr(record, owner))
    return holder, successor, str(record.family_id), str(contact) if contact else None


# --- revoked sessions ------------------------------------------------------------------------


def revoke_sessions(
    session: Session,
    session_ids: list[Any],
    *,
    kind: str,
    reason: str,
    now: datetime,
    emit: Any,
) -> None:
    """Put sessions on the list every gateway refuses, and tell the gateways (an event, in
    this transaction). Kept until no access token of theirs can still be valid."""
    ids = sorted({uuid.UUID(str(i)) for i in session_ids})
    if not ids:
        return
    expires = now + timedelta(seconds=tokens.REVOCATION_KEEP)
    session.execute(
        sa.delete(RevokedSession).where(RevokedSession.expires_at < now)
    )  # the list stays short: nothing on it outlives the access tokens it refuses
    for sid in ids:
        session.merge(
            RevokedSession(
                session_id=sid, kind=kind, reason=reason, revoked_at=now, expires_at=expires
            )
        )
    emit(
        session,
        "sessions_revoked",
        {
            "session_ids": [str(i) for i in ids],
            "kind": kind,
            "reason": reason,
            "revoked_at": now.isoformat(),
            "expires_at": expires.isoformat(),
        },
    )


def revoke_resident_sessions(
    session: Session, *, resident_id: str, now: datetime, emit: Any
) -> None:
    """Every session of a resident who leaves (call before the rows are erased)."""
    families = session.scalars(
        sa.select(RefreshToken.family_id)
        .where(RefreshToken.resident_id == uuid.UUID(str(resident_id)))
        .distinct()
    ).all()
    revoke_sessions(session, list(families), kind="resident", reason="left", now=now, emit=emit)


def revoke_contact_sessions(
    session: Session, *, resident_id: str, contact_id: str, now: datetime, emit: Any
) -> None:
    """Every session of one contact of a business or organisation who leaves alone: its
    access tokens refused, its refresh tokens deleted (the organisation's other contacts'
    sessions go on)."""
    owner, contact = uuid.UUID(str(resident_id)), uuid.UUID(str(contact_id))
    mine = sa.and_(RefreshToken.resident_id == owner, RefreshToken.contact_id == contact)
    families = session.scalars(sa.select(RefreshToken.family_id).where(mine).distinct()).all()
    revoke_sessions(session, list(families), kind="resident", reason="left", now=now, emit=emit)
    session.execute(sa.delete(RefreshToken).where(mine))


def revoke_staff_sessions(
    session: Session, staff: Staff, *, reason: str, now: datetime, emit: Any
) -> None:
    """Every session of a staff member: refresh tokens revoked, access tokens refused."""
    families = session.scalars(
        sa.select(StaffRefreshToken.family_id)
        .where(StaffRefreshToken.staff_id == staff.id, StaffRefreshToken.expires_at > now)
        .distinct()
    ).all()
    session.execute(
        sa.update(StaffRefreshToken)
        .where(StaffRefreshToken.staff_id == staff.id, StaffRefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    revoke_sessions(session, list(families), kind="staff", reason=reason, now=now, emit=emit)


def revoked_sessions(session: Session, *, now: datetime) -> list[dict[str, Any]]:
    """The list as it stands (for the gateways' resync)."""
    rows = session.scalars(sa.select(RevokedSession).where(RevokedSession.expires_at >= now)).all()
    return [{"session_id": str(r.session_id), "expires_at": r.expires_at.isoformat()} for r in rows]


# --- staff -----------------------------------------------------------------------------------


def start_staff_session(session: Session, *, staff: Staff, now: datetime) -> tuple[str, str]:
    """A new staff session (login, accepted invitation): (refresh token, session id)."""
    token, token_hash = tokens.new_refresh_token()
    family = uuid.uuid4()
    session.add(
        StaffRefreshToken(
            token_hash=token_hash,
            family_id=family,
            staff_id=staff.id,
            issued_at=now,
            expires_at=now + STAFF_REFRESH_TTL,
        )
    )
    return token, str(family)


def rotate_staff(
    session: Session, *, refresh_token: str, now: datetime, emit: Any
) -> tuple[Staff, str, str]:
    """As ``rotate``, for staff; an account no longer active gets no new token."""
    staff, successor, sid, _ = _rotate(
        session, StaffRefreshToken, "staff", refresh_token=refresh_token, now=now, emit=emit
    )
    if staff is None or staff.status != "active":
        raise Unauthorized(
            "sign in again",
            [{"field": "refresh_token", "code": "revoked", "message": "refresh token revoked"}],
        )
    return staff, successor, sid


def _hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def serialize_staff(s: Staff) -> dict[str, Any]:
    return {
        "id": str(s.id),
        "municipality_code": s.municipality_code,
        "email": s.email,
        "name": s.name,
        "role": s.role,
        "status": s.status,
        "created_at": s.created_at.isoformat(),
        "last_login_at": s.last_login_at.isoformat() if s.last_login_at else None,
    }


def create_platform_admin(session: Session, *, email: str, password: str, now: datetime) -> Staff:
    problems = passwords.password_problems(password, email=email)
    if problems:
        raise invalid("password", problems[0], passwords.PASSWORD_PROBLEMS[problems[0]])
    existing = session.scalars(sa.select(Staff).where(Staff.email == email.lower())).first()
    if existing is not None:
        return existing  # idempotent bootstrap
    admin = Staff(
        municipality_code=None,
        email=email.lower(),
        role=PLATFORM_ADMIN,
        status="active",
        password_hash=_hash(password),
        created_at=now,
    )
    session.add(admin)
    session.flush()
    return admin


def create_staff(
    session: Session,
    *,
    municipality_code: str,
    email: str,
    role: str,
    password: str,
    now: datetime,
    name: str | None = None,
) -> Staff:
    """An active account with a password, for operators seeding a municipality (the normal
    way is an invitation); idempotent on the e-mail address."""
    get_municipality(session, municipality_code)
    if role not in ROLES:
        raise invalid("role", "unknown_role", f"one of {', '.join(ROLES)}")
    problems = passwords.password_problems(password, email=email)
    if problems:
        raise invalid("password", problems[0], passwords.PASSWORD_PROBLEMS[problems[0]])
    existing = session.scalars(sa.select(Staff).where(Staff.email == email.lower())).first()
    if existing is not None:
        return existing
    staff = Staff(
        municipality_code=municipality_code,
        email=email.lower(),
        name=name,
        role=role,
        status="active",
        password_hash=_hash(password),
        created_at=now,
    )
    session.add(staff)
    session.flush()
    return staff


def login(session: Session, *, email: str, password: str, now: datetime) -> Staff:
    """The staff member, or Unauthorized with the same answer for every kind of failure."""
    staff = session.scalars(
        sa.select(Staff).where(Staff.email == email.lower()).with_for_update()
    ).first()
    refused = Unauthorized(
        "e-mail address or password not right",
        [
            {
                "field": "password",
                "code": "invalid_credentials",
                "message": "e-mail address or password not right",
            }
        ],
    )
    if staff is None or staff.password_hash is None:
        _verify(None, password)  # the same time as a real check
        raise refused
    if staff.locked_until and staff.locked_until > now:
        raise Unauthorized(
            "too many failed attempts; try again later",
            [
                {
                    "field": "password",
                    "code": "locked",
                    "message": f"locked until {staff.locked_until.isoformat()}",
                }
            ],
        )
    if not _verify(staff.password_hash, password) or staff.status != "active":
        staff.failed_logins += 1
        if staff.failed_logins >= LOCK_AFTER:
            staff.locked_until, staff.failed_logins = now + LOCK_FOR, 0
        raise refused
    staff.failed_logins, staff.locked_until, staff.last_login_at = 0, None, now
    if passwords.needs_rehash(staff.password_hash):
        staff.password_hash = _hash(password)
    return staff


def invite_staff(
    session: Session,
    *,
    municipality_code: str,
    email: str,
    role: str,
    name: str | None,
    now: datetime,
) -> tuple[Staff, str]:
    """A new staff account in state 'invited' and the one-time token for the e-mailed link."""
    get_municipality(session, municipality_code)
    if role not in ROLES:
        raise invalid("role", "unknown_role", f"one of {', '.join(ROLES)}")
    if session.scalars(sa.select(Staff).where(Staff.email == email.lower())).first():
        raise Conflict("an account with this e-mail address exists already")
    token = secrets.token_urlsafe(32)
    staff = Staff(
        municipality_code=municipality_code,
        email=email.lower(),
        name=name,
        role=role,
        status="invited",
        invite_hash=_hash_secret(token),
        invite_expires_at=now + INVITE_TTL,
        created_at=now,
    )
    session.add(staff)
    session.flush()
    return staff, token


def accept_invite(session: Session, *, token: str, password: str, now: datetime) -> Staff:
    staff = session.scalars(
        sa.select(Staff).where(Staff.invite_hash == _hash_secret(token)).with_for_update()
    ).first()
    if staff is None or staff.status != "invited":
        raise invalid("token", "invalid", "this invitation is not valid (any more)")
    # invite() sets the expiry with status "invited"; accepting clears both together.
    assert staff.invite_expires_at is not None
    if staff.invite_expires_at <= now:
        raise invalid("token", "invalid", "this invitation is not valid (any more)")
    problems = passwords.password_problems(password, email=staff.email)
    if problems:
        raise InvalidInput(
            "choose another password",
            [
                {"field": "password", "code": p, "message": passwords.PASSWORD_PROBLEMS[p]}
                for p in problems
            ],
        )
    staff.password_hash = _hash(password)
    staff.status, staff.invite_hash, staff.invite_expires_at = "active", None, None
    return staff


def get_staff(
    session: Session, *, municipality_code: str, staff_id: str, lock: bool = False
) -> Staff:
    try:
        sid = uuid.UUID(str(staff_id))
    except ValueError:
        raise NotFound("no such staff member") from None
    query = sa.select(Staff).where(Staff.id == sid, Staff.municipality_code == municipality_code)
    staff = session.scalars(query.with_for_update() if lock else query).first()
    if staff is None:
        raise NotFound("no such staff member")
    return staff


def list_staff(session: Session, *, municipality_code: str) -> list[Staff]:
    return list(
        session.scalars(
            sa.select(Staff)
            .where(Staff.municipality_code == municipality_code)
            .order_by(Staff.email)
        )
    )


def change_staff(
    session: Session,
    *,
    municipality_code: str,
    staff_id: str,
    changes: dict[str, Any],
    actor_id: str,
    now: datetime | None = None,
    emit: Any = None,
) -> Staff:
    """Change a member's role or status. A new role, or a disabled account, ends every
    session of the member (their tokens carry the old role): they sign in again."""
    staff = get_staff(session, municipality_code=municipality_code, staff_id=staff_id, lock=True)
    before = (staff.role, staff.status)
    if str(staff.id) == actor_id:
        raise Conflict("you cannot change your own role or status; ask another admin")
    if "role" in changes:
        if changes["role"] not in ROLES:
            raise invalid("role", "unknown_role", f"one of {', '.join(ROLES)}")
        staff.role = changes["role"]
    if "status" in changes:
        if changes["status"] not in ("active", "disabled"):
            raise invalid("status", "unknown_status", "active or disabled")
        if changes["status"] == "active" and staff.status == "invited":
            raise Conflict("an invited account becomes active when the invitation is accepted")
        staff.status = changes["status"]
    if emit is not None and (staff.role, staff.status) != before:
        reason = "disabled" if staff.status == "disabled" else "role_changed"
        revoke_staff_sessions(
            session, staff, reason=reason, now=now or datetime.now(UTC), emit=emit
        )
    return staff
