"""Residents in the panel: joining (invitation code, or open sign-up verified by e-mail),
profile, moving, leaving (erasure), and the panel's composition against the CBS population.

A participant has a kind (``PARTICIPANT_KINDS``): a resident, a business (``ondernemer``) or an
organisation (``organisatie``). A business or organisation names its KvK number (8 digits,
format only: no outside register is asked), its name and the buurt where it is; it is one
participant (one row, one id, one answer per poll) with one or more contacts: the person who
joined for it, and whoever joins with a contact code one of them asked for.

Other services learn of residents only through events, and only the pseudonymous profile
(buurt, wijk, age band, sex, language): never the birth year, and the e-mail only once verified
(notify's e-mail channel needs it).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from services.common.errors import Conflict, NotFound, invalid
from services.common.events import AGE_BANDS
from services.common.intake import PARTICIPANT_KINDS
from services.common.outbox import forget_email, forget_resident
from services.common.suppression import DEFAULT_K, Asked, Hierarchy, Row, Table, suppress_poll
from services.panel import accounts, invitations
from services.panel.area_store import current_year, get_area, locate
from services.panel.models import (
    Area,
    Contact,
    EmailVerification,
    InvitationCode,
    PanelChange,
    RefreshToken,
    Resident,
)
from services.panel.tenants import get_municipality

CONSENT_VERSION = "2026-11"  # the privacy statement version residents agree to
VERIFY_TTL = timedelta(minutes=30)
VERIFY_ATTEMPTS = 5
SEX_VALUES = {
    "man": "man",
    "vrouw": "vrouw",
    "anders": "anders",
    "zeg_ik_liever_niet": "onbekend",
    None: None,
}


ORGANISATION_KINDS = tuple(k for k in PARTICIPANT_KINDS if k != "resident")
_KVK = re.compile(r"^[0-9]{8}$")


def check_kvk(value: Any) -> str:
    """A KvK number as the Chamber of Commerce writes it: exactly 8 digits (spaces around it
    are forgiven). Format only: whether the number is registered is not checked."""
    text = str(value or "").strip()
    if not text:
        raise invalid("kvk_number", "required", "a business or organisation gives its KvK number")
    if not _KVK.match(text):
        raise invalid("kvk_number", "invalid_kvk", "a KvK number has exactly 8 digits")
    return text


def organisation_fields(kind: str, profile: dict[str, Any]) -> dict[str, Any]:
    """What a participant of ``kind`` stores beside the buurt: for a business or organisation
    its KvK number and name (both required), for a resident nothing of the sort (a KvK number
    given with a resident's code is refused: the wrong code or the wrong choice)."""
    if kind not in PARTICIPANT_KINDS:
        raise invalid("kind", "unknown_kind", f"choose one of {', '.join(PARTICIPANT_KINDS)}")
    if kind == "resident":
        if str(profile.get("kvk_number") or "").strip():
            raise invalid(
                "kvk_number",
                "not_an_organisation",
                "a resident gives no KvK number: join as a business or organisation",
            )
        return {"kvk_number": None, "organisation_name": None}
    name = " ".join(str(profile.get("organisation_name") or "").split())
    if len(name) < 2:
        raise invalid(
            "organisation_name", "required", "give the name of the business or organisation"
        )
    return {"kvk_number": check_kvk(profile.get("kvk_number")), "organisation_name": name}


def age_band(birth_year: int | None, today: date) -> str | None:
    if birth_year is None:
        return None
    age = today.year - birth_year  # the age reached this year; a year's precision is enough
    for band, upper in zip(AGE_BANDS, (14, 24, 44, 64, 10**3), strict=True):
        if age <= upper:
            return band
    return None  # pragma: no cover


def resident_payload(r: Resident, now: datetime) -> dict[str, Any]:
    return {
        "resident_id": str(r.id),
        "kind": r.kind or "resident",
        "municipality_code": r.municipality_code,
        "buurt_code": r.buurt_code,
        "wijk_code": r.wijk_code,
        "age_band": age_band(r.birth_year, now.date()),
        "sex": SEX_VALUES.get(r.sex, r.sex),
        "language": r.language,
        "self_selected": r.self_selected,
        "consent": True,
        "email": r.email if r.email_verified_at else None,
    }


def access_claims(r: Resident, now: datetime) -> dict[str, Any]:
    """What a resident's access token says of them (and the gateway's personal links): the
    municipality, area, language and the stratum results are weighted by (never the birth
    year itself)."""
    payload = resident_payload(r, now)
    return {
        "mun": r.municipality_code,
        "buurt": r.buurt_code,
        "wijk": r.wijk_code,
        "lang": r.language,
        **{k: payload[k] for k in ("age_band", "sex", "self_selected", "kind")},
    }


def serialize_resident(r: Resident, now: datetime) -> dict[str, Any]:
    return {
        **resident_payload(r, now),
        "birth_year": r.birth_year,
        "sex": r.sex,
        "email": r.email,
        "email_verified": r.email_verified_at is not None,
        "consent_version": r.consent_version,
        "consent_at": r.consent_at.isoformat(),
        "joined_at": r.joined_at.isoformat(),
        "kvk_number": r.kvk_number,
        "organisation_name": r.organisation_name,
    }


def resolve_buurt(session: Session, municipality_code: str, profile: dict[str, Any]) -> Area:
    """The buurt by code, or by location (the resident confirmed the suggestion)."""
    if profile.get("buurt_code"):
        try:
            area = get_area(
                session, municipality_code=municipality_code, code=profile["buurt_code"]
            )
        except NotFound:
            raise invalid(
                "buurt_code", "unknown_area", "not a buurt of this municipality"
            ) from None
        if area.level != "buurt":
            raise invalid("buurt_code", "not_a_buurt", "choose a buurt, not a wijk")
        return area
    if profile.get("location"):
        found = locate(
            session,
            municipality_code=municipality_code,
            lat=profile["location"]["lat"],
            lon=profile["location"]["lon"],
        )
        if found is None:
            raise invalid("location", "outside_area", "this location is not in the municipality")
        return get_area(session, municipality_code=municipality_code, code=found["buurt_code"])
    raise invalid("buurt_code", "required", "give a buurt_code or a location")


def _count_change(session: Session, r: Resident, now: datetime, column: str) -> None:
    month = now.date().replace(day=1)
    stmt = insert(PanelChange).values(
        municipality_code=r.municipality_code, wijk_code=r.wijk_code, month=month, joined=0, left=0
    )
    stmt = stmt.values(**{column: 1}).on_conflict_do_update(
        index_elements=["municipality_code", "wijk_code", "month"],
        set_={column: getattr(PanelChange, column) + 1},
    )
    session.execute(stmt)


def _new_resident(
    session: Session,
    *,
    municipality_code: str,
    profile: dict[str, Any],
    now: datetime,
    self_selected: bool,
    email: str | None = None,
    wijk_code: str | None = None,
    kind: str = "resident",
    emit: Any,
) -> tuple[Resident, uuid.UUID | None]:
    if not profile.get("consent"):
        raise invalid("consent", "required", "joining needs consent to the privacy statement")
    organisation = organisation_fields(kind, profile)
    if organisation["kvk_number"] and session.scalar(
        sa.select(Resident.id).where(
            Resident.municipality_code == municipality_code,
            Resident.kvk_number == organisation["kvk_number"],
        )
    ):
        raise Conflict(
            "an organisation with this KvK number is in the panel already: ask its contact "
            "for a contact code to sign in for it",
            [{"field": "kvk_number", "code": "taken", "message": "in the panel already"}],
        )
    buurt = resolve_buurt(session, municipality_code, profile)
    if wijk_code is not None and buurt.parent_code != wijk_code:
        # The letter went to an address in this wijk (codes are allocated per wijk): a code
        # cannot be used to join somewhere else.
        raise invalid(
            "buurt_code" if profile.get("buurt_code") else "location",
            "outside_invited_wijk",
            f"this invitation code is for wijk {wijk_code}: choose a buurt in that wijk",
        )
    resident = Resident(
        id=uuid.uuid4(),
        municipality_code=municipality_code,
        buurt_code=buurt.code,
        wijk_code=buurt.parent_code,
        email=email,
        email_verified_at=now if email else None,
        # A business or organisation has no age or sex: it is never weighted to CBS margins.
        birth_year=profile.get("birth_year") if kind == "resident" else None,
        sex=profile.get("sex") if kind == "resident" else None,
        kind=kind,
        **organisation,
        language=profile.get("language", "nl"),
        consent_version=profile.get("consent_version", CONSENT_VERSION),
        consent_at=now,
        self_selected=self_selected,
        joined_at=now,
        updated_at=now,
    )
    session.add(resident)
    session.flush()
    contact_id: uuid.UUID | None = None
    if kind != "resident":
        contact_id = uuid.uuid4()  # the session about to begin is this contact's
        session.add(Contact(id=contact_id, resident_id=resident.id, email=email, created_at=now))
    _count_change(session, resident, now, "joined")
    emit(
        session,
        "resident_joined",
        {**resident_payload(resident, now), "joined_at": now.isoformat()},
    )
    return resident, contact_id


def join_with_code(
    session: Session, *, code: str, profile: dict[str, Any], now: datetime, emit: Any
) -> tuple[Resident, uuid.UUID | None]:
    """Join with a letter's code (a new participant of the code's kind), or with a contact
    code (sign in for the business or organisation that asked for it: no new participant).
    Returns the participant and, for a business or organisation, the contact who joined
    (whose session begins now)."""
    used = invitations.redeem(session, code=code, now=now)
    chosen = profile.get("kind")
    if chosen and chosen != used.kind:
        raise invalid(
            "kind",
            "code_for_other_kind",
            f"this invitation code is for a participant of kind {used.kind}",
        )
    if used.resident_id is not None:
        return _add_contact(session, used=used, profile=profile, now=now)
    return _new_resident(
        session,
        municipality_code=used.municipality_code,
        profile=profile,
        now=now,
        self_selected=False,
        wijk_code=used.wijk_code,
        kind=used.kind,
        emit=emit,
    )


def _add_contact(
    session: Session, *, used: InvitationCode, profile: dict[str, Any], now: datetime
) -> tuple[Resident, uuid.UUID]:
    if not profile.get("consent"):
        raise invalid("consent", "required", "joining needs consent to the privacy statement")
    assert used.resident_id is not None  # a contact code names its organisation
    organisation = get_resident(session, str(used.resident_id), lock=True)
    contact = Contact(
        id=uuid.uuid4(), resident_id=organisation.id, email=profile.get("email"), created_at=now
    )
    session.add(contact)
    session.flush()
    return organisation, contact.id


def contacts_of(
    session: Session, *, resident_id: str, contact_id: str | None = None
) -> list[dict[str, Any]]:
    """The contacts of a business or organisation; ``me`` marks the caller's own (the
    ``cid`` of its token)."""
    participant = get_resident(session, resident_id)
    rows = session.scalars(
        sa.select(Contact)
        .where(Contact.resident_id == participant.id)
        .order_by(Contact.created_at, Contact.id)
    ).all()
    return [
        {
            "contact_id": str(c.id),
            "email": c.email,
            "created_at": c.created_at.isoformat(),
            "me": contact_id is not None and str(c.id) == str(contact_id),
        }
        for c in rows
    ]


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


class CountedRefusal(Exception):  # noqa: N818 - a carrier, not an error of its own
    """A refusal whose bookkeeping (a wrong attempt counted) must be committed before the
    caller gets ``error``: see ``commit_then_refuse`` in the service."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def start_signup(session: Session, *, municipality_code: str, email: str, now: datetime) -> str:
    """Store a 6-digit code for the address and return it for the e-mail (never to the app)."""
    get_municipality(session, municipality_code)
    code = f"{secrets.randbelow(10**6):06d}"
    session.add(
        EmailVerification(
            municipality_code=municipality_code,
            email=email.lower(),
            code_hash=_hash_code(code),
            purpose="signup",
            expires_at=now + VERIFY_TTL,
        )
    )
    return code


def finish_signup(
    session: Session,
    *,
    municipality_code: str,
    email: str,
    code: str,
    profile: dict[str, Any],
    now: datetime,
    emit: Any,
) -> tuple[Resident, uuid.UUID | None]:
    email = email.lower()
    pending = session.scalars(
        sa.select(EmailVerification)
        .where(
            EmailVerification.municipality_code == municipality_code,
            EmailVerification.email == email,
            EmailVerification.purpose == "signup",
            EmailVerification.used_at.is_(None),
            EmailVerification.expires_at > now,
        )
        .order_by(EmailVerification.expires_at.desc())
        .with_for_update()
    ).first()
    if pending is None or pending.attempts >= VERIFY_ATTEMPTS:
        raise invalid("code", "expired", "request a new code")
    if not secrets.compare_digest(pending.code_hash, _hash_code(code)):
        pending.attempts += 1
        # Committed although refused: otherwise the count rolls back and the code can be
        # guessed without limit.
        raise CountedRefusal(invalid("code", "wrong_code", "this code is not right"))
    pending.used_at = now
    exists = session.scalar(
        sa.select(Resident.id).where(
            Resident.municipality_code == municipality_code, Resident.email == email
        )
    )
    if exists:
        raise Conflict("this e-mail address is in the panel already")
    return _new_resident(
        session,
        municipality_code=municipality_code,
        profile=profile,
        now=now,
        self_selected=True,
        email=email,
        kind=profile.get("kind") or "resident",
        emit=emit,
    )


def get_resident(session: Session, resident_id: str, *, lock: bool = False) -> Resident:
    try:
        rid = uuid.UUID(str(resident_id))
    except ValueError:
        raise NotFound("no such resident") from None
    query = sa.select(Resident).where(Resident.id == rid)
    resident = session.scalars(query.with_for_update() if lock else query).first()
    if resident is None:
        raise NotFound("no such resident")
    return resident


def update_resident(
    session: Session, *, resident_id: str, changes: dict[str, Any], now: datetime, emit: Any
) -> Resident:
    resident = get_resident(session, resident_id, lock=True)
    if "buurt_code" in changes or "location" in changes:
        buurt = resolve_buurt(session, resident.municipality_code, changes)
        if buurt.code != resident.buurt_code:
            # The area import refuses a buurt without its wijk (parent_code), see areas.py.
            assert buurt.parent_code is not None
            _count_change(session, resident, now, "left")
            resident.buurt_code, resident.wijk_code = buurt.code, buurt.parent_code
            _count_change(session, resident, now, "joined")
    for key in ("birth_year", "sex", "language"):
        if key in ("birth_year", "sex") and resident.kind != "resident":
            continue  # a business or organisation has no age or sex
        if key in changes:
            setattr(resident, key, changes[key])
    resident.updated_at = now
    session.flush()
    emit(
        session,
        "resident_updated",
        {**resident_payload(resident, now), "updated_at": now.isoformat()},
    )
    return resident


def leave(
    session: Session,
    *,
    resident_id: str,
    now: datetime,
    emit: Any,
    contact_id: str | None = None,
) -> bool:
    """Leave the panel, from the session of ``resident_id`` (and ``contact_id``, the ``cid``
    of a contact's token). True when the participant left; False when only the contact did.

    A resident, and the last contact of a business or organisation, take the participant out
    (``erase``). A contact whose organisation has other contacts leaves alone
    (``contact_leaves``): the organisation, its answers and its other contacts stay. A
    contact's session that names no contact (it began before sessions named them and could
    not be matched) cannot leave alone, and must not take its colleagues out: refused (409).
    """
    resident = get_resident(session, resident_id, lock=True)
    if resident.kind != "resident":
        contacts = session.scalars(
            sa.select(Contact).where(Contact.resident_id == resident.id).with_for_update()
        ).all()
        if contact_id is not None:
            mine = [c for c in contacts if str(c.id) == str(contact_id)]
            if not mine:
                raise NotFound("no such contact: you have left already")
            if len(contacts) > 1:
                contact_leaves(session, resident=resident, contact=mine[0], now=now, emit=emit)
                return False
        elif len(contacts) > 1:
            raise Conflict(
                "this session does not say which contact you are (it began before contacts "
                "were told apart), so it cannot leave without taking your colleagues out: ask "
                "a colleague for a contact code, join with it, and leave from that session",
                [{"field": "contact", "code": "contact_unknown", "message": "no contact"}],
            )
    accounts.revoke_resident_sessions(session, resident_id=str(resident.id), now=now, emit=emit)
    erase(session, resident=resident, now=now, emit=emit)
    return True


def contact_leaves(
    session: Session, *, resident: Resident, contact: Contact, now: datetime, emit: Any
) -> None:
    """One contact of a business or organisation leaves; the organisation stays with its other
    contacts. The contact's sessions end (its access tokens refused everywhere), its row and
    with it its e-mail address are deleted, and ``contact_left`` tells notify to remove the
    devices this contact registered. Where the organisation's own address is this contact's
    (it joined by e-mail), that goes too: the organisation keeps no e-mail address until a
    remaining contact gives one, and ``resident_updated`` says so (no outbox row keeps it)."""
    accounts.revoke_contact_sessions(
        session, resident_id=str(resident.id), contact_id=str(contact.id), now=now, emit=emit
    )
    address = contact.email
    session.delete(contact)
    if address and resident.email and resident.email.lower() == address.lower():
        forget_email(session, str(resident.id), resident.email)
        session.execute(
            sa.delete(EmailVerification).where(
                EmailVerification.municipality_code == resident.municipality_code,
                EmailVerification.email == resident.email,
            )
        )
        resident.email, resident.email_verified_at = None, None
        resident.updated_at = now
        emit(
            session,
            "resident_updated",
            {**resident_payload(resident, now), "updated_at": now.isoformat()},
        )
    emit(
        session,
        "contact_left",
        {
            "resident_id": str(resident.id),
            "contact_id": str(contact.id),
            "municipality_code": resident.municipality_code,
            "left_at": now.isoformat(),
        },
    )
    session.flush()


def erase(session: Session, *, resident: Resident, now: datetime, emit: Any) -> None:
    """Erase the resident: personal data, tokens and verifications go in this transaction.

    ``resident_left`` tells every other service to drop what it holds; responses keep only
    pseudonymous aggregates. The outbox keeps no copy either: the resident's earlier
    ``resident_joined``/``resident_updated`` rows (profile, e-mail) are deleted here — an unsent
    one never leaves — and ``resident_left``'s own row is deleted once published.
    """
    _count_change(session, resident, now, "left")
    session.execute(sa.delete(RefreshToken).where(RefreshToken.resident_id == resident.id))
    session.execute(
        sa.delete(EmailVerification).where(
            sa.or_(
                EmailVerification.resident_id == resident.id,
                sa.and_(
                    EmailVerification.municipality_code == resident.municipality_code,
                    EmailVerification.email == resident.email,
                ),
            )
        )
    )
    forget_resident(session, str(resident.id))
    emit(
        session,
        "resident_left",
        {
            "resident_id": str(resident.id),
            "municipality_code": resident.municipality_code,
            "left_at": now.isoformat(),
        },
    )
    session.delete(resident)
    session.flush()


def composition(session: Session, *, municipality_code: str, now: datetime) -> dict[str, Any]:
    """Members per wijk, age band and sex against the CBS population, and attrition by month;
    and every kind of participant per gemeente, wijk and buurt (``by_kind``).

    ``gap`` is the members' share minus the population's share, in percentage points; negative
    means under-represented. Children (0–14) cannot join, so wijk and age shares compare with
    the population aged 15 and over. CBS publishes sex and age as separate margins (not
    crossed), so we compare margins, and the sex margin includes children. The CBS comparisons
    are of residents only (CBS counts persons); businesses and organisations are counted in
    ``by_kind`` beside them.
    """
    year = current_year(session, municipality_code)
    areas = session.scalars(
        sa.select(Area).where(
            Area.municipality_code == municipality_code,
            Area.year == year,
            Area.level.in_(("wijk", "buurt")),
        )
    ).all()
    wijken = [a for a in areas if a.level == "wijk"]
    buurten = [a for a in areas if a.level == "buurt"]
    everyone = session.execute(
        sa.select(
            Resident.wijk_code,
            Resident.buurt_code,
            Resident.birth_year,
            Resident.sex,
            Resident.self_selected,
            Resident.kind,
        ).where(Resident.municipality_code == municipality_code)
    ).all()
    members = [m for m in everyone if (m.kind or "resident") == "resident"]
    total = len(members)

    def gap(count: int, pop: int | None, pop_whole: int) -> float | None:
        if not total or not pop_whole or pop is None:
            return None
        return round(100 * count / total - 100 * pop / pop_whole, 1)

    adults = {w.code: _adults(w) for w in wijken}
    adults_whole = sum(a or 0 for a in adults.values())
    per_wijk = []
    for w in wijken:
        mine = [m for m in members if m.wijk_code == w.code]
        per_wijk.append(
            {
                "wijk_code": w.code,
                "name": w.name,
                "members": len(mine),
                "self_selected": sum(1 for m in mine if m.self_selected),
                "population_15_plus": adults[w.code],
                "gap": gap(len(mine), adults[w.code], adults_whole),
            }
        )
    age_pop = _sum_margins(wijken, "age")
    age_pop.pop("0_14", None)
    bands = [age_band(m.birth_year, now.date()) for m in members]
    per_age = [
        {
            "age_band": b,
            "members": bands.count(b),
            "population": age_pop.get(b),
            "gap": gap(bands.count(b), age_pop.get(b), sum(age_pop.values())),
        }
        for b in AGE_BANDS[1:]
    ]
    sex_pop = _sum_margins(wijken, "sex")
    sexes = [m.sex for m in members]
    per_sex = [
        {
            "sex": s,
            "members": sexes.count(s),
            "population": sex_pop.get(s),
            "gap": gap(sexes.count(s), sex_pop.get(s), sum(sex_pop.values())),
        }
        for s in ("man", "vrouw")
    ]
    changes = session.execute(
        sa.select(PanelChange.month, sa.func.sum(PanelChange.joined), sa.func.sum(PanelChange.left))
        .where(PanelChange.municipality_code == municipality_code)
        .group_by(PanelChange.month)
        .order_by(PanelChange.month)
    ).all()
    municipality = get_municipality(session, municipality_code)
    k = int((municipality.settings or {}).get("min_cell_size", DEFAULT_K))
    return {
        "municipality_code": municipality_code,
        "year": year,
        "k": k,
        "by_wijk": composition_by_wijk(
            municipality_code,
            wijken,
            [(m.wijk_code, age_band(m.birth_year, now.date()), m.sex) for m in members],
            k,
        ),
        "by_kind": composition_by_kind(
            municipality_code,
            wijken,
            buurten,
            [(m.wijk_code, m.buurt_code, m.kind or "resident") for m in everyone],
            k,
        ),
        "members": total,
        "unknown_age": bands.count(None),
        "unknown_sex": sum(1 for s in sexes if s not in ("man", "vrouw")),
        "wijken": per_wijk,
        "age_bands": per_age,
        "sexes": per_sex,
        "attrition": [
            {"month": m.isoformat()[:7], "joined": j, "left": gone} for m, j, gone in changes
        ],
    }


def composition_by_kind(
    municipality_code: str,
    wijken: Sequence[Area],
    buurten: Sequence[Area],
    members: list[tuple[str | None, str | None, str]],
    k: int,
) -> list[dict[str, Any]]:
    """Per area (the gemeente, each wijk, each buurt, in that order): the participants of each
    kind. A buurt with two shops must not show them: the counts go through the suppression
    (docs/suppression.md) as one table of the gemeente → wijk → buurt tree; a count of 1 to
    k-1, and any figure from which one could be worked out, is None (``hidden``).

    Participants in no current wijk or buurt count in their parents only: pseudo-areas that are
    never shown but are part of the sums (the suppression is told)."""
    wijk_codes = {w.code for w in wijken}
    buurt_parent = {b.code: b.parent_code for b in buurten if b.parent_code in wijk_codes}
    parent: dict[str, str | None] = {municipality_code: None}
    parent.update({w: municipality_code for w in sorted(wijk_codes)})
    parent.update({b: buurt_parent[b] for b in sorted(buurt_parent)})
    rows: dict[str, dict[str, int]] = {code: {} for code in parent}
    for wijk, buurt, kind in members:
        kind = kind if kind in PARTICIPANT_KINDS else "resident"
        chain = [municipality_code]
        if wijk in wijk_codes:
            chain.append(wijk)
            if buurt in buurt_parent and buurt_parent[buurt] == wijk:
                chain.append(buurt)
            else:
                chain.append(f"?{wijk}")  # a buurt of another year: part of its wijk only
                parent.setdefault(f"?{wijk}", wijk)
        else:
            chain.append("?")
            parent.setdefault("?", municipality_code)
        for area in chain:
            counts = rows.setdefault(area, {})
            counts[kind] = counts.get(kind, 0) + 1
    unshown = [code for code in rows if code.startswith("?")]
    table = Table(
        "*",
        True,
        PARTICIPANT_KINDS,
        {code: Row(sum(r.values()), r) for code, r in rows.items()},
    )
    shown = suppress_poll(
        [],
        Hierarchy(parent),
        k,
        respondents=table,
        hidden=[("*", code, None) for code in unshown],
    )
    assert shown.respondents is not None  # given a respondents table, it is returned
    result = shown.respondents.rows
    names = {a.code: a for a in [*wijken, *buurten]}
    out = []
    for code in [municipality_code, *sorted(wijk_codes), *sorted(buurt_parent)]:
        shown_row = result[code]
        out.append(
            {
                "code": code,
                "level": names[code].level if code in names else "gemeente",
                "name": names[code].name if code in names else None,
                "parent_code": parent[code],
                "members": shown_row.total,
                "hidden": shown_row.total is None,
                "kinds": [
                    {
                        "kind": kind,
                        "members": shown_row.counts.get(kind),
                        "hidden": shown_row.counts.get(kind) is None,
                    }
                    for kind in PARTICIPANT_KINDS
                ],
            }
        )
    return out


# Per wijk the members by age band and by sex: small groups of real people, so they go through
# the one suppression mechanism (docs/suppression.md) like every figure of a poll's results.
COMPOSITION_AGE = (*AGE_BANDS[1:], "unknown")
COMPOSITION_SEX = ("man", "vrouw", "other")


def composition_by_wijk(
    municipality_code: str,
    wijken: Sequence[Area],
    members: list[tuple[str | None, str | None, str | None]],
    k: int,
) -> list[dict[str, Any]]:
    """Per area (the gemeente first, then each wijk): members by age band and by sex, each with
    the CBS share of the population (aged 15 and over for the age bands) beside the members'
    share and the gap in percentage points. A count of 1 to k-1, and any figure from which
    one could be worked out, is None (``hidden``); so is a share computed from it.

    Members without a wijk of this year's areas count in the gemeente only (a difference, so
    the suppression is told: they are an unpublished part of the gemeente's row)."""
    codes = sorted(w.code for w in wijken)
    age_rows: dict[str, dict[str, int]] = {c: {} for c in [municipality_code, *codes]}
    sex_rows: dict[str, dict[str, int]] = {c: {} for c in [municipality_code, *codes]}
    for wijk, band, sex in members:
        band = band if band in COMPOSITION_AGE else "unknown"
        sex = sex if sex in ("man", "vrouw") else "other"
        for area in (municipality_code, wijk):
            if area in age_rows:
                age_rows[area][band] = age_rows[area].get(band, 0) + 1
                sex_rows[area][sex] = sex_rows[area].get(sex, 0) + 1
    outside = {
        o: age_rows[municipality_code].get(o, 0) - sum(age_rows[c].get(o, 0) for c in codes)
        for o in COMPOSITION_AGE
    }
    parent = {municipality_code: None, **{c: municipality_code for c in codes}}
    if any(outside.values()):
        # Members in no current wijk: a pseudo-wijk that is never shown but is part of the sum.
        parent["?"] = municipality_code
        age_rows["?"] = {o: n for o, n in outside.items() if n}
        sex_rows["?"] = {
            o: sex_rows[municipality_code].get(o, 0) - sum(sex_rows[c].get(o, 0) for c in codes)
            for o in COMPOSITION_SEX
        }
    totals = {c: sum(r.values()) for c, r in age_rows.items()}
    tables = [
        Table("age", True, COMPOSITION_AGE, {c: Row(totals[c], r) for c, r in age_rows.items()}),
        Table("sex", True, COMPOSITION_SEX, {c: Row(totals[c], r) for c, r in sex_rows.items()}),
    ]
    hidden_unshown = [("*", "?", None)] if "?" in parent else []
    shown = suppress_poll(
        tables,
        Hierarchy(parent),
        k,
        respondents=totals,
        asked={"age": Asked(), "sex": Asked()},
        hidden=hidden_unshown,
    )
    age_table, sex_table = shown.tables
    areas = {w.code: w for w in wijken}
    adults_whole = sum(a for a in (_adults(w) for w in wijken) if a is not None)

    def population(code: str, key: str) -> dict[str, int]:
        chosen = [areas[code]] if code in areas else wijken
        found = _sum_margins(chosen, key)
        found.pop("0_14", None)
        return found

    out = []
    for code in [municipality_code, *codes]:
        row_age, row_sex = age_table.rows[code], sex_table.rows[code]
        total = row_age.total
        groups = []
        for kind, row, options in (
            ("age_band", row_age, COMPOSITION_AGE),
            ("sex", row_sex, COMPOSITION_SEX),
        ):
            pop = population(code, "age" if kind == "age_band" else "sex")
            pop_total = sum(pop.values())
            for option in options:
                count = row.counts.get(option)
                share = round(100 * count / total, 1) if count is not None and total else None
                cbs = (
                    round(100 * pop[option] / pop_total, 1) if option in pop and pop_total else None
                )
                groups.append(
                    {
                        "kind": kind,
                        "group": option,
                        "members": count,
                        "hidden": count is None,
                        "share": share,
                        "cbs_share": cbs,
                        "gap": round(share - cbs, 1)
                        if share is not None and cbs is not None
                        else None,
                    }
                )
        adults = _adults(areas[code]) if code in areas else adults_whole
        out.append(
            {
                "code": code,
                "level": "wijk" if code in areas else "gemeente",
                "name": areas[code].name if code in areas else None,
                "members": total,
                "hidden": total is None,
                "population_15_plus": adults,
                "groups": groups,
            }
        )
    return out


def _adults(area: Area) -> int | None:
    children = (area.age or {}).get("0_14")
    if area.population is None or children is None:
        return None
    return area.population - children


def _sum_margins(areas: Sequence[Area], key: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for area in areas:
        for k, v in (getattr(area, key) or {}).items():
            if v is not None:
                totals[k] = totals.get(k, 0) + v
    return totals
