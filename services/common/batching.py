"""Consuming a work queue in batches: one transaction and one multi-ack per few hundred
messages, for the high-volume intake path (nameko's consumers take one message per worker).

The loop runs in a managed thread of the service container:

- it collects up to ``batch_size`` messages, or what arrived within ``max_wait`` seconds;
- a message that cannot be decoded (not JSON, another content type) or that ``validate``
  refuses goes to the dead-letter queue at once, and the loop goes on;
- ``handle(bodies)`` runs; on success every message of the batch is acked (multiple=True);
  the positions it returns are messages to try again later (e.g. a submission for a poll the
  service has not heard of yet): each goes back to the queue after a backoff through the
  retry mechanism of ``deadletter.RetryPolicy`` — to the dead-letter queue after its last
  attempt — before the batch is acked;
- if the database is down, nothing is acked and the batch is tried again after a backoff —
  the messages stay on the queue, so nothing accepted is lost;
- if the broker connection dies (even between commit and ack), the loop reconnects and the
  unacked messages come again: ``handle`` must be idempotent, and is;
- if the batch fails for another reason, it is split in halves and each tried again, so one
  poison message ends in the dead-letter queue and the rest is recorded;
- if the batch exceeds its time limit (the handler sets it in the database: PostgreSQL cancels
  the statement, ``timed_out``), it is split in halves too, since smaller batches are quicker
  and hold their locks for less; one message that exceeds it alone is tried again after a
  backoff like a database outage — never dead-lettered for being slow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from kombu import Connection, Consumer, Queue
from nameko.extensions import DependencyProvider
from sqlalchemy.exc import DBAPIError

from services.common.amqp import connect
from services.common.clock import Clock
from services.common.deadletter import RetryPolicy, attempt_of
from services.common.settings import common_settings

log = logging.getLogger(__name__)


class ConnectionLost(Exception):
    """An ack found the broker connection gone: reconnect (never retry on the dead channel)."""


def _ack(message: Any, *, multiple: bool = False) -> None:
    try:
        message.ack(multiple=multiple)
    except Exception as exc:  # noqa: BLE001 - any failure here means this channel is done
        raise ConnectionLost(f"could not ack: {exc!r}") from exc


def transient(exc: BaseException) -> bool:
    """Failures that say nothing about the messages: try the same batch again later."""
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated) or exc.__class__.__name__ == "OperationalError"
    return isinstance(exc, (ConnectionError, OSError))


def timed_out(exc: BaseException) -> bool:
    """PostgreSQL cancelled a statement of the batch (``statement_timeout``: the batch's time
    limit, or an operator's cancel)."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "pgcode", None) == QUERY_CANCELED


QUERY_CANCELED = "57014"


def unfinished(batch: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """What follows the last acked message of ``batch``: acks are ``multiple``, so everything
    before an acked message is acked too (in a batch's order, which is the channel's)."""
    done = max((i for i, (_, message) in enumerate(batch) if message.acknowledged), default=-1)
    return batch[done + 1 :]


class BatchLoop:
    def __init__(
        self,
        amqp_uri: str,
        queue: Queue,
        handle: Callable[[list[Any]], Sequence[int] | None],
        *,
        validate: Callable[[Any], str | None],
        retry: RetryPolicy,
        batch_size: int = 500,
        max_wait: float = 0.05,
        heartbeat: int = 30,
    ):
        self.amqp_uri = amqp_uri
        self.queue = queue
        self.handle = handle
        self.validate = validate
        self.retry = retry
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.heartbeat = heartbeat
        self._pending: list[Any] = []
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    def run(self) -> None:
        backoff = 0.5
        while not self._stopping:
            try:
                with connect(self.amqp_uri, heartbeat=self.heartbeat) as conn:
                    self._consume(conn)
                backoff = 0.5
            except Exception:  # noqa: BLE001 - reconnect after broker trouble
                log.exception("intake consumer lost its connection; reconnecting")
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)

    def _consume(self, conn: Connection) -> None:
        channel = conn.channel()
        channel.basic_qos(0, self.batch_size * 2, False)
        consumer = Consumer(
            channel,
            queues=[self.queue],
            callbacks=[self._collect],
            accept=["json"],
            on_decode_error=self._undecodable,
        )
        consumer.consume()
        self._pending = []
        while not self._stopping:
            deadline = None  # max_wait counts from the first message of the batch
            while len(self._pending) < self.batch_size:
                if self._pending and deadline is None:
                    deadline = time.monotonic() + self.max_wait
                timeout = deadline - time.monotonic() if deadline is not None else 1.0
                if timeout <= 0:
                    break
                try:
                    conn.drain_events(timeout=timeout)
                except TimeoutError:
                    if self._pending or self._stopping:
                        break
                finally:
                    # Nobody else sends our heartbeats: an idle consumer was closed by the
                    # broker after about a minute (missed heartbeats) and had to reconnect.
                    conn.heartbeat_check()
            if self._pending:
                batch, self._pending = self._pending, []
                self._process(batch)

    def _undecodable(self, message: Any, exc: Exception) -> None:
        """Not JSON, or a content type we do not accept: it can never be recorded. Without
        this kombu raised from ``drain_events``, the loop reconnected and got it again, for
        ever — nothing behind it was recorded."""
        raw = message.body
        body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        log.error("dead-lettering an undecodable intake message: %s", exc)
        self.retry.dead_letter(
            self.queue.name,
            {"undecodable": body[:100_000], "content_type": message.content_type},
            message.headers,
            reason="undecodable",
            error=repr(exc)[:1000],
        )
        _ack(message)

    def _collect(self, body: Any, message: Any) -> None:
        problem = self.validate(body)
        if problem:
            self.retry.dead_letter(
                self.queue.name, body, message.headers, reason="invalid", error=problem
            )
            _ack(message)
            return
        self._pending.append((body, message))

    def _process(self, batch: list[tuple[Any, Any]]) -> None:
        backoff = 0.5
        while not self._stopping:
            # After a split, the halves before the failure are recorded and acked already.
            batch = unfinished(batch)
            if not batch:
                return
            try:
                self._attempt(batch)
                return
            except Exception as exc:  # noqa: BLE001 - sorted below
                if not transient(exc):
                    raise
                log.warning("intake batch waits for the database (%s); retrying", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 10)

    def _attempt(self, batch: list[tuple[Any, Any]]) -> None:
        try:
            later = self.handle([body for body, _ in batch]) or ()
        except Exception as exc:  # noqa: BLE001
            if timed_out(exc) and len(batch) > 1:
                log.warning("an intake batch of %d exceeded its time limit; split", len(batch))
                middle = len(batch) // 2
                self._attempt(batch[:middle])
                self._attempt(batch[middle:])
                return
            if transient(exc):
                raise
            if len(batch) == 1:
                body, message = batch[0]
                log.error("dead-lettering an intake message: %s", exc)
                self.retry.dead_letter(
                    self.queue.name,
                    body,
                    message.headers,
                    reason="unprocessable",
                    error=str(exc)[:1000],
                )
                _ack(message)
                return
            middle = len(batch) // 2
            self._attempt(batch[:middle])
            self._attempt(batch[middle:])
            return
        for position in sorted(set(later)):  # republished (confirmed) before the ack
            body, message = batch[position]
            attempt = attempt_of(message.headers)
            if attempt >= self.retry.max_attempts:
                self.retry.dead_letter(
                    self.queue.name,
                    body,
                    message.headers,
                    reason="max_attempts",
                    error="still not recordable after the last retry",
                )
            else:
                self.retry.retry_later(self.queue.name, body, message.headers, attempt)
        _ack(batch[-1][1], multiple=True)  # every message of this channel up to the last


class BatchConsumer(DependencyProvider):
    """Runs a BatchLoop in the service container. ``handler_factory(container, now)`` returns the
    function that records a list of bodies (plain code with its own engine: no nameko worker
    is involved); ``now`` is the service's ``Clock`` (the service must have one).
    Config: ``AMQP_URI``, ``INTAKE_BATCH_SIZE``, ``INTAKE_MAX_WAIT``, and
    ``RETRY_DELAYS``/``MAX_ATTEMPTS`` for messages ``handle`` asks to try again later."""

    def __init__(
        self,
        queue: Queue,
        handler_factory: Callable[[Any, Callable[[], Any]], Any],
        validate: Callable[[Any], str | None],
        *,
        personal: bool = False,
    ):
        """``personal``: the messages hold personal data, so their dead letters expire after
        ``DEAD_LETTER_RETENTION`` (deadletter.py)."""
        self.queue = queue
        self.handler_factory = handler_factory
        self.validate = validate
        self.personal = personal
        self.loop: BatchLoop | None = None

    def start(self) -> None:
        settings = common_settings(self.container)
        self.loop = BatchLoop(
            settings.amqp_uri,
            self.queue,
            self.handler_factory(self.container, Clock.of(self.container).now),
            validate=self.validate,
            retry=RetryPolicy(
                settings.amqp_uri,
                delays=list(settings.retry_delays),
                max_attempts=settings.max_attempts,
                retention=settings.dead_letter_retention,
                personal=self.personal,
            ),
            batch_size=settings.intake_batch_size,
            max_wait=settings.intake_max_wait,
        )
        self.container.spawn_managed_thread(self.loop.run, identifier="intake")

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.stop()

    kill = stop
