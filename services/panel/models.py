"""The panel service's tables: municipalities (tenants), CBS areas, residents, invitation codes,
e-mail verifications, refresh tokens and staff.

Privacy: a resident row holds the only personal data (e-mail, birth year, sex). Leaving deletes
it together with the resident's refresh tokens and pending verifications, in one transaction;
what remains is ``panel_changes``, a per-wijk tally of joins and departures for attrition
figures, without any id.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common import outbox

TS = sa.DateTime(timezone=True)


class Base(DeclarativeBase):
    pass


class Municipality(Base):
    __tablename__ = "municipalities"

    code: Mapped[str] = mapped_column(sa.String(6), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    branding: Mapped[dict[str, Any]] = mapped_column(JSONB)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB)
    area_year: Mapped[int | None]  # the KWB edition in use; older years stay as history
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)


class Area(Base):
    __tablename__ = "areas"

    code: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    level: Mapped[str] = mapped_column(sa.String(10))
    name: Mapped[str] = mapped_column(sa.String(200))
    parent_code: Mapped[str | None] = mapped_column(sa.String(10))
    population: Mapped[int | None]
    sex: Mapped[dict[str, Any]] = mapped_column(JSONB)
    age: Mapped[dict[str, Any]] = mapped_column(JSONB)
    households: Mapped[int | None]
    boundary: Mapped[list[Any] | None] = mapped_column(JSONB)  # polygons of (lon, lat) rings

    __table_args__ = (sa.Index("areas_by_municipality", "municipality_code", "year", "level"),)


class AreaImport(Base):
    """The content digest of each imported year, so importing the same files again is a no-op."""

    __tablename__ = "area_imports"

    municipality_code: Mapped[str] = mapped_column(sa.String(6), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    digest: Mapped[str] = mapped_column(sa.String(64))
    imported_at: Mapped[datetime] = mapped_column(TS)


class Resident(Base):
    """A participant of the panel: a resident, or a business (``ondernemer``) or organisation
    (``organisatie``: a school, an association, a housing corporation, a care institution).
    A business or organisation is one participant however many people sign in for it (its
    ``Contact`` rows): it answers a poll once, and its id is what every other service knows."""

    __tablename__ = "residents"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    kind: Mapped[str] = mapped_column(sa.String(12), default="resident", server_default="resident")
    kvk_number: Mapped[str | None] = mapped_column(sa.String(8))  # businesses and organisations
    organisation_name: Mapped[str | None] = mapped_column(sa.String(200))
    buurt_code: Mapped[str] = mapped_column(sa.String(10))
    wijk_code: Mapped[str] = mapped_column(sa.String(8))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    email_verified_at: Mapped[datetime | None] = mapped_column(TS)
    birth_year: Mapped[int | None]
    sex: Mapped[str | None] = mapped_column(sa.String(10))
    language: Mapped[str] = mapped_column(sa.String(2))
    consent_version: Mapped[str] = mapped_column(sa.String(40))
    consent_at: Mapped[datetime] = mapped_column(TS)
    self_selected: Mapped[bool]
    joined_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)

    __table_args__ = (
        sa.Index("residents_by_area", "municipality_code", "wijk_code"),
        sa.Index(
            "residents_email",
            "municipality_code",
            "email",
            unique=True,
            postgresql_where=sa.text("email IS NOT NULL"),
        ),
        # One participant per KvK number and municipality: a second contact joins the first's
        # organisation (a contact code), so the organisation still answers once.
        sa.Index(
            "residents_kvk",
            "municipality_code",
            "kvk_number",
            unique=True,
            postgresql_where=sa.text("kvk_number IS NOT NULL"),
        ),
    )


class Contact(Base):
    """A person who signs in for a business or organisation (its first contact joined it; others
    joined with a contact code). A session is the organisation's (its tokens' subject is the
    organisation's id) and names its contact (``RefreshToken.contact_id``, the tokens' ``cid``
    claim): a contact can leave alone, taking its sessions, devices and e-mail address with
    it, while the organisation stays with its other contacts; the last contact to leave takes
    the organisation out of the panel."""

    __tablename__ = "contacts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    resident_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str | None] = mapped_column(sa.String(320))
    created_at: Mapped[datetime] = mapped_column(TS)


class PanelChange(Base):
    """Joins and departures per wijk and month: attrition without anyone's id."""

    __tablename__ = "panel_changes"

    municipality_code: Mapped[str] = mapped_column(sa.String(6), primary_key=True)
    wijk_code: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    month: Mapped[date] = mapped_column(primary_key=True)
    joined: Mapped[int] = mapped_column(default=0)
    left: Mapped[int] = mapped_column(default=0)


class InvitationBatch(Base):
    __tablename__ = "invitation_batches"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    created_by: Mapped[str | None] = mapped_column(sa.String(320))
    created_at: Mapped[datetime] = mapped_column(TS)
    size: Mapped[int]
    kind: Mapped[str] = mapped_column(sa.String(12), default="resident", server_default="resident")


class InvitationCode(Base):
    """Single-use codes for recruitment letters. Only a hash is kept: the codes themselves
    exist in the CSV handed out once, at generation, for the mail merge.

    ``kind`` is who the letter is for (a resident, a business, an organisation). A contact
    code (``resident_id`` set, no batch) adds a contact to that business or organisation
    instead of a new participant; it expires (``expires_at``)."""

    __tablename__ = "invitation_codes"

    code_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    batch_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("invitation_batches.id"))
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    wijk_code: Mapped[str] = mapped_column(sa.String(8))
    used_at: Mapped[datetime | None] = mapped_column(TS)
    kind: Mapped[str] = mapped_column(sa.String(12), default="resident", server_default="resident")
    resident_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("residents.id", ondelete="CASCADE")
    )
    expires_at: Mapped[datetime | None] = mapped_column(TS)


class EmailVerification(Base):
    """Open sign-up: a code e-mailed to the address, valid for a short time, few attempts."""

    __tablename__ = "email_verifications"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    email: Mapped[str] = mapped_column(sa.String(320))
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    purpose: Mapped[str] = mapped_column(sa.String(10))  # signup | change (e-mail of a member)
    resident_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("residents.id", ondelete="CASCADE")
    )
    attempts: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime] = mapped_column(TS)
    used_at: Mapped[datetime | None] = mapped_column(TS)


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    resident_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("residents.id", ondelete="CASCADE"), index=True
    )
    # The contact of a business or organisation whose session this is (None for a resident,
    # and for a session from before contacts were told apart that could not be matched): its
    # access tokens say so (``cid``), so one contact can leave and its devices are known.
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime] = mapped_column(TS)
    used_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS)


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    municipality_code: Mapped[str | None] = mapped_column(sa.String(6))  # None: platform admin
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(10))  # invited | active | disabled
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    invite_hash: Mapped[str | None] = mapped_column(sa.String(64))
    invite_expires_at: Mapped[datetime | None] = mapped_column(TS)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column(TS)
    created_at: Mapped[datetime] = mapped_column(TS)
    last_login_at: Mapped[datetime | None] = mapped_column(TS)


class StaffRefreshToken(Base):
    """Staff sessions: refresh tokens with rotation and reuse detection, as residents have.
    ``family_id`` is the session id (``sid``) of every access token the family issues."""

    __tablename__ = "staff_refresh_tokens"

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    staff_id: Mapped[uuid.UUID] = mapped_column(
        sa.ForeignKey("staff.id", ondelete="CASCADE"), index=True
    )
    issued_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime] = mapped_column(TS)
    used_at: Mapped[datetime | None] = mapped_column(TS)
    revoked_at: Mapped[datetime | None] = mapped_column(TS)


class RevokedSession(Base):
    """Sessions ended before their access tokens expire (a disabled or demoted staff member,
    a resident who left, a reused refresh token). Every gateway process holds the list in
    memory and refuses their tokens; a row is kept until no access token of the session can
    still be valid (``expires_at``). Session ids only: no resident id is kept here."""

    __tablename__ = "revoked_sessions"

    session_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(10))  # resident | staff
    reason: Mapped[str] = mapped_column(sa.String(20))
    revoked_at: Mapped[datetime] = mapped_column(TS)
    expires_at: Mapped[datetime] = mapped_column(TS, index=True)


target_metadata = [Base.metadata, outbox.metadata]


class Region(Base):
    """A municipality's own region: a named set of its buurten (issue 13). Changing it writes
    a new ``RegionVersion``; a poll keeps the version it was published with."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(sa.String(10), primary_key=True)  # RG + 4 digits + seq
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    version: Mapped[int]  # the current version
    archived_at: Mapped[datetime | None] = mapped_column(TS)
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)

    __table_args__ = (sa.Index("regions_by_municipality", "municipality_code"),)


class RegionVersion(Base):
    __tablename__ = "region_versions"

    code: Mapped[str] = mapped_column(
        sa.String(10), sa.ForeignKey("regions.code", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    buurt_codes: Mapped[list[str]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str | None] = mapped_column(sa.String(320))


class PaperRun(Base):
    """A print run of paper questionnaires: ``size`` forms of one poll for one buurt, each with
    its own paper code (``paper_codes``)."""

    __tablename__ = "paper_runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    poll_id: Mapped[uuid.UUID]
    wijk_code: Mapped[str] = mapped_column(sa.String(8))
    buurt_code: Mapped[str] = mapped_column(sa.String(10))
    size: Mapped[int]
    created_by: Mapped[str | None] = mapped_column(sa.String(320))
    created_at: Mapped[datetime] = mapped_column(TS)

    __table_args__ = (sa.Index("paper_runs_by_poll", "municipality_code", "poll_id"),)


class PaperCode(Base):
    """The code printed on one paper form. Kept in clear (unlike letter codes): it lets nobody
    join or sign in — only staff allowed to key in forms can use it, for this one poll, once —
    and a run must be printable again when the printer jams. ``keyed_at``: when a returned form
    was keyed in (at most once), by whom (``keyed_by``, the staff member's e-mail), and the
    receipt id of its submission, so staff can see it recorded."""

    __tablename__ = "paper_codes"

    code: Mapped[str] = mapped_column(sa.String(14), primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("paper_runs.id", ondelete="CASCADE"))
    position: Mapped[int]
    keyed_at: Mapped[datetime | None] = mapped_column(TS)
    keyed_by: Mapped[str | None] = mapped_column(sa.String(320))
    receipt_id: Mapped[uuid.UUID | None]  # the keyed-in answer's submission (responses)

    __table_args__ = (sa.Index("paper_codes_by_run", "run_id", "position"),)
