"""Publishing to RabbitMQ with publisher confirms, outside nameko's own dispatchers.

The outbox relay, the retry/dead-letter machinery and (later) the high-volume work queues
publish through this: every publish waits for the broker's confirm, so "published" means the
broker has taken responsibility for the message.

``ConfirmingPublisher`` waits for each confirm in turn: one broker round trip per message.
``GroupConfirmPublisher`` (the gateway's response intake) lets many concurrent callers share
one: it publishes whatever is waiting in one write and waits for the confirms together — each
caller still learns the outcome of its own message (ack, nack, or a lost connection).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from amqp import Message
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu import Connection, Exchange, Producer
from kombu.exceptions import OperationalError

# What publishing, acking or requeueing raises when the broker connection is gone.
BROKER_GONE = (OperationalError, AmqpConnectionError, ConnectionError, OSError)

log = logging.getLogger(__name__)
JSON = "application/json"


def connect(amqp_uri: str, *, heartbeat: int = 30) -> Connection:
    return Connection(
        amqp_uri,
        heartbeat=heartbeat,
        transport_options={"confirm_publish": True},
        connect_timeout=5,
    )


def events_exchange(source: str) -> Exchange:
    """The topic exchange nameko declares for a service's events (``<service>.events``)."""
    return Exchange(f"{source}.events", type="topic", durable=True, auto_delete=False)


class PublishReturned(Exception):  # noqa: N818 - named for the AMQP method, basic.return
    """A ``mandatory`` message the broker could not route to any queue (basic.return): it was
    confirmed, but nobody will ever receive it."""

    def __init__(self, reply_code: int, reply_text: str, exchange: str, routing_key: str):
        super().__init__(
            f"returned by the broker: {reply_code} {reply_text} "
            f"(exchange {exchange!r}, routing key {routing_key!r})"
        )
        self.reply_code, self.reply_text = reply_code, reply_text
        self.exchange, self.routing_key = exchange, routing_key


class ConfirmingPublisher:
    """A producer on its own connection; ``publish`` returns once the broker confirmed.

    With ``mandatory=True`` a message no queue is bound for raises :class:`PublishReturned`
    (RabbitMQ sends basic.return before the confirm, so it is known by then).

    Safe to share between greenthreads: publishes take turns on the one channel (a confirm
    must be read by the thread that waits for it).
    """

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._returned: PublishReturned | None = None

    def _ensure(self) -> Producer:
        if self._producer is None:
            self._connection = connect(self.amqp_uri)
            self._connection.ensure_connection(max_retries=3)
            channel = self._connection.channel()
            channel.events["basic_return"].add(self._on_return)
            self._producer = Producer(channel)
        return self._producer

    def _on_return(self, exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        code = getattr(exc, "reply_code", None) or 312  # NO_ROUTE
        text = getattr(exc, "reply_text", None) or str(exc)
        self._returned = PublishReturned(code, text, exchange, routing_key)

    def publish(
        self,
        body: dict[str, Any],
        *,
        exchange: Exchange | str,
        routing_key: str,
        headers: dict[str, Any] | None = None,
        declare: list[Any] | None = None,
        **properties: Any,
    ) -> None:
        with self._lock:
            self._publish(
                body,
                exchange=exchange,
                routing_key=routing_key,
                headers=headers,
                declare=declare,
                **properties,
            )

    def _publish(
        self,
        body: dict[str, Any],
        *,
        exchange: Exchange | str,
        routing_key: str,
        headers: dict[str, Any] | None,
        declare: list[Any] | None,
        **properties: Any,
    ) -> None:
        producer = self._ensure()
        self._returned = None
        try:
            producer.publish(
                json.dumps(body, separators=(",", ":"), default=str),
                exchange=exchange,
                routing_key=routing_key,
                headers=headers or {},
                content_type=JSON,
                content_encoding="utf-8",
                delivery_mode=2,  # persistent
                declare=declare or [],
                retry=False,
                **properties,
            )
        except Exception:
            self._close()  # a broken channel is never reused
            raise
        if self._returned is not None:  # the channel is fine: only this message went nowhere
            returned, self._returned = self._returned, None
            raise returned

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception as exc:  # noqa: BLE001 - closing a dead connection may fail any way
                log.debug("closing a broken AMQP connection: %s", exc)
        self._connection = None
        self._producer = None


class PublishNacked(Exception):
    """The broker refused responsibility for the message (basic.nack)."""


class PublisherClosed(Exception):
    """The publisher was closed before the message was confirmed."""


class _Pending:
    __slots__ = ("body", "exchange", "routing_key", "headers", "done", "error", "abandoned")

    def __init__(self, body: bytes, exchange: str, routing_key: str, headers: dict[str, Any]):
        self.body, self.exchange, self.routing_key, self.headers = (
            body,
            exchange,
            routing_key,
            headers,
        )
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.abandoned = False  # its caller gave up waiting: not to be published any more

    def resolve(self, error: BaseException | None = None) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


class GroupConfirmPublisher:
    """Publisher confirms by group commit: callers of ``publish`` block until the broker
    confirmed *their* message, but the confirms are waited for per batch, not per message.

    ``lanes`` worker threads (green threads under eventlet) each own one connection and one
    channel in confirm mode. A lane takes every submission waiting in the shared queue (up to
    ``max_batch``), publishes them back to back, then reads confirms until each of them is
    acked or nacked (RabbitMQ acks with ``multiple=True`` when it can). While one lane waits
    for its confirms, the next lane takes what arrived in the meantime.

    Outcomes are per message: an ack wakes its caller with success; a nack raises
    ``PublishNacked`` in exactly the callers whose delivery tags were nacked; a connection or
    channel failure, or no confirm within ``confirm_timeout``, raises in the callers of that
    lane's batch only (their messages may or may not have reached the queue: at-least-once,
    and the caller reports failure, so nothing reported as accepted is lost). The lane then
    drops the connection and opens a new one for its next batch.
    """

    def __init__(
        self,
        amqp_uri: str,
        *,
        lanes: int = 2,
        max_batch: int = 500,
        confirm_timeout: float = 10.0,
        declare: list[Any] | None = None,
    ):
        self.amqp_uri = amqp_uri
        self.max_batch = max_batch
        self.confirm_timeout = confirm_timeout
        self.declare = list(declare or [])
        self._queue: Any = queue.Queue()
        self._closed = False
        self._lanes = max(1, lanes)
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self.batches = 0  # how many batches were published (for tests and metrics)
        self.published = 0

    def publish(
        self,
        body: dict[str, Any] | bytes,
        *,
        exchange: str = "",
        routing_key: str,
        headers: dict[str, Any] | None = None,
    ) -> None:
        """Return once the broker confirmed this message; raise if it did not."""
        if self._closed:
            raise PublisherClosed("the publisher is closed")
        if not isinstance(body, bytes):
            body = json.dumps(body, separators=(",", ":"), default=str).encode()
        self._start()
        pending = _Pending(body, exchange, routing_key, headers or {})
        self._queue.put(pending)
        if not pending.done.wait(self.confirm_timeout + 5):
            pending.abandoned = True  # if still queued, it is never published
            raise TimeoutError("no publisher confirm in time")
        if pending.error is not None:
            raise pending.error

    def close(self) -> None:
        self._closed = True
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(self.confirm_timeout + 5)
        self._threads = []
        self._fail_waiting(PublisherClosed("the publisher was closed"))

    def _start(self) -> None:
        if self._threads:
            return
        with self._start_lock:
            if not self._threads and not self._closed:
                self._threads = [
                    threading.Thread(target=self._lane, name=f"confirm-lane-{i}", daemon=True)
                    for i in range(self._lanes)
                ]
                for thread in self._threads:
                    thread.start()

    def _fail_waiting(self, error: BaseException) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                item.resolve(error)

    def _take(self) -> list[_Pending] | None:
        """Block for the first submission, then take whatever else is waiting."""
        first = self._queue.get()
        if first is None:
            return None
        batch = [first]
        while len(batch) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # the stop signal is for the loop, after this batch
                break
            batch.append(item)
        return batch

    def _lane(self) -> None:
        lane = _Lane(self)
        try:
            while True:
                batch = self._take()
                if batch is None:
                    return
                lane.run(batch)
        finally:
            lane.close()


class _Lane:
    """One connection + channel in confirm mode, used by one thread only."""

    def __init__(self, owner: GroupConfirmPublisher):
        self.owner = owner
        self.connection: Connection | None = None
        self.channel: Any = None
        self.next_tag = 1
        self.unconfirmed: dict[int, _Pending] = {}

    def _ensure(self) -> Any:
        if self.channel is None:
            connection = Connection(self.owner.amqp_uri, heartbeat=0, connect_timeout=5)
            try:
                connection.ensure_connection(max_retries=1)
                channel = connection.channel()
                for entity in self.owner.declare:
                    entity(channel).declare()
                channel.confirm_select()
                channel.events["basic_ack"].add(self._on_ack)
                channel.events["basic_nack"].add(self._on_nack)
            except Exception:
                connection.release()
                raise
            self.connection, self.channel, self.next_tag = connection, channel, 1
        return self.channel

    def _settle(self, tag: int, multiple: bool, error: BaseException | None) -> None:
        if multiple:
            for t in [t for t in self.unconfirmed if t <= tag]:
                self.unconfirmed.pop(t).resolve(error)
        else:
            pending = self.unconfirmed.pop(tag, None)
            if pending is not None:
                pending.resolve(error)

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple, None)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._settle(delivery_tag, multiple, PublishNacked("the broker nacked the message"))

    def run(self, batch: list[_Pending]) -> None:
        batch = [pending for pending in batch if not pending.abandoned]
        if not batch:
            return
        try:
            channel = self._ensure()
            with self._one_write():
                for pending in batch:
                    message = Message(
                        pending.body,
                        content_type=JSON,
                        content_encoding="utf-8",
                        delivery_mode=2,  # persistent
                        application_headers=pending.headers,
                    )
                    self.unconfirmed[self.next_tag] = pending
                    self.next_tag += 1
                    channel.basic_publish(
                        message, exchange=pending.exchange, routing_key=pending.routing_key
                    )
            self.owner.batches += 1
            self.owner.published += len(batch)
            connection = self.connection
            assert connection is not None
            deadline = time.monotonic() + self.owner.confirm_timeout
            while self.unconfirmed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("no publisher confirm in time")
                try:
                    connection.drain_events(timeout=remaining)
                except TimeoutError:
                    continue
        except Exception as exc:  # noqa: BLE001 - every caller of this batch learns of it
            log.warning("publishing a batch of %d failed: %r", len(batch), exc)
            for pending in batch:
                pending.resolve(exc)  # those already confirmed keep their success
            self.unconfirmed.clear()
            self.close()

    @contextlib.contextmanager
    def _one_write(self) -> Iterator[None]:
        """The frames of a whole batch in one ``sendall`` instead of one per message: py-amqp
        writes each publish straight to the socket through ``transport._write`` (its frame
        buffer is reused, hence the copy). Without that attribute, frames go out one by one."""
        transport = getattr(getattr(self.connection, "connection", None), "transport", None)
        write = getattr(transport, "_write", None)
        if transport is None or write is None:
            yield
            return
        chunks: list[bytes] = []
        transport._write = lambda data: chunks.append(bytes(data))
        try:
            yield
        finally:
            transport._write = write
        write(b"".join(chunks))

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.release()
            except Exception as exc:  # noqa: BLE001 - closing a dead connection may fail any way
                log.debug("closing a broken AMQP connection: %s", exc)
        self.connection, self.channel = None, None
