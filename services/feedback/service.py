"""feedback: closing the loop — terugkoppeling per poll, the measures it promises and their
progress, residents' reactions, and polls whose feedback is overdue.

RPC for staff (``municipality_code`` always from the verified staff token): list_feedback,
get_feedback, save_draft, publish, add_measure, update_measure, change_measure_status,
reactions, overdue, loop_figures. For residents (municipality, buurt and wijk from their token):
resident_feed, resident_detail, react. Public: public_timeline.
Events in: poll_published / poll_closed (the polls feedback can be written for),
resident_left (erase that resident's reactions).
Events out (through the outbox): feedback_published, measure_updated.
Timer: ``check_overdue`` (``OVERDUE_CHECK_INTERVAL`` seconds) — overdue gauge and loop figures
per municipality, and one reminder e-mail per overdue poll to its editors and admins.
Calls: panel.get_settings (k = ``min_cell_size``, ``feedback_due_days``), panel.list_staff,
responses.results (key figures).
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any

from nameko.extensions import DependencyProvider
from prometheus_client import Gauge
from sqlalchemy.orm import Session

from services.common.cache import StaleTolerantCache
from services.common.clock import Clock
from services.common.consumers import idempotent_handler
from services.common.db import Database
from services.common.environment import DevelopmentDefaults
from services.common.errors import EXPECTED
from services.common.events import DomainEvent
from services.common.logs import LoggingContext
from services.common.mail import Mail
from services.common.metrics import Metrics
from services.common.outbox import Outbox
from services.common.rpc import ServiceRpc, rpc
from services.common.settings import Settings, settings_of
from services.common.timers import timer
from services.common.validation import load
from services.feedback import feed, figures, keyfigures, lifecycle, measures, overdue, projection
from services.feedback import reactions as reacting
from services.feedback.schemas import (
    FeedbackDraftIn,
    MeasureIn,
    MeasureUpdate,
    ReactionIn,
    StatusChangeIn,
)
from services.feedback.settings import FeedbackSettings

log = logging.getLogger(__name__)

OVERDUE_POLLS = Gauge(
    "buurtpeil_feedback_overdue_polls",
    "Closed polls past the municipality's feedback_due_days without published feedback.",
    ["municipality"],
)
SHARE_PUBLISHED = Gauge(
    "buurtpeil_feedback_share_published",
    "Share (0-1) of closed polls with published feedback.",
    ["municipality"],
)
MEDIAN_DAYS = Gauge(
    "buurtpeil_feedback_median_days_to_publish",
    "Median days from a poll's close to its published feedback.",
    ["municipality"],
)
SHARE_USEFUL = Gauge(
    "buurtpeil_feedback_share_useful",
    "Share (0-1) of residents' reactions that found the feedback useful, as the released "
    "reaction versions show them.",
    ["municipality"],
)


class SettingsCache(DependencyProvider):
    """Municipal settings from panel, kept ``PANEL_CACHE_SECONDS`` per process; the last value
    is used while panel does not answer (no default: k and the due days must be the
    municipality's own)."""

    def setup(self) -> None:
        settings = settings_of(self.container, FeedbackSettings.load)
        self.cache = StaleTolerantCache(settings.panel_cache_seconds)

    def get_dependency(self, worker_ctx: Any) -> StaleTolerantCache:
        return self.cache


def gauge_value(value: float | None) -> float:
    return math.nan if value is None else float(value)


class FeedbackService:
    name = "feedback"

    db = Database()
    emit = Outbox()
    metrics = Metrics()
    log_context = LoggingContext()
    development_defaults = DevelopmentDefaults()  # refused at start outside development
    clock = Clock()
    mail = Mail()
    settings: Settings[FeedbackSettings] = Settings(FeedbackSettings.load)
    settings_cache = SettingsCache()
    # Calls to panel and responses. Longer than the gateway's own RPC_TIMEOUT by default, so a
    # hanging dependency is answered as 503 by the gateway; this only frees the worker.
    remote = ServiceRpc(timeout_key="DEPENDENCY_TIMEOUT", default_timeout=15)

    # --- calls to other services ----------------------------------------------------------

    def _settings(self, municipality_code: str) -> dict[str, Any]:
        return self.settings_cache.get(
            municipality_code,
            lambda: self.remote.call("panel", "get_settings", municipality_code),
        )

    def _k(self, municipality_code: str) -> int:
        return int(self._settings(municipality_code).get("min_cell_size", 10))

    def _due_days(self, municipality_code: str) -> int:
        return int(self._settings(municipality_code).get("feedback_due_days", 30))

    def _key_figures(
        self, municipality_code: str, poll_id: str, requests: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        if not requests:
            return []
        results = self.remote.call(
            "responses", "results", municipality_code, poll_id, self._k(municipality_code)
        )
        return keyfigures.snapshot(requests, results)

    def _secret(self) -> bytes:
        return self.settings.reaction_key_secret.reveal().encode()

    # --- events in ------------------------------------------------------------------------

    @idempotent_handler("polls", "poll_published")
    def on_poll_published(self, s: Session, event: DomainEvent) -> None:
        projection.apply_poll_published(s, event.payload)

    @idempotent_handler("polls", "poll_closed")
    def on_poll_closed(self, s: Session, event: DomainEvent) -> None:
        projection.apply_poll_closed(s, event.payload)

    @idempotent_handler("panel", "resident_left")
    def on_resident_left(self, s: Session, event: DomainEvent) -> None:
        reacting.erase_resident(s, resident_id=event.payload["resident_id"], secret=self._secret())

    # --- staff ----------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def list_feedback(self, municipality_code: str) -> list[dict[str, Any]]:
        due_days = self._due_days(municipality_code)
        now = self.clock()
        return self.db.run(
            lambda s: lifecycle.list_feedback(
                s, municipality_code=municipality_code, due_days=due_days, now=now
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def get_feedback(self, municipality_code: str, poll_id: str) -> dict[str, Any]:
        return self.db.run(
            lambda s: lifecycle.feedback_view(
                s,
                lifecycle.get_feedback(s, municipality_code=municipality_code, poll_id=poll_id),
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def save_draft(
        self, municipality_code: str, poll_id: str, data: dict[str, Any], actor: str | None = None
    ) -> dict[str, Any]:
        fields = load(FeedbackDraftIn(), data)
        requests = keyfigures.check_areas(fields["key_figures"], municipality_code)
        # Refuse early (no call to responses) what the transaction would refuse anyway.
        self.db.run(
            lambda s: lifecycle.check_can_save(
                s, municipality_code=municipality_code, poll_id=poll_id
            )
        )
        snapshot = self._key_figures(municipality_code, poll_id, requests)
        return self.db.run(
            lambda s: lifecycle.feedback_view(
                s,
                lifecycle.save_draft(
                    s,
                    municipality_code=municipality_code,
                    poll_id=poll_id,
                    fields=fields,
                    requests=requests,
                    key_figures=snapshot,
                    actor=actor,
                    now=self.clock(),
                ),
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def publish(
        self, municipality_code: str, poll_id: str, actor: str | None = None
    ) -> dict[str, Any]:
        draft = self.db.run(
            lambda s: lifecycle.check_can_publish(
                s, municipality_code=municipality_code, poll_id=poll_id
            )
        )
        snapshot = None
        if draft.status == "draft" and draft.key_figure_requests:
            # The figures as they stand at publication, then frozen.
            snapshot = self._key_figures(municipality_code, poll_id, draft.key_figure_requests)
        return self.db.run(
            lambda s: lifecycle.feedback_view(
                s,
                lifecycle.publish(
                    s,
                    municipality_code=municipality_code,
                    poll_id=poll_id,
                    key_figures=snapshot,
                    actor=actor,
                    now=self.clock(),
                    emit=self.emit,
                ),
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def add_measure(
        self, municipality_code: str, poll_id: str, data: dict[str, Any], actor: str | None = None
    ) -> dict[str, Any]:
        fields = load(MeasureIn(), data)

        def add(s: Session) -> dict[str, Any]:
            m = measures.add_measure(
                s,
                municipality_code=municipality_code,
                poll_id=poll_id,
                fields=fields,
                actor=actor,
                now=self.clock(),
            )
            return lifecycle.measure_view(m, lifecycle.history_of(s, [m.id])[m.id])

        return self.db.run(add)

    @rpc(expected_exceptions=EXPECTED)
    def update_measure(
        self,
        municipality_code: str,
        measure_id: str,
        data: dict[str, Any],
        actor: str | None = None,
    ) -> dict[str, Any]:
        changes = load(MeasureUpdate(), data)

        def update(s: Session) -> dict[str, Any]:
            m = measures.update_measure(
                s,
                municipality_code=municipality_code,
                measure_id=measure_id,
                changes=changes,
                actor=actor,
                now=self.clock(),
            )
            return lifecycle.measure_view(m, lifecycle.history_of(s, [m.id])[m.id])

        return self.db.run(update)

    @rpc(expected_exceptions=EXPECTED)
    def change_measure_status(
        self,
        municipality_code: str,
        measure_id: str,
        status: str,
        note: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        fields = load(StatusChangeIn(), {"status": status, "note": note})

        def change(s: Session) -> dict[str, Any]:
            m = measures.change_status(
                s,
                municipality_code=municipality_code,
                measure_id=measure_id,
                status=fields["status"],
                note=fields["note"],
                actor=actor,
                now=self.clock(),
                emit=self.emit,
            )
            return lifecycle.measure_view(m, lifecycle.history_of(s, [m.id])[m.id])

        return self.db.run(change)

    @rpc(expected_exceptions=EXPECTED)
    def reactions(self, municipality_code: str, poll_id: str) -> dict[str, Any]:
        # Scope first: another municipality's poll must not cost a call to panel.
        self.db.run(
            lambda s: lifecycle.get_feedback(
                s, municipality_code=municipality_code, poll_id=poll_id
            )
        )
        k = self._k(municipality_code)
        return self.db.run(
            lambda s: reacting.reactions_for_staff(
                s, municipality_code=municipality_code, poll_id=poll_id, k=k
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def overdue(self, municipality_code: str) -> list[dict[str, Any]]:
        due_days = self._due_days(municipality_code)
        now = self.clock()
        return self.db.run(
            lambda s: overdue.overdue_polls(
                s, municipality_code=municipality_code, due_days=due_days, now=now
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def open_measures_by_area(self, municipality_code: str) -> dict[str, int]:
        """Per area code, the measures of published feedback that are planned or in progress
        (``measures.open_measures_by_area``), for the safety overview."""
        return self.db.run(
            lambda s: measures.open_measures_by_area(s, municipality_code=municipality_code)
        )

    @rpc(expected_exceptions=EXPECTED)
    def loop_figures(self, municipality_code: str) -> dict[str, Any]:
        return self.db.run(lambda s: figures.loop_figures(s, municipality_code=municipality_code))

    # --- residents and the public -----------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def resident_feed(
        self, municipality_code: str, buurt_code: str | None, wijk_code: str | None
    ) -> list[dict[str, Any]]:
        return self.db.run(
            lambda s: feed.resident_feed(
                s, municipality_code=municipality_code, buurt_code=buurt_code, wijk_code=wijk_code
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def resident_detail(
        self, municipality_code: str, feedback_id: str, resident_id: str
    ) -> dict[str, Any]:
        secret = self._secret()

        def read(s: Session) -> dict[str, Any]:
            f = lifecycle.get_published(
                s, municipality_code=municipality_code, feedback_id=feedback_id
            )
            return {
                **lifecycle.feedback_view(s, f, staff=False),
                "my_reaction": reacting.my_reaction(
                    s, feedback_id=f.id, resident_id=resident_id, secret=secret
                ),
            }

        return self.db.run(read)

    @rpc(expected_exceptions=EXPECTED)
    def react(
        self,
        municipality_code: str,
        feedback_id: str,
        resident_id: str,
        buurt_code: str | None,
        wijk_code: str | None,
        useful: bool,
        comment: str | None = None,
    ) -> dict[str, Any]:
        fields = load(ReactionIn(), {"useful": useful, "comment": comment})
        secret = self._secret()
        return self.db.run(
            lambda s: reacting.react(
                s,
                municipality_code=municipality_code,
                feedback_id=feedback_id,
                resident_id=resident_id,
                buurt_code=buurt_code,
                wijk_code=wijk_code,
                useful=fields["useful"],
                comment=fields["comment"],
                secret=secret,
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def public_timeline(self, municipality_code: str) -> dict[str, Any]:
        return self.db.run(lambda s: feed.public_timeline(s, municipality_code=municipality_code))

    # --- overdue sweep --------------------------------------------------------------------

    @timer("OVERDUE_CHECK_INTERVAL", 300.0)
    def check_overdue(self) -> dict[str, int]:
        """Per municipality: the gauges, and the reminders not yet sent."""
        now = self.clock()
        totals = {"municipalities": 0, "overdue": 0, "reminders": 0}
        for code in self.db.run(overdue.municipalities):
            try:
                due_days = self._due_days(code)
            except Exception:  # noqa: BLE001 - one municipality must not stop the sweep
                log.exception("no settings for %s; skipping it this sweep", code)
                continue
            late = self.db.run(
                lambda s, code=code, due_days=due_days: overdue.overdue_polls(
                    s, municipality_code=code, due_days=due_days, now=now
                )
            )
            loop = self.db.run(lambda s, code=code: figures.loop_figures(s, municipality_code=code))
            OVERDUE_POLLS.labels(code).set(len(late))
            SHARE_PUBLISHED.labels(code).set(gauge_value(loop["share_with_feedback"]))
            MEDIAN_DAYS.labels(code).set(gauge_value(loop["median_days_to_feedback"]))
            SHARE_USEFUL.labels(code).set(gauge_value(loop["share_useful"]))
            totals["municipalities"] += 1
            totals["overdue"] += len(late)
            try:
                totals["reminders"] += overdue.send_reminders(
                    run=self.db.run,
                    municipality_code=code,
                    overdue=late,
                    staff=functools.partial(self.remote.call, "panel", "list_staff", code),
                    send=lambda to, subject, body: self.mail.send(", ".join(to), subject, body),
                    admin_url=self.settings.admin_app_url,
                    now=now,
                )
            except Exception:  # noqa: BLE001 - released claims are retried by the next sweep
                log.exception("overdue reminders for %s failed; retrying next sweep", code)
        return totals
