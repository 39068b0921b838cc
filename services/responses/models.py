"""responses' tables: the polls it accepts answers for (a projection of poll_published), the
pseudonymous responses, receipts, and the counters that results are read from.

Nothing here holds a resident id: a response is keyed by HMAC(secret, poll id ‖ resident id),
with the secret kept in configuration, not in this database.
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


class Poll(Base):
    __tablename__ = "polls"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    municipality_code: Mapped[str] = mapped_column(sa.String(6))
    version: Mapped[int]
    definition: Mapped[dict[str, Any]] = mapped_column(JSONB)
    audience: Mapped[dict[str, Any]] = mapped_column(JSONB)
    opens_at: Mapped[datetime] = mapped_column(TS)
    closes_at: Mapped[datetime | None] = mapped_column(TS)
    closed_at: Mapped[datetime | None] = mapped_column(TS)
    # Bumped in the same transaction as every change results are computed from (counters,
    # open answers, invitations, margins, the definition): the key of the results cache.
    results_version: Mapped[int] = mapped_column(sa.BigInteger, server_default="0")
    # The minimum cell size of this poll's results, frozen at its first released version: a
    # municipality changing k later must not change what a published poll shows.
    k: Mapped[int | None]
    # A series (issue 13): the earlier wave this poll follows, as poll_published said.
    previous_poll_id: Mapped[uuid.UUID | None]
    wave: Mapped[int] = mapped_column(server_default="1")


class Response(Base):
    __tablename__ = "responses"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    poll_id: Mapped[uuid.UUID]
    respondent_key: Mapped[str] = mapped_column(sa.String(64))
    wijk_code: Mapped[str] = mapped_column(sa.String(8))
    buurt_code: Mapped[str] = mapped_column(sa.String(10))
    age_band: Mapped[str | None] = mapped_column(sa.String(8))
    sex: Mapped[str | None] = mapped_column(sa.String(10))
    self_selected: Mapped[bool]
    recently_moved: Mapped[bool] = mapped_column(server_default="false")
    # Who answered (resident, ondernemer, organisatie) and how (app, link, paper): issue 14.
    kind: Mapped[str] = mapped_column(sa.String(12), server_default="resident")
    channel: Mapped[str] = mapped_column(sa.String(8), server_default="app")
    answers: Mapped[dict[str, Any]] = mapped_column(JSONB)
    recorded_on: Mapped[date]  # a day, not a time: timestamps help re-identify

    __table_args__ = (
        sa.UniqueConstraint("poll_id", "respondent_key", name="responses_one_per_resident"),
        sa.Index("responses_by_poll_area", "poll_id", "buurt_code"),
    )


class Receipt(Base):
    """What a resident can ask about their submission; it names no response and no resident."""

    __tablename__ = "receipts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    poll_id: Mapped[uuid.UUID]
    status: Mapped[str] = mapped_column(sa.String(10))  # recorded | rejected
    reason: Mapped[str | None] = mapped_column(sa.String(30))
    updated_at: Mapped[datetime] = mapped_column(TS)


class Count(Base):
    """How many respondents in an area and stratum gave an option (or value) to a question."""

    __tablename__ = "counts"

    poll_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    question_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    option: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    area_code: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    age_band: Mapped[str] = mapped_column(sa.String(8), primary_key=True)  # "?" when unknown
    sex: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    self_selected: Mapped[bool] = mapped_column(primary_key=True)
    recently_moved: Mapped[bool] = mapped_column(primary_key=True, server_default="false")
    kind: Mapped[str] = mapped_column(sa.String(12), primary_key=True, server_default="resident")
    channel: Mapped[str] = mapped_column(sa.String(8), primary_key=True, server_default="app")
    n: Mapped[int]


class Respondents(Base):
    """Respondents per area and stratum, and per question answered (question "*" = all)."""

    __tablename__ = "respondents"

    poll_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    question_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    area_code: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    age_band: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    sex: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    self_selected: Mapped[bool] = mapped_column(primary_key=True)
    recently_moved: Mapped[bool] = mapped_column(primary_key=True, server_default="false")
    kind: Mapped[str] = mapped_column(sa.String(12), primary_key=True, server_default="resident")
    channel: Mapped[str] = mapped_column(sa.String(8), primary_key=True, server_default="app")
    n: Mapped[int]


class OpenText(Base):
    """Open answers, per buurt, with no time and no link to the response."""

    __tablename__ = "open_texts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    poll_id: Mapped[uuid.UUID]
    question_id: Mapped[str] = mapped_column(sa.String(40))
    wijk_code: Mapped[str] = mapped_column(sa.String(8))
    buurt_code: Mapped[str] = mapped_column(sa.String(10))
    # The kind of participant: residents' answers are shown beside residents' figures, a
    # business's beside the businesses' (results per kind, issue 14).
    kind: Mapped[str] = mapped_column(sa.String(12), server_default="resident")
    text: Mapped[str] = mapped_column(sa.Text)

    __table_args__ = (sa.Index("open_texts_by_poll", "poll_id", "question_id"),)


class Invited(Base):
    """Invitations per buurt (from notify's invitations_sent), for response rates."""

    __tablename__ = "invited"

    poll_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    area_code: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    n: Mapped[int]


class Municipality(Base):
    """What responses knows of a municipality, from panel's municipality_changed: the minimum
    cell size its results are suppressed with, and its name (for exports)."""

    __tablename__ = "municipalities"

    code: Mapped[str] = mapped_column(sa.String(6), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    min_cell_size: Mapped[int]
    changed_at: Mapped[datetime] = mapped_column(TS)


class AreaMargins(Base):
    """CBS population margins (from panel's areas_imported), for weighting."""

    __tablename__ = "area_margins"

    municipality_code: Mapped[str] = mapped_column(sa.String(6), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(10), primary_key=True)
    level: Mapped[str] = mapped_column(sa.String(10))
    name: Mapped[str] = mapped_column(sa.String(200))
    parent_code: Mapped[str | None] = mapped_column(sa.String(10))
    population: Mapped[int | None]
    sex: Mapped[dict[str, Any]] = mapped_column(JSONB)
    age: Mapped[dict[str, Any]] = mapped_column(JSONB)


class ResultRelease(Base):
    """The last released results document of a poll, and what the next release must respect
    (docs/suppression.md, "Results over time"): the suppression input it was computed from
    (``tables``: per table, area → total and counts) and the published cells it hid."""

    __tablename__ = "result_releases"

    poll_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    seq: Mapped[int]  # 1 for the first release of the poll
    k: Mapped[int]
    final: Mapped[bool]  # released after the poll closed: no later version
    results_version: Mapped[int] = mapped_column(sa.BigInteger)
    released_at: Mapped[datetime] = mapped_column(TS)
    tables: Mapped[dict[str, Any]] = mapped_column(JSONB)
    hidden: Mapped[list[Any]] = mapped_column(JSONB)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)


target_metadata = [Base.metadata, outbox.metadata]
