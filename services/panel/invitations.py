"""Invitation codes for recruitment letters.

A municipality draws addresses from its own records (BRP) and sends letters; Buurtpeil only
supplies the codes, spread over the wijken in proportion to their population (or as many per
wijk as staff ask). Codes are 12 characters of Crockford base32 (60 bits), grouped for reading
aloud, and single use. Only their SHA-256 is stored: the CSV made at generation is the one
copy of the codes themselves.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from services.common.errors import Conflict, InvalidInput, invalid
from services.panel.area_store import current_year
from services.panel.models import Area, InvitationBatch, InvitationCode, Resident

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
CODE_LENGTH = 12  # 60 bits
MAX_BATCH = 100_000
CONTACT_CODE_TTL = timedelta(days=14)


def new_code() -> str:
    # 60 random bits, 5 per character: one call to the CSPRNG per code rather than twelve
    # (a batch of 100,000 codes must be made within the gateway's RPC time limit).
    bits = secrets.randbits(5 * CODE_LENGTH)
    raw = "".join(ALPHABET[(bits >> (5 * i)) & 31] for i in range(CODE_LENGTH))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def normalise_code(code: str) -> str:
    """What residents type: any case, spaces or dashes, O for 0 and I/L for 1."""
    cleaned = "".join(ch for ch in str(code).upper() if ch.isalnum())
    cleaned = cleaned.translate(str.maketrans("OIL", "011"))
    return f"{cleaned[:4]}-{cleaned[4:8]}-{cleaned[8:]}"


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def allocate(total: int, populations: dict[str, int]) -> dict[str, int]:
    """Split ``total`` over wijken in proportion to population (largest remainder)."""
    whole = sum(populations.values())
    if whole <= 0:
        raise invalid("total", "no_population", "the wijken have no population figures")
    shares = {w: total * p / whole for w, p in populations.items()}
    counts = {w: int(s) for w, s in shares.items()}
    rest = total - sum(counts.values())
    for w in sorted(shares, key=lambda w: shares[w] - counts[w], reverse=True)[:rest]:
        counts[w] += 1
    return counts


def create_batch(
    session: Session,
    *,
    municipality_code: str,
    now: datetime,
    total: int | None = None,
    per_wijk: dict[str, int] | None = None,
    created_by: str | None = None,
    kind: str = "resident",
) -> dict[str, Any]:
    """Codes for recruitment letters to participants of ``kind``: residents (addresses from
    the BRP), businesses or organisations (addresses from the municipality's own records)."""
    year = current_year(session, municipality_code)
    wijken = dict(
        session.execute(
            sa.select(Area.code, Area.population).where(
                Area.municipality_code == municipality_code, Area.year == year, Area.level == "wijk"
            )
        ).all()
    )
    if per_wijk:
        unknown = sorted(set(per_wijk) - set(wijken))
        if unknown:
            raise InvalidInput(
                "unknown wijken",
                [
                    {
                        "field": f"per_wijk.{w}",
                        "code": "unknown_area",
                        "message": f"{w} is not a wijk of {municipality_code}",
                    }
                    for w in unknown
                ],
            )
        counts = {w: n for w, n in per_wijk.items() if n > 0}
    elif total:
        counts = allocate(total, {w: p or 0 for w, p in wijken.items()})
    else:
        raise invalid("total", "required", "give a total or a number per wijk")
    size = sum(counts.values())
    if not 0 < size <= MAX_BATCH:
        raise invalid("total", "out_of_range", f"a batch holds 1 to {MAX_BATCH} codes")

    batch = InvitationBatch(
        id=uuid.uuid4(),
        municipality_code=municipality_code,
        created_by=created_by,
        created_at=now,
        size=size,
        kind=kind,
    )
    session.add(batch)
    session.flush()
    hashes: list[str] = []
    per_code_wijk: list[str] = []
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["code", "wijk_code", "batch_id"])
    for wijk, n in sorted(counts.items()):
        for _ in range(n):
            code = new_code()
            # A new code is in normal form already: code_hash without normalising.
            hashes.append(hashlib.sha256(code.encode()).hexdigest())
            per_code_wijk.append(wijk)
            writer.writerow([code, wijk, str(batch.id)])
    # One statement over two arrays rather than rows of parameters: a batch of 100,000 codes
    # within the gateway's RPC time limit (COPY is not available under psycogreen).
    session.execute(
        sa.text(
            "INSERT INTO invitation_codes (code_hash, batch_id, municipality_code, wijk_code, kind)"
            " SELECT h, :batch, :municipality, w, :kind"
            " FROM unnest(CAST(:hashes AS text[]), CAST(:wijken AS text[])) AS t(h, w)"
        ),
        {
            "batch": batch.id,
            "municipality": municipality_code,
            "kind": kind,
            "hashes": hashes,
            "wijken": per_code_wijk,
        },
    )
    return {
        "batch_id": str(batch.id),
        "kind": kind,
        "size": size,
        "per_wijk": counts,
        "csv": out.getvalue(),
    }


def list_batches(session: Session, *, municipality_code: str) -> list[dict[str, Any]]:
    used = sa.func.count(InvitationCode.used_at)
    rows = session.execute(
        sa.select(InvitationBatch, used)
        .join(InvitationCode, InvitationCode.batch_id == InvitationBatch.id)
        .where(InvitationBatch.municipality_code == municipality_code)
        .group_by(InvitationBatch.id)
        .order_by(InvitationBatch.created_at.desc())
    ).all()
    return [
        {
            "batch_id": str(b.id),
            "kind": b.kind,
            "size": b.size,
            "used": n,
            "created_by": b.created_by,
            "created_at": b.created_at.isoformat(),
        }
        for b, n in rows
    ]


def redeem(session: Session, *, code: str, now: datetime) -> InvitationCode:
    """Mark a code used (row-locked, so two joins with one code cannot both succeed)."""
    found = session.scalars(
        sa.select(InvitationCode)
        .where(InvitationCode.code_hash == code_hash(code))
        .with_for_update()
    ).first()
    if found is None:
        raise InvalidInput(
            "this invitation code is not valid",
            [{"field": "invitation_code", "code": "invalid", "message": "unknown code"}],
        )
    if found.expires_at is not None and found.expires_at <= now:
        raise InvalidInput(
            "this contact code has expired",
            [{"field": "invitation_code", "code": "expired", "message": "ask for a new code"}],
        )
    if found.used_at is not None:
        raise InvalidInput(
            "this invitation code was used already",
            [{"field": "invitation_code", "code": "used", "message": "the code was used already"}],
        )
    found.used_at = now
    return found


def contact_code(session: Session, *, resident_id: str, now: datetime) -> dict[str, Any]:
    """A single-use code for another contact of a business or organisation: whoever joins
    with it signs in for that participant (no new participant, no second answer)."""
    participant = session.get(Resident, uuid.UUID(str(resident_id)))
    if participant is None or participant.kind == "resident":
        raise Conflict("only a business or organisation has contacts")
    code = new_code()
    session.add(
        InvitationCode(
            code_hash=code_hash(code),
            batch_id=None,
            municipality_code=participant.municipality_code,
            wijk_code=participant.wijk_code,
            kind=participant.kind,
            resident_id=participant.id,
            expires_at=now + CONTACT_CODE_TTL,
        )
    )
    return {
        "code": code,
        "expires_at": (now + CONTACT_CODE_TTL).isoformat(),
        "organisation_name": participant.organisation_name,
    }
