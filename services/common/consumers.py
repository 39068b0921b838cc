"""``@event_handler(source, event)``: nameko's event handler, made safe for domain events.

What it adds to nameko's own ``EventHandler``:

* the queue is a durable quorum queue (replicated on a RabbitMQ cluster);
* the envelope and payload are validated against the event catalogue before a worker starts;
  a message that does not fit goes straight to the dead-letter queue (never silently dropped);
* the handler receives a :class:`~services.common.events.DomainEvent`;
* a handler that raises is retried with exponential backoff and jitter through the delay
  queues, and dead-lettered after a bounded number of attempts (see ``deadletter.py``) —
  instead of nameko's default of acking (message lost) or requeueing (hot loop);
* outcomes are counted in ``buurtpeil_events_consumed_total``.

Idempotency stays the handler's job, in its own transaction: ``claim_event(session, event,
handler)`` from ``outbox.py``.

Config: ``RETRY_DELAYS`` (list of seconds, default 1, 5, 30, 120, 600) and ``MAX_ATTEMPTS``.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from kombu import Queue
from nameko.events import SERVICE_POOL, EventHandler
from nameko.extensions import SharedExtension
from nameko.messaging import Consumer

from services.common.deadletter import DEFAULT_DELAYS, RetryPolicy
from services.common.events import EventValidationError, parse_envelope
from services.common.metrics import EVENTS_CONSUMED

log = logging.getLogger(__name__)


class RetryPolicyProvider(SharedExtension):
    """One RetryPolicy (and one publishing connection) per container."""

    def setup(self) -> None:
        config = self.container.config
        delays = config.get("RETRY_DELAYS") or DEFAULT_DELAYS
        self.policy = RetryPolicy(
            config["AMQP_URI"],
            delays=[float(d) for d in delays],
            max_attempts=int(config["MAX_ATTEMPTS"]) if config.get("MAX_ATTEMPTS") else None,
        )

    def stop(self) -> None:
        self.policy.close()

    kill = stop


class DomainEventHandler(EventHandler):
    retry_policy = RetryPolicyProvider()

    def __init__(self, source_service: str, event_type: str, **kwargs: Any):
        kwargs.setdefault("handler_type", SERVICE_POOL)
        super().__init__(source_service, event_type, **kwargs)

    def setup(self) -> None:
        super().setup()
        if self.handler_type is SERVICE_POOL:
            # Same name and binding as nameko's queue, declared as a quorum queue.
            self.queue = Queue(
                self.queue.name,
                exchange=self.queue.exchange,
                routing_key=self.queue.routing_key,
                durable=True,
                auto_delete=False,
                queue_arguments={"x-queue-type": "quorum"},
            )

    def handle_message(self, body: Any, message: Any) -> None:
        try:
            event = parse_envelope(body, expected=self.event_type)
        except EventValidationError as exc:
            log.error(
                "dead-lettering invalid %s message from %s: %s",
                self.event_type,
                self.queue.name,
                exc,
            )
            self.retry_policy.policy.dead_letter(
                self.queue.name, body, message.headers, reason="invalid", error=str(exc)
            )
            self._count("dead_lettered")
            self.queue_consumer.ack_message(message)
            return
        context_data = self.unpack_message_headers(message)
        if event.correlation_id:
            context_data.setdefault("correlation_id", event.correlation_id)
        self.container.spawn_worker(
            self,
            (event,),
            {},
            context_data=context_data,
            handle_result=partial(self.handle_result, message, body),
        )

    def handle_result(
        self, message: Any, body: Any, worker_ctx: Any, result: Any = None, exc_info: Any = None
    ) -> tuple[Any, Any]:
        if exc_info is None:
            self._count("handled")
            self.queue_consumer.ack_message(message)
            return result, exc_info
        try:
            outcome = self.retry_policy.policy.handle_failure(
                self.queue.name, body, message.headers, exc_info
            )
        except Exception:  # noqa: BLE001 - broker trouble: leave the message to be redelivered
            log.exception("could not schedule a retry for %s; requeueing", self.queue.name)
            self.queue_consumer.requeue_message(message)
            return result, exc_info
        log.warning("%s handler failed (%s): %s", self.event_type, outcome, exc_info[1])
        self._count(outcome)
        self.queue_consumer.ack_message(message)
        return result, exc_info

    def _count(self, outcome: str) -> None:
        EVENTS_CONSUMED.labels(self.container.service_name, self.event_type, outcome).inc()


event_handler = DomainEventHandler.decorator


class WorkConsumer(Consumer):
    """A consumer of one of our own durable work queues (not domain events), with the same
    failure handling: a body ``validate`` refuses goes to the dead-letter queue at once; a
    handler that raises is retried with backoff, then dead-lettered. Acked only after the
    handler returned (or the message was safely moved), so a killed worker's batch is
    redelivered by RabbitMQ."""

    retry_policy = RetryPolicyProvider()

    def __init__(self, queue: Queue, validate: Any = None, **kwargs: Any):
        self.validate = validate
        super().__init__(queue=queue, **kwargs)

    def handle_message(self, body: Any, message: Any) -> None:
        if self.validate is not None:
            problem = self.validate(body)
            if problem:
                self.retry_policy.policy.dead_letter(
                    self.queue.name, body, message.headers, reason="invalid", error=problem
                )
                self.queue_consumer.ack_message(message)
                return
        self.container.spawn_worker(
            self,
            (body,),
            {},
            context_data=self.unpack_message_headers(message),
            handle_result=partial(self.handle_result, message, body),
        )

    def handle_result(
        self, message: Any, body: Any, worker_ctx: Any, result: Any = None, exc_info: Any = None
    ) -> tuple[Any, Any]:
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return result, exc_info
        try:
            outcome = self.retry_policy.policy.handle_failure(
                self.queue.name, body, message.headers, exc_info
            )
        except Exception:  # noqa: BLE001 - broker trouble: leave the message to be redelivered
            log.exception("could not schedule a retry for %s; requeueing", self.queue.name)
            self.queue_consumer.requeue_message(message)
            return result, exc_info
        log.warning("%s worker failed (%s): %s", self.queue.name, outcome, exc_info[1])
        self.queue_consumer.ack_message(message)
        return result, exc_info


work_consumer = WorkConsumer.decorator
