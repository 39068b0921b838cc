"""polls: the template library and the life of a poll, from draft to archive.

RPC (called by the gateway; ``municipality_code`` always comes from the verified staff token):
list_templates, get_template, create_poll, update_poll, publish_poll, close_poll, archive_poll,
list_polls, get_poll, series, series_waves, list_open_polls.
Timer: ``run_schedule`` opens and closes polls on schedule (``SCHEDULE_INTERVAL`` seconds).
Events out (through the outbox): ``poll_published``, ``poll_closed``.
"""

from __future__ import annotations

from typing import Any

from services.common.clock import Clock
from services.common.db import Database
from services.common.environment import DevelopmentDefaults
from services.common.errors import EXPECTED
from services.common.logs import LoggingContext
from services.common.metrics import Metrics
from services.common.outbox import Outbox
from services.common.rpc import rpc
from services.common.timers import timer
from services.common.validation import load
from services.polls import library, lifecycle
from services.polls.schemas import PollCreate, PollUpdate


class PollsService:
    name = "polls"

    db = Database()
    emit = Outbox()
    metrics = Metrics()
    log_context = LoggingContext()
    development_defaults = DevelopmentDefaults()  # refused at start outside development
    clock = Clock()

    @rpc(expected_exceptions=EXPECTED)
    def list_templates(self, theme: str | None = None) -> list[dict[str, Any]]:
        return library.list_templates(theme)

    @rpc(expected_exceptions=EXPECTED)
    def get_template(self, template_id: str) -> dict[str, Any]:
        return library.get_template(template_id)

    @rpc(expected_exceptions=EXPECTED)
    def create_poll(
        self, municipality_code: str, data: dict[str, Any], created_by: str | None = None
    ) -> dict[str, Any]:
        fields = load(PollCreate(), data)
        return self.db.run(
            lambda s: lifecycle.serialize_poll(
                lifecycle.create_poll(
                    s,
                    municipality_code=municipality_code,
                    data=fields,
                    now=self.clock(),
                    created_by=created_by,
                )
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def update_poll(
        self,
        municipality_code: str,
        poll_id: str,
        changes: dict[str, Any],
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        fields = load(PollUpdate(), changes)
        return self.db.run(
            lambda s: lifecycle.serialize_poll(
                lifecycle.update_draft(
                    s,
                    municipality_code=municipality_code,
                    poll_id=poll_id,
                    changes=fields,
                    now=self.clock(),
                    expected_version=expected_version,
                )
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def publish_poll(
        self, municipality_code: str, poll_id: str, regions: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        return self.db.run(
            lambda s: lifecycle.serialize_poll(
                lifecycle.publish_poll(
                    s,
                    municipality_code=municipality_code,
                    poll_id=poll_id,
                    now=self.clock(),
                    emit=self.emit,
                    regions=regions,
                )
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def close_poll(self, municipality_code: str, poll_id: str) -> dict[str, Any]:
        return self.db.run(
            lambda s: lifecycle.serialize_poll(
                lifecycle.close_poll(
                    s,
                    municipality_code=municipality_code,
                    poll_id=poll_id,
                    now=self.clock(),
                    emit=self.emit,
                )
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def archive_poll(self, municipality_code: str, poll_id: str) -> dict[str, Any]:
        return self.db.run(
            lambda s: lifecycle.serialize_poll(
                lifecycle.archive_poll(
                    s, municipality_code=municipality_code, poll_id=poll_id, now=self.clock()
                )
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def list_polls(self, municipality_code: str, status: str | None = None) -> list[dict[str, Any]]:
        return self.db.run(
            lambda s: [
                lifecycle.serialize_poll(p)
                for p in lifecycle.list_polls(s, municipality_code=municipality_code, status=status)
            ]
        )

    @rpc(expected_exceptions=EXPECTED)
    def get_poll(self, municipality_code: str, poll_id: str) -> dict[str, Any]:
        return self.db.run(
            lambda s: lifecycle.serialize_poll(
                lifecycle.load_poll(s, municipality_code=municipality_code, poll_id=poll_id)
            )
        )

    @rpc(expected_exceptions=EXPECTED)
    def series(self, municipality_code: str, poll_id: str) -> list[dict[str, Any]]:
        """The poll and the earlier waves it follows (issue 13), oldest first."""
        return self.db.run(
            lambda s: [
                lifecycle.serialize_poll(p)
                for p in lifecycle.series(s, municipality_code=municipality_code, poll_id=poll_id)
            ]
        )

    @rpc(expected_exceptions=EXPECTED)
    def series_waves(self, municipality_code: str, poll_id: str) -> list[dict[str, Any]]:
        """Every wave of the poll's series, first to last, from any of its polls (issue 13)."""
        return self.db.run(
            lambda s: [
                lifecycle.serialize_wave(p)
                for p in lifecycle.whole_series(
                    s, municipality_code=municipality_code, poll_id=poll_id
                )
            ]
        )

    @rpc
    def list_open_polls(self) -> list[dict[str, Any]]:
        return self.db.run(lambda s: [lifecycle.serialize_poll(p) for p in lifecycle.list_open(s)])

    @timer("SCHEDULE_INTERVAL", 10.0)
    def run_schedule(self) -> dict[str, int]:
        return self.db.run(lambda s: lifecycle.run_schedule(s, now=self.clock(), emit=self.emit))
