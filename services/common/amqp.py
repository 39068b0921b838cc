"""Publishing to RabbitMQ with publisher confirms, outside nameko's own dispatchers.

The outbox relay, the retry/dead-letter machinery and (later) the high-volume work queues
publish through this: every publish waits for the broker's confirm, so "published" means the
broker has taken responsibility for the message.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

from kombu import Connection, Exchange, Producer

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


class ConfirmingPublisher:
    """A producer on its own connection; ``publish`` returns once the broker confirmed.

    Safe to share between greenthreads: publishes take turns on the one channel (a confirm
    must be read by the thread that waits for it).
    """

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._producer: Producer | None = None

    def _ensure(self) -> Producer:
        if self._producer is None:
            self._connection = connect(self.amqp_uri)
            self._connection.ensure_connection(max_retries=3)
            self._producer = Producer(self._connection.channel())
        return self._producer

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
