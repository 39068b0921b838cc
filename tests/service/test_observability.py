"""Metrics and logs: what operations see of a running service."""

from __future__ import annotations

import json
import logging

import pytest
from nameko.rpc import rpc
from nameko.standalone.rpc import ServiceRpcProxy
from prometheus_client import REGISTRY

from services.common.errors import NotFound
from services.common.logs import JsonFormatter, LoggingContext
from services.polls.service import PollsService
from tests.conftest import wait_for
from tests.support.listeners import recorder


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_entrypoints_are_counted_and_timed_by_outcome(container_factory, service_config):
    config = service_config("polls")
    container_factory(PollsService, config).start()
    labels = {"service": "polls", "entrypoint": "get_template"}
    ok_before = sample("buurtpeil_entrypoint_calls_total", outcome="success", **labels)
    rejected_before = sample("buurtpeil_entrypoint_calls_total", outcome="rejected", **labels)
    with ServiceRpcProxy("polls", config) as polls:
        polls.get_template("afval")
        with pytest.raises(NotFound):
            polls.get_template("bestaat_niet")
    wait_for(
        lambda: (
            sample("buurtpeil_entrypoint_calls_total", outcome="rejected", **labels)
            == rejected_before + 1
        ),
        message="the rejected call counted",
    )
    assert sample("buurtpeil_entrypoint_calls_total", outcome="success", **labels) == ok_before + 1
    assert sample("buurtpeil_entrypoint_duration_seconds_count", outcome="success", **labels) >= 1


def test_outbox_backlog_is_measured(container_factory, service_config):
    config = service_config("polls", OUTBOX_POLL_INTERVAL=0.1)
    # A consumer's queue to route to: an event nobody's queue is bound for is returned by the
    # broker and stays pending (outbox.py).
    listener, _ = recorder("polls", "poll_published")
    container_factory(listener, service_config("polls")).start()
    container_factory(PollsService, config).start()
    with ServiceRpcProxy("polls", config) as polls:
        poll = polls.create_poll("GM0344", {"template_id": "groen"})
        polls.publish_poll("GM0344", poll["id"])
    wait_for(
        lambda: (
            sample("buurtpeil_outbox_published_total", service="polls", event="poll_published") >= 1
        ),
        message="the relay publishing",
    )
    wait_for(
        lambda: REGISTRY.get_sample_value("buurtpeil_outbox_pending", {"service": "polls"}) == 0,
        message="an empty backlog",
    )


class Chatty:
    name = "chatty"
    log_context = LoggingContext()

    @rpc
    def work(self):
        logging.getLogger("chatty").warning("working on it")


def test_log_lines_are_json_with_service_entrypoint_and_correlation_id(
    container_factory, service_config, caplog
):
    config = service_config("polls")
    container_factory(Chatty, config).start()
    with caplog.at_level(logging.WARNING, logger="chatty"):
        with ServiceRpcProxy("chatty", config, context_data={"correlation_id": "req-42"}) as c:
            c.work()
        with ServiceRpcProxy("chatty", config) as c:
            c.work()
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "chatty"]
    assert len(lines) == 2
    first, second = lines
    assert (first["service"], first["entrypoint"], first["level"]) == ("chatty", "work", "warning")
    assert first["correlation_id"] == "req-42"  # carried in from the caller
    assert len(second["correlation_id"]) == 32  # started by the worker when none came in
