"""Prometheus metrics: per-entrypoint calls and latency, and the domain figures every service
shares (outbox backlog, events consumed, retries, dead letters).

Each service process serves them on its own port (``METRICS_PORT`` in its config.yml; 0 turns
the endpoint off, as tests do when several containers share one process).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from services.common.settings import common_settings

log = logging.getLogger(__name__)

ENTRYPOINT_CALLS = Counter(
    "buurtpeil_entrypoint_calls_total",
    "Entrypoint invocations by outcome (success, rejected = expected exception, error).",
    ["service", "entrypoint", "outcome"],
)
ENTRYPOINT_LATENCY = Histogram(
    "buurtpeil_entrypoint_duration_seconds",
    "Entrypoint latency by outcome.",
    ["service", "entrypoint", "outcome"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_PENDING = Gauge("buurtpeil_outbox_pending", "Outbox rows not yet published.", ["service"])
OUTBOX_PUBLISHED = Counter(
    "buurtpeil_outbox_published_total", "Events published from the outbox.", ["service", "event"]
)
OUTBOX_RETURNED = Counter(
    "buurtpeil_outbox_returned_total",
    "Outbox events the broker returned as unroutable (no queue bound): kept, published again.",
    ["service", "event"],
)
OUTBOX_OLDEST_PENDING = Gauge(
    "buurtpeil_outbox_oldest_pending_seconds",
    "Age of the oldest unpublished outbox row (0 when empty).",
    ["service"],
)
EVENTS_CONSUMED = Counter(
    "buurtpeil_events_consumed_total",
    "Domain events consumed, by outcome (handled, retried, dead_lettered).",
    ["service", "event", "outcome"],
)
DEAD_LETTERS = Counter(
    "buurtpeil_dead_letters_total",
    "Messages moved to a dead-letter queue, by queue and reason.",
    ["queue", "reason"],
)

HTTP_RESPONSES = Counter(
    "buurtpeil_http_responses_total",
    "Gateway answers by route and status code (problem+json answers included).",
    ["route", "status"],
)

_served_ports: set[int] = set()


def serve_metrics(port: int) -> None:
    """Start the /metrics HTTP endpoint once per process and port."""
    if port and port not in _served_ports:
        start_http_server(port, addr="0.0.0.0")  # noqa: S104 - scraped from outside the pod
        _served_ports.add(port)
        log.info("metrics on :%d/metrics", port)


def outcome_of(entrypoint: Any, exc_info: Any) -> str:
    if exc_info is None:
        return "success"
    expected = getattr(entrypoint, "expected_exceptions", ()) or ()
    return "rejected" if expected and isinstance(exc_info[1], expected) else "error"


class Metrics(DependencyProvider):
    """Count and time every entrypoint of the service; serve /metrics on METRICS_PORT."""

    def __init__(self) -> None:
        self._started: dict[Any, float] = {}

    def setup(self) -> None:
        serve_metrics(common_settings(self.container).metrics_port)

    def worker_setup(self, worker_ctx: Any) -> None:
        self._started[worker_ctx] = time.perf_counter()

    def worker_result(self, worker_ctx: Any, result: Any = None, exc_info: Any = None) -> None:
        started = self._started.pop(worker_ctx, None)
        labels = (
            self.container.service_name,
            worker_ctx.entrypoint.method_name,
            outcome_of(worker_ctx.entrypoint, exc_info),
        )
        ENTRYPOINT_CALLS.labels(*labels).inc()
        if started is not None:
            ENTRYPOINT_LATENCY.labels(*labels).observe(time.perf_counter() - started)
