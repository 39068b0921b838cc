"""responses: the intake of submissions and the results.

Work queue in: ``responses.intake`` (from the gateway; consumed in batches by ``intake``).
Events in: poll_published / poll_closed (which polls accept answers), invitations_sent
(response rates), areas_imported (CBS margins for weighting), municipality_changed (each
municipality's minimum cell size and name: a results read needs nothing from panel),
resident_left (responses holds no resident id; only a ``response_recorded`` not yet published
names one: it is deleted).
Events out: response_recorded.
RPC (gateway): receipt; results and results_json (cached per poll until what they are
computed from changes: results_cache); results_export (the same as a CSV or XLSX file);
trend (a series' waves compared); safety_overview and safety_overview_export (per area the
latest figures of the safety polls, from their released results: overview.py).
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from eventlet import tpool
from prometheus_client import Counter, Histogram
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from services.common import suppression
from services.common.batching import BatchConsumer
from services.common.clock import Clock
from services.common.consumers import idempotent_handler
from services.common.db import Database, limit_statements, make_engine, run_in_transaction
from services.common.environment import DevelopmentDefaults
from services.common.errors import EXPECTED, BeingComputed, InvalidInput
from services.common.events import DomainEvent
from services.common.intake import intake_queue
from services.common.logs import LoggingContext
from services.common.metrics import Metrics
from services.common.outbox import Outbox, add_events, forget_resident
from services.common.rpc import ServiceRpc, rpc
from services.common.settings import settings_of
from services.responses import (
    exports,
    intake,
    municipalities,
    overview,
    projection,
    results,
    trends,
)
from services.responses.results_cache import Cached
from services.responses.settings import ResponsesSettings

log = logging.getLogger(__name__)


RECORDED = Counter("buurtpeil_responses_total", "Submissions by outcome.", ["outcome"])
AGGREGATION_LAG = Histogram(
    "buurtpeil_aggregation_lag_seconds",
    "From submission at the gateway to counted.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


def recorder(container: Any, now: Callable[[], datetime]) -> Any:
    """The batch handler: record, count and answer receipts in one transaction; returns the
    positions of submissions to try again later (their poll is not known here yet). ``now``:
    the service's clock."""
    settings = settings_of(container, ResponsesSettings.load)
    sessions = sessionmaker(make_engine(settings.database_url, pool_size=2), expire_on_commit=False)
    secret = settings.respondent_key_secret.reveal().encode()

    def record_within_limit(s: Session, bodies: list[dict[str, Any]]) -> list[Any]:
        # The batch's time limit: every statement of its transaction (PostgreSQL 15 has no
        # limit per transaction; a batch is a handful of statements). Past it the loop splits
        # the batch.
        limit_statements(s, settings.intake_batch_time_limit)
        return intake.record_batch(s, bodies, secret=secret, emit_many=add_events, today=now)

    def record(bodies: list[dict[str, Any]]) -> list[int]:
        outcomes = run_in_transaction(sessions, lambda s: record_within_limit(s, bodies))
        counted = now()
        for outcome in outcomes:
            RECORDED.labels(outcome.reason or outcome.status).inc()
            if outcome.status == "recorded":
                AGGREGATION_LAG.observe(max(0.0, (counted - outcome.submitted_at).total_seconds()))
        deferred = {o.receipt_id for o in outcomes if o.status == "deferred"}
        return [i for i, body in enumerate(bodies) if body["receipt_id"] in deferred]

    return record


class ResponsesService:
    name = "responses"

    db = Database()
    emit = Outbox()
    # Submissions hold a resident id and answers: their dead letters expire.
    intake = BatchConsumer(intake_queue(), recorder, intake.malformed, personal=True)
    metrics = Metrics()
    log_context = LoggingContext()
    development_defaults = DevelopmentDefaults()  # refused at start outside development
    results_cache = Cached()
    clock = Clock()
    # Only for a municipality not announced yet; longer than the gateway's RPC_TIMEOUT.
    remote = ServiceRpc(timeout_key="DEPENDENCY_TIMEOUT", default_timeout=15)

    @idempotent_handler("polls", "poll_published")
    def on_poll_published(self, s: Session, event: DomainEvent) -> None:
        projection.store_poll(s, event.payload)

    @idempotent_handler("polls", "poll_closed")
    def on_poll_closed(self, s: Session, event: DomainEvent) -> None:
        projection.close_poll(s, event.payload)  # raises while the poll is not known yet

    @idempotent_handler("notify", "invitations_sent")
    def on_invitations_sent(self, s: Session, event: DomainEvent) -> None:
        projection.record_invited(s, event.payload)

    @idempotent_handler("panel", "resident_left")
    def on_resident_left(self, s: Session, event: DomainEvent) -> None:
        forget_resident(s, event.payload["resident_id"])

    @idempotent_handler("panel", "municipality_changed")
    def on_municipality_changed(self, s: Session, event: DomainEvent) -> None:
        municipalities.apply_changed(s, event.payload)

    @idempotent_handler("panel", "areas_imported")
    def on_areas_imported(self, s: Session, event: DomainEvent) -> None:
        projection.store_margins(s, event.payload)

    @rpc(expected_exceptions=EXPECTED)
    def receipt(self, receipt_id: str) -> dict[str, Any]:
        """recorded or rejected (with the reason); NotFound while still on its way."""
        return self.db.run(lambda s: projection.get_receipt(s, receipt_id))

    @rpc(expected_exceptions=EXPECTED)
    def results(
        self, municipality_code: str, poll_id: str, k: int | None = None, respondents: str = "all"
    ) -> dict[str, Any]:
        """The poll's released results (``results.release``): ``k`` is the minimum cell size
        (never below 5, refused otherwise), by default the municipality's as panel announced it
        (``municipalities``), frozen per poll at its first release; ``respondents``: ``all`` or
        ``panel`` (invited members who did not move). NotFound for a poll that has not opened
        (responses knows a poll from when it opens) or is another municipality's."""
        return self._released(municipality_code, poll_id, k, respondents, as_json=False)

    @rpc(expected_exceptions=EXPECTED)
    def results_json(
        self, municipality_code: str, poll_id: str, k: int | None = None, respondents: str = "all"
    ) -> str:
        """``results`` as JSON text, for the gateway to pass on as it is (no decode and
        re-encode of a document that is ~1 MB at a million responses)."""
        return self._released(municipality_code, poll_id, k, respondents, as_json=True)

    @rpc(expected_exceptions=EXPECTED)
    def results_export(
        self,
        municipality_code: str,
        poll_id: str,
        respondents: str = "all",
        fmt: str = "csv",
        k: int | None = None,
    ) -> dict[str, Any]:
        """``results`` as a CSV or XLSX file (``exports.py``: the same suppressed figures,
        nothing more), rendered here where the results live. ``body`` is the file, base64
        (replies are JSON); ``generated_at`` is when, for the file's name."""
        if fmt not in exports.FORMATS:
            message = f"format must be one of {', '.join(exports.FORMATS)}"
            raise InvalidInput(
                message, [{"field": "format", "code": "invalid_choice", "message": message}]
            )
        found = self._released(municipality_code, poll_id, k, respondents, as_json=False)
        _, municipality_name = self.db.run(
            lambda s: municipalities.k_and_name(s, municipality_code, self._ask_panel)
        )
        definition = self.db.run(
            lambda s: (
                results.load_poll(
                    s, municipality_code=municipality_code, poll_id=poll_id
                ).definition
            )
        )
        generated = self.clock()
        body = self.offload(
            exports.render,
            found,
            definition,
            fmt=fmt,
            municipality=municipality_name,
            generated_at=generated,
        )
        return {
            "poll_id": found["poll_id"],
            "generated_at": generated.isoformat(),
            "body": base64.b64encode(body).decode("ascii"),
        }

    @rpc(expected_exceptions=EXPECTED)
    def trend(
        self, municipality_code: str, waves: list[dict[str, Any]], respondents: str = "all"
    ) -> dict[str, Any]:
        """The change between the waves of a series (``trends.compare``, docs/methods.md):
        ``waves`` — ``{poll_id, wave}`` of each wave that opened, oldest first, as polls knows
        the series — each compared on its released document, read like ``results``."""
        compared = []
        documents = self._released_all(
            municipality_code, [w["poll_id"] for w in waves], respondents
        )
        for wave in waves:
            document = documents[wave["poll_id"]]
            definition = self.db.run(
                lambda s, pid=wave["poll_id"]: (
                    results.load_poll(
                        s, municipality_code=municipality_code, poll_id=pid
                    ).definition
                )
            )
            compared.append({**wave, "definition": definition, "document": document})
        return trends.compare(compared)

    @rpc(expected_exceptions=EXPECTED)
    def safety_overview(self, municipality_code: str, respondents: str = "all") -> dict[str, Any]:
        """Per area the latest figures of the tracked questions of the safety polls, with a
        trend arrow where the change from the previous wave is significant (``overview``),
        each poll read on its released document like ``results``. Open measures per area
        are feedback's: the gateway adds them (``open_measures``)."""
        _check_results_input(suppression.MIN_K, respondents)
        polls = self.db.run(lambda s: projection.overview_polls(s, municipality_code))
        known = {str(p.id): p for p in polls}
        documents = self._released_all(municipality_code, list(known), respondents)

        entries = []
        for poll in polls:
            poll_id = str(poll.id)
            previous = known.get(str(poll.previous_poll_id)) if poll.previous_poll_id else None
            waves = [
                {
                    "poll_id": str(p.id),
                    "wave": p.wave,
                    "definition": p.definition,
                    "document": documents[str(p.id)],
                }
                for p in ([previous] if previous else []) + [poll]
            ]
            entries.append(
                {
                    "poll_id": poll_id,
                    "wave": poll.wave,
                    "title": poll.definition.get("title"),
                    "theme": poll.definition.get("theme"),
                    "opens_at": poll.opens_at,
                    "closed_at": poll.closed_at,
                    "definition": poll.definition,
                    "document": documents[poll_id],
                    "trend": trends.compare(waves),
                }
            )
        names = {
            code: region["name"] for p in polls for code, region in results.regions_of(p).items()
        }
        return overview.build(municipality_code, entries, names)

    @rpc(expected_exceptions=EXPECTED)
    def safety_overview_export(
        self,
        municipality_code: str,
        open_measures: dict[str, int],
        respondents: str = "all",
        fmt: str = "csv",
    ) -> dict[str, Any]:
        """``safety_overview`` as a CSV or XLSX file (``overview.render``), with the open
        measures per area the gateway got from feedback; ``body`` base64 like
        ``results_export``."""
        if fmt not in exports.FORMATS:
            message = f"format must be one of {', '.join(exports.FORMATS)}"
            raise InvalidInput(
                message, [{"field": "format", "code": "invalid_choice", "message": message}]
            )
        found = self.safety_overview(municipality_code, respondents)
        for area in found["areas"]:
            area["open_measures"] = int(open_measures.get(area["code"], 0))
        _, municipality_name = self.db.run(
            lambda s: municipalities.k_and_name(s, municipality_code, self._ask_panel)
        )
        generated = self.clock()
        body = self.offload(
            overview.render, found, fmt=fmt, municipality=municipality_name, generated_at=generated
        )
        return {
            "municipality_code": municipality_code,
            "generated_at": generated.isoformat(),
            "body": base64.b64encode(body).decode("ascii"),
        }

    def _released_all(
        self, municipality_code: str, poll_ids: list[str], view: str
    ) -> dict[str, dict[str, Any]]:
        """Each poll's released document (``_released``), for a read of several polls: their
        first releases are started side by side in the background, then waited for together
        for one ``RESULTS_WAIT`` in all — not one per poll, which for a few polls would pass
        the gateway's RPC timeout with nothing said. Still computing then: BeingComputed (503
        with Retry-After), and the next read finds them."""
        documents: dict[str, dict[str, Any]] = {}
        pending = []
        for poll_id in dict.fromkeys(poll_ids):
            try:
                documents[poll_id] = self._released(
                    municipality_code, poll_id, None, view, as_json=False, wait=0
                )
            except BeingComputed:
                pending.append(poll_id)
        deadline = time.monotonic() + (self.results_cache.wait or 0)
        for poll_id in pending:
            documents[poll_id] = self._released(
                municipality_code,
                poll_id,
                None,
                view,
                as_json=False,
                wait=max(0.0, deadline - time.monotonic()),
            )
        return documents

    def _ask_panel(self, municipality_code: str) -> tuple[str, int]:
        """A municipality not announced here yet (see ``municipalities``): panel is asked."""
        name = self.remote.call("panel", "get_branding", municipality_code)["name"]
        k = self.remote.call("panel", "get_settings", municipality_code)["min_cell_size"]
        return name, int(k)

    def _released(
        self,
        municipality_code: str,
        poll_id: str,
        k: int | None,
        view: str,
        *,
        as_json: bool,
        wait: float | None = None,
    ) -> Any:
        if k is None:
            k, _ = self.db.run(
                lambda s: municipalities.k_and_name(s, municipality_code, self._ask_panel)
            )
        _check_results_input(k, view)
        read = (
            self.results_cache.get_or_compute_json if as_json else self.results_cache.get_or_compute
        )
        where = {"poll_id": poll_id, "municipality_code": municipality_code}

        def work(s: Session) -> Any:
            results.begin_snapshot(s, read_only=False)
            return read(
                s,
                view=view,
                **where,
                compute=lambda: results.release(s, k=k, offload=self.offload, **where),
                refresh=lambda: self._with_release_retries(fresh),
                wait=wait,
            )

        def fresh(s: Session) -> tuple[int, dict[str, Any]]:
            """A background release (``results_cache``): the version and its documents."""
            results.begin_snapshot(s, read_only=False)
            version = results.load_poll(
                s, municipality_code=municipality_code, poll_id=poll_id
            ).results_version
            return version, results.release(s, k=k, offload=self.offload, **where)

        return self._with_release_retries(work)

    def _with_release_retries(self, work: Any) -> Any:
        for attempt in range(1, RELEASE_ATTEMPTS + 1):
            try:
                return self.db.run(work)
            except DBAPIError as exc:
                # Another worker released a version of this poll meanwhile: read it.
                if getattr(exc.orig, "pgcode", None) != SERIALIZATION_FAILURE:
                    raise
                if attempt == RELEASE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def offload(work: Any, *args: Any, **kwargs: Any) -> Any:
        """Computation (suppression, raking) in an OS thread: the process's green threads —
        readers served from the cache, the intake — go on meanwhile."""
        return tpool.execute(work, *args, **kwargs)


RELEASE_ATTEMPTS = 5
SERIALIZATION_FAILURE = "40001"


def _check_results_input(k: int, view: str) -> None:
    try:
        suppression.check_k(k)
    except ValueError as exc:
        raise InvalidInput(
            str(exc), [{"field": "k", "code": "below_floor", "message": str(exc)}]
        ) from None
    if view not in results.VIEWS:
        message = f"respondents must be one of {', '.join(results.VIEWS)}"
        raise InvalidInput(
            message, [{"field": "respondents", "code": "invalid_choice", "message": message}]
        )
