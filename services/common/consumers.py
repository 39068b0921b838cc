"""``@idempotent_handler(source, event)``: the one way a service handles a domain event.

It is nameko's event handler, made safe for domain events (``DomainEventHandler``):

* the queue is a durable quorum queue (replicated on a RabbitMQ cluster);
* the envelope and payload are validated against the event catalogue before a worker starts;
  a message that does not fit goes straight to the dead-letter queue (never silently dropped);
* a handler that raises is retried with exponential backoff and jitter through the delay
  queues, and dead-lettered after a bounded number of attempts (see ``deadletter.py``) —
  instead of nameko's default of acking (message lost) or requeueing (hot loop);
* outcomes are counted in ``buurtpeil_events_consumed_total``;

and idempotent: the handler method is called as ``handler(self, session, event)`` inside one
transaction of the service's ``Database``, after the event was claimed in that transaction
under ``<service>.<event>`` (``claim_event`` in ``outbox.py``: a row in ``processed_events``).
A redelivered or replayed event finds its claim and the method is not called; a method that
raises rolls its claim back with everything else, so the retry applies the event afresh —
which is how a handler waits for an event that should have come first (raise until it has).
Work that must follow the commit (waking a loop) goes through ``db.after_commit``.

``@event_handler(source, event)`` is the same entrypoint without the claim and transaction, for
listeners that keep nothing (tests); the gateway's broadcasts are in ``gateway/resync.py``.

Config: ``RETRY_DELAYS`` (list of seconds, default 1, 5, 30, 120, 600), ``MAX_ATTEMPTS`` and
``DEAD_LETTER_RETENTION`` (seconds a dead letter holding personal data is kept; 14 days).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from kombu import Queue
from nameko.events import SERVICE_POOL, EventHandler
from nameko.extensions import SharedExtension
from nameko.messaging import Consumer
from sqlalchemy.orm import Session

from services.common.amqp import BROKER_GONE
from services.common.db import WorkerDatabase
from services.common.deadletter import RetryPolicy
from services.common.events import DomainEvent, EventValidationError, parse_envelope
from services.common.metrics import EVENTS_CONSUMED
from services.common.outbox import claim_event
from services.common.settings import common_settings

log = logging.getLogger(__name__)


def settle(action: Any, message: Any, queue: str) -> None:
    """Ack or requeue a message. With the broker connection gone this raises, and nameko stops
    the whole container for an error in a worker's result handling (notify died so in the
    fault suite's broker restart); the message is redelivered after the reconnection instead
    (handlers are idempotent), so only log it."""
    try:
        action(message)
    except BROKER_GONE as exc:
        log.warning("%s: could not settle a message (%s); it comes again", queue, exc)


class RetryPolicyProvider(SharedExtension):
    """One RetryPolicy (and one publishing connection) per container."""

    def setup(self) -> None:
        settings = common_settings(self.container)
        self.policy = RetryPolicy(
            settings.amqp_uri,
            delays=list(settings.retry_delays),
            max_attempts=settings.max_attempts,
            retention=settings.dead_letter_retention,
        )

    def stop(self) -> None:
        self.policy.close()

    kill = stop


class DomainEventHandler(EventHandler):
    retry_policy = RetryPolicyProvider()
    queue: Queue  # nameko's, replaced at setup

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
            settle(self.queue_consumer.ack_message, message, self.queue.name)
            return result, exc_info
        try:
            outcome = self.retry_policy.policy.handle_failure(
                self.queue.name, body, message.headers, exc_info
            )
        except Exception:  # noqa: BLE001 - broker trouble: leave the message to be redelivered
            log.exception("could not schedule a retry for %s; requeueing", self.queue.name)
            settle(self.queue_consumer.requeue_message, message, self.queue.name)
            return result, exc_info
        log.warning("%s handler failed (%s): %s", self.event_type, outcome, exc_info[1])
        self._count(outcome)
        settle(self.queue_consumer.ack_message, message, self.queue.name)
        return result, exc_info

    def _count(self, outcome: str) -> None:
        EVENTS_CONSUMED.labels(self.container.service_name, self.event_type, outcome).inc()


event_handler = DomainEventHandler.decorator

T = TypeVar("T")


class IdempotentEventHandler(DomainEventHandler):
    """The entrypoint of ``@idempotent_handler``. One per event type and service: the claim is
    named after both (``claim_name``), so a second handler of the same event in the same
    service would find the first one's claims — refused when the container is set up."""

    def setup(self) -> None:
        super().setup()
        twins = sorted(
            e.method_name
            for e in self.container.entrypoints
            if isinstance(e, IdempotentEventHandler) and e.event_type == self.event_type
        )
        if len(twins) > 1:
            raise RuntimeError(
                f"{self.container.service_name} handles {self.event_type} in {twins}: "
                "one idempotent handler per event and service (they would share a claim)"
            )


def claim_name(service: str, event: str) -> str:
    """The handler's name in ``processed_events``: ``<service>.<event>`` (e.g.
    ``notify.poll_published``), the names the hand-written claims used before."""
    return f"{service}.{event}"


def idempotent_handler(
    source_service: str, event_type: str, **kwargs: Any
) -> Callable[[Callable[[Any, Session, DomainEvent], T]], Callable[[Any, DomainEvent], T | None]]:
    """Decorate ``handler(self, session, event)``: claimed, in one transaction, once per event.

    The worker returns what the handler returned, or None for an event already applied."""

    def decorate(
        handler: Callable[[Any, Session, DomainEvent], T],
    ) -> Callable[[Any, DomainEvent], T | None]:
        @functools.wraps(handler)
        def handle(service: Any, event: DomainEvent) -> T | None:
            claim = claim_name(type(service).name, event.name)

            def apply(session: Session) -> T | None:
                if not claim_event(session, event, claim):
                    return None  # applied before: a redelivery or a replay
                return handler(service, session, event)

            return _database_of(service).run(apply)

        entrypoint: Callable[[Any, DomainEvent], T | None] = IdempotentEventHandler.decorator(
            source_service, event_type, **kwargs
        )(handle)
        return entrypoint

    return decorate


def _database_of(service: Any) -> WorkerDatabase:
    found = [v for v in vars(service).values() if isinstance(v, WorkerDatabase)]
    if len(found) != 1:
        raise RuntimeError(
            f"{type(service).__name__}: an idempotent handler needs exactly one Database "
            f"dependency (found {len(found)})"
        )
    return found[0]


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
            settle(self.queue_consumer.ack_message, message, self.queue.name)
            return result, exc_info
        try:
            outcome = self.retry_policy.policy.handle_failure(
                self.queue.name, body, message.headers, exc_info
            )
        except Exception:  # noqa: BLE001 - broker trouble: leave the message to be redelivered
            log.exception("could not schedule a retry for %s; requeueing", self.queue.name)
            settle(self.queue_consumer.requeue_message, message, self.queue.name)
            return result, exc_info
        log.warning("%s worker failed (%s): %s", self.queue.name, outcome, exc_info[1])
        settle(self.queue_consumer.ack_message, message, self.queue.name)
        return result, exc_info


work_consumer = WorkConsumer.decorator
