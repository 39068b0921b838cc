"""responses: the intake of submissions and the results.

Work queue in: ``responses.intake`` (from the gateway; consumed in batches by ``intake``).
Events in: poll_published / poll_closed (which polls accept answers), invitations_sent
(response rates), areas_imported (CBS margins for weighting), resident_left (nothing to do:
responses holds no resident id — listed so the catalogue's promise is visible).
Events out: response_recorded.
RPC (gateway): receipt; results and results_json (cached per poll until what they are
computed from changes: results_cache).
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from kombu import Queue
from nameko.rpc import rpc
from prometheus_client import Counter, Histogram
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from services.common.batching import BatchConsumer
from services.common.consumers import event_handler
from services.common.db import Database, make_engine, run_in_transaction
from services.common.errors import EXPECTED, InvalidInput, NotFound
from services.common.logs import LoggingContext
from services.common.metrics import Metrics
from services.common.outbox import Outbox, add_events, claim_event
from services.responses import intake, results, suppression
from services.responses.intake import bump_results_version
from services.responses.models import AreaMargins, Invited, Poll, Receipt
from services.responses.results_cache import Cached

log = logging.getLogger(__name__)
INTAKE_QUEUE = "responses.intake"
RECORDED = Counter("buurtpeil_responses_total", "Submissions by outcome.", ["outcome"])
AGGREGATION_LAG = Histogram(
    "buurtpeil_aggregation_lag_seconds",
    "From submission at the gateway to counted.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


def intake_queue() -> Queue:
    return Queue(
        INTAKE_QUEUE,
        exchange="",
        routing_key=INTAKE_QUEUE,
        durable=True,
        auto_delete=False,
        queue_arguments={"x-queue-type": "quorum"},
    )


def now() -> datetime:
    return datetime.now(UTC)


def recorder(config: dict[str, Any]) -> Any:
    """The batch handler: record, count and answer receipts in one transaction."""
    sessions = sessionmaker(
        make_engine(config["DATABASE_URL"], pool_size=2), expire_on_commit=False
    )
    secret = str(config["RESPONDENT_KEY_SECRET"]).encode()

    def record(bodies: list[dict[str, Any]]) -> None:
        outcomes = run_in_transaction(
            sessions,
            lambda s: intake.record_batch(
                s, bodies, secret=secret, emit_many=add_events, today=now
            ),
        )
        counted = now()
        for outcome in outcomes:
            RECORDED.labels(outcome.reason or outcome.status).inc()
            if outcome.status == "recorded":
                AGGREGATION_LAG.observe(max(0.0, (counted - outcome.submitted_at).total_seconds()))

    return record


class ResponsesService:
    name = "responses"

    db = Database()
    emit = Outbox()
    intake = BatchConsumer(intake_queue(), recorder, intake.malformed)
    metrics = Metrics()
    log_context = LoggingContext()
    results_cache = Cached()

    @event_handler("polls", "poll_published")
    def on_poll_published(self, event: Any) -> None:
        p = event.payload

        def apply(s: Session) -> None:
            if not claim_event(s, event, "responses.poll_published"):
                return
            values = {
                "municipality_code": p["municipality_code"],
                "version": p["version"],
                "definition": p["definition"],
                "audience": p["audience"],
                "opens_at": datetime.fromisoformat(p["opens_at"]),
                "closes_at": (datetime.fromisoformat(p["closes_at"]) if p["closes_at"] else None),
            }
            s.execute(
                insert(Poll)
                .values(id=uuid.UUID(p["poll_id"]), closed_at=None, **values)
                .on_conflict_do_update(
                    index_elements=["id"],
                    set_={**values, "results_version": Poll.results_version + 1},
                )
            )

        self.db.run(apply)

    @event_handler("polls", "poll_closed")
    def on_poll_closed(self, event: Any) -> None:
        def apply(s: Session) -> None:
            if claim_event(s, event, "responses.poll_closed"):
                s.execute(
                    sa.update(Poll)
                    .where(Poll.id == uuid.UUID(event.payload["poll_id"]))
                    .values(closed_at=datetime.fromisoformat(event.payload["closed_at"]))
                )

        self.db.run(apply)

    @event_handler("notify", "invitations_sent")
    def on_invitations_sent(self, event: Any) -> None:
        p = event.payload

        def apply(s: Session) -> None:
            if not claim_event(s, event, "responses.invitations_sent") or not p["per_area"]:
                return
            stmt = insert(Invited).values(
                [
                    {
                        "poll_id": uuid.UUID(p["poll_id"]),
                        "area_code": a["area_code"],
                        "n": a["invited"],
                    }
                    for a in p["per_area"]
                ]
            )
            s.execute(
                stmt.on_conflict_do_update(
                    index_elements=["poll_id", "area_code"], set_={"n": stmt.excluded.n}
                )
            )
            bump_results_version(s, [uuid.UUID(p["poll_id"])])

        self.db.run(apply)

    @event_handler("panel", "areas_imported")
    def on_areas_imported(self, event: Any) -> None:
        p = event.payload

        def apply(s: Session) -> None:
            if not claim_event(s, event, "responses.areas_imported"):
                return
            rows = [
                {
                    "municipality_code": p["municipality_code"],
                    "year": p["year"],
                    "code": a["code"],
                    "level": a["level"],
                    "name": a["name"],
                    "parent_code": a.get("parent_code"),
                    "population": a.get("population"),
                    "sex": a.get("sex") or {},
                    "age": a.get("age") or {},
                }
                for a in p["areas"]
            ]
            stmt = insert(AreaMargins).values(rows)
            s.execute(
                stmt.on_conflict_do_update(
                    index_elements=["municipality_code", "year", "code"],
                    set_={
                        c: stmt.excluded[c]
                        for c in ("level", "name", "parent_code", "population", "sex", "age")
                    },
                )
            )
            bump_results_version(
                s,
                s.scalars(
                    sa.select(Poll.id).where(Poll.municipality_code == p["municipality_code"])
                ),
            )

        self.db.run(apply)

    @rpc(expected_exceptions=EXPECTED)
    def receipt(self, receipt_id: str) -> dict[str, Any]:
        """recorded or rejected (with the reason); NotFound while still on its way."""

        def read(s: Session) -> dict[str, Any]:
            try:
                found = s.get(Receipt, uuid.UUID(str(receipt_id)))
            except ValueError:
                found = None
            if found is None:
                raise NotFound("no such receipt (yet)")
            return {
                "receipt_id": str(found.id),
                "poll_id": str(found.poll_id),
                "status": found.status,
                "reason": found.reason,
                "updated_at": found.updated_at.isoformat(),
            }

        return self.db.run(read)

    @rpc(expected_exceptions=EXPECTED)
    def results(self, municipality_code: str, poll_id: str, k: int) -> dict[str, Any]:
        """Results from the counters; ``k`` is the municipality's minimum cell size (never
        below 5, refused otherwise)."""
        return self.db.run(
            lambda s: self.results_cache.get_or_compute(
                s, **self._results_of(s, municipality_code, poll_id, k)
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def results_json(self, municipality_code: str, poll_id: str, k: int) -> str:
        """``results`` as JSON text, for the gateway to pass on as it is (no decode and
        re-encode of a document that is ~1 MB at a million responses)."""
        return self.db.run(
            lambda s: self.results_cache.get_or_compute_json(
                s, **self._results_of(s, municipality_code, poll_id, k)
            )
        )

    @staticmethod
    def _results_of(s: Session, municipality_code: str, poll_id: str, k: int) -> dict[str, Any]:
        try:
            suppression.check_k(k)
        except ValueError as exc:
            raise InvalidInput(
                str(exc), [{"field": "k", "code": "below_floor", "message": str(exc)}]
            ) from None
        return {
            "poll_id": poll_id,
            "municipality_code": municipality_code,
            "k": k,
            "compute": lambda: results.compute(
                s, poll_id=poll_id, municipality_code=municipality_code, k=k
            ),
        }
