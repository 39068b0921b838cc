"""Retries with backoff, and dead-letter queues that operations can inspect and replay.

A message whose handler fails is acked and republished, with its attempt count in a header,
to a delay queue; when the delay expires RabbitMQ dead-letters it back to the queue it came
from (and only that queue: other consumers of the same event never see the retry). After
``max_attempts`` it goes to ``<queue>.dlq`` instead, with the reason and the last error in its
headers, and the ``buurtpeil_dead_letters_total`` counter goes up. A message that can never
succeed (it does not match the event catalogue) goes to the dead-letter queue at once.

Delay queues are shared by every consumer: one per backoff level, bound to the headers exchange
``buurtpeil.retry``. Each message carries its own expiry (the level's delay plus up to 25 %
jitter), so retries of many failures spread out instead of arriving together. They are quorum
queues (per-message TTL since RabbitMQ 3.10) that dead-letter at-least-once, so a retry
waiting there survives the loss of a cluster node, and is not dropped between the delay queue
and its target. (Until issue 16 they were classic queues behind ``buurtpeil.delay``; new names,
because RabbitMQ cannot change a queue's type, and a new exchange, so a retry is never routed
to an old and a new queue at once. The old ones empty themselves and can then be deleted.)

Operations::

    python -m services.common.deadletter show  <queue>.dlq [--limit 20]
    python -m services.common.deadletter replay <queue>.dlq [--limit N]

``replay`` moves messages back to their original queue with the attempt count reset.

**Retention.** Dead letters of queues that carry personal data — consumers of the events the
catalogue marks ``personal`` (resident_joined/updated/left, response_recorded) and the
``responses.intake`` work queue — are published with a per-message TTL (``expiration``),
``DEAD_LETTER_RETENTION`` seconds (default 14 days): an erased resident's profile or answers do
not wait in a dead-letter queue for ever. A per-message TTL, not the queue argument
``x-message-ttl``: a queue's arguments cannot change once declared (redeclaring an existing
``….dlq`` with another argument fails with PRECONDITION_FAILED), and a per-message TTL needs no
new queue names and no policy. Messages dead-lettered before have no TTL: see
docs/operations.md for the one-off policy that expires them.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from kombu import Exchange, Queue

from services.common.amqp import ConfirmingPublisher, connect
from services.common.events import CATALOGUE
from services.common.metrics import DEAD_LETTERS
from services.common.settings import DEFAULT_RETENTION, DEFAULT_RETRY_DELAYS

ATTEMPT_HEADER = "buurtpeil-attempt"
DELAY_HEADER = "buurtpeil-delay"
REASON_HEADER = "buurtpeil-dead-reason"
ERROR_HEADER = "buurtpeil-error"
ORIGIN_HEADER = "buurtpeil-origin-queue"
FAILED_AT_HEADER = "buurtpeil-failed-at"

DEFAULT_DELAYS = DEFAULT_RETRY_DELAYS  # RETRY_DELAYS unset (services/common/settings.py)
_EVENT_QUEUE = re.compile(r"^evt-[\w]+-(\w+)--")


def carries_personal_data(queue: str) -> bool:
    """Whether a consumer queue (``evt-<source>-<event>--<service>.<method>``) receives an
    event the catalogue marks personal."""
    match = _EVENT_QUEUE.match(queue)
    return match is not None and bool(getattr(CATALOGUE.get(match.group(1)), "personal", False))


DELAY_EXCHANGE = Exchange("buurtpeil.retry", type="headers", durable=True, auto_delete=False)


def dlq_name(queue: str) -> str:
    return f"{queue}.dlq"


def dead_letter_queue(queue: str) -> Queue:
    return Queue(
        dlq_name(queue),
        exchange="",
        routing_key=dlq_name(queue),
        durable=True,
        auto_delete=False,
        queue_arguments={"x-queue-type": "quorum"},
    )


def delay_queue(seconds: float) -> Queue:
    label = f"{int(seconds * 1000)}ms"
    return Queue(
        f"buurtpeil.retry.{label}",
        exchange=DELAY_EXCHANGE,
        binding_arguments={"x-match": "all", DELAY_HEADER: label},
        durable=True,
        auto_delete=False,
        # Expired messages go to the default exchange under their own routing key, which is
        # the name of the queue they failed in; at-least-once dead-lettering (it needs
        # reject-publish overflow) keeps each until its target queue has confirmed it.
        queue_arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": "",
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        },
    )


def attempt_of(headers: dict[str, Any] | None) -> int:
    try:
        return max(1, int((headers or {}).get(ATTEMPT_HEADER, 1)))
    except (TypeError, ValueError):
        return 1


def backoff_seconds(attempt: int, delays: Sequence[float]) -> float:
    """Delay before attempt ``attempt + 1``: the level for this attempt, with 0–25 % jitter."""
    base = delays[min(attempt - 1, len(delays) - 1)]
    return base * (1 + random.random() * 0.25)


def publish_delayed(
    publisher: ConfirmingPublisher,
    *,
    queue: str,
    body: Any,
    headers: dict[str, Any],
    seconds: float,
    level: float,
) -> None:
    """Send ``body`` back to ``queue`` after ``seconds``, through the delay queue of ``level``
    (messages in one level queue expire in about the same time, so none waits behind a
    longer one for long)."""
    delay = delay_queue(level)
    publisher.publish(
        body,
        exchange=DELAY_EXCHANGE,
        routing_key=queue,
        # kombu's Queue sets binding_arguments from its attrs table, which its types miss.
        headers={**headers, DELAY_HEADER: delay.binding_arguments[DELAY_HEADER]},  # type: ignore[attr-defined]
        declare=[delay],
        expiration=seconds,
    )


def _error_text(exc_info: Any) -> str:
    text = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
    return text[:1000]


class RetryPolicy:
    """Where a failed message goes next. Shared by every consumer of a service process."""

    def __init__(
        self,
        amqp_uri: str,
        *,
        delays: Sequence[float] = DEFAULT_DELAYS,
        max_attempts: int | None = None,
        retention: float = DEFAULT_RETENTION,
        personal: bool = False,
    ):
        """``retention``: how long a dead letter holding personal data is kept; ``personal``:
        every queue of this policy holds personal data (else the event queues the catalogue
        marks personal do)."""
        self.publisher = ConfirmingPublisher(amqp_uri)
        self.delays = tuple(delays)
        self.max_attempts = max_attempts or len(self.delays) + 1
        self.retention = retention
        self.personal = personal

    def retention_of(self, queue: str) -> float | None:
        """The TTL of a dead letter from ``queue``: None (kept until replayed or purged) unless
        the queue carries personal data."""
        return self.retention if self.personal or carries_personal_data(queue) else None

    def handle_failure(
        self, queue: str, body: Any, headers: dict[str, Any] | None, exc_info: Any
    ) -> str:
        """Schedule a retry or dead-letter; return what was done ("retried"/"dead_lettered")."""
        attempt = attempt_of(headers)
        if attempt >= self.max_attempts:
            self.dead_letter(
                queue, body, headers, reason="max_attempts", error=_error_text(exc_info)
            )
            return "dead_lettered"
        self.retry_later(queue, body, headers, attempt)
        return "retried"

    def retry_later(
        self, queue: str, body: Any, headers: dict[str, Any] | None, attempt: int
    ) -> None:
        new_headers = {**(headers or {}), ATTEMPT_HEADER: attempt + 1}
        publish_delayed(
            self.publisher,
            queue=queue,
            body=body,
            headers=new_headers,
            seconds=backoff_seconds(attempt, self.delays),
            level=self.delays[min(attempt - 1, len(self.delays) - 1)],
        )

    def dead_letter(
        self, queue: str, body: Any, headers: dict[str, Any] | None, *, reason: str, error: str
    ) -> None:
        new_headers = dict(headers or {})
        new_headers.pop(DELAY_HEADER, None)
        new_headers.update(
            {
                REASON_HEADER: reason,
                ERROR_HEADER: error[:1000],
                ORIGIN_HEADER: queue,
                FAILED_AT_HEADER: datetime.now(UTC).isoformat(),
            }
        )
        dlq = dead_letter_queue(queue)
        retention = self.retention_of(queue)
        self.publisher.publish(
            body,
            exchange="",
            routing_key=dlq.name,
            headers=new_headers,
            declare=[dlq],
            **({"expiration": retention} if retention is not None else {}),
        )
        DEAD_LETTERS.labels(queue, reason).inc()

    def close(self) -> None:
        self.publisher.close()


# --- operations ------------------------------------------------------------------------------


def _decode(message: Any) -> Any:
    try:
        return json.loads(message.body)
    except (TypeError, ValueError):
        return message.body if isinstance(message.body, str) else repr(message.body)


def show(amqp_uri: str, dlq: str, limit: int = 20) -> list[dict[str, Any]]:
    """Peek at dead letters without removing them (they are requeued unchanged)."""
    seen: list[dict[str, Any]] = []
    with connect(amqp_uri) as conn:
        channel = conn.channel()
        queue = dead_letter_queue(dlq.removesuffix(".dlq"))(channel)
        queue.declare()
        held = []
        for _ in range(limit):
            message = queue.get(no_ack=False)
            if message is None:
                break
            held.append(message)
            headers = message.headers or {}
            seen.append(
                {
                    "origin": headers.get(ORIGIN_HEADER),
                    "reason": headers.get(REASON_HEADER),
                    "error": headers.get(ERROR_HEADER),
                    "failed_at": headers.get(FAILED_AT_HEADER),
                    "body": _decode(message),
                }
            )
        for message in held:
            message.requeue()
    return seen


def replay(amqp_uri: str, dlq: str, limit: int | None = None) -> int:
    """Move dead letters back to the queue they failed in, attempt count reset."""
    moved = 0
    publisher = ConfirmingPublisher(amqp_uri)
    try:
        with connect(amqp_uri) as conn:
            channel = conn.channel()
            queue = dead_letter_queue(dlq.removesuffix(".dlq"))(channel)
            queue.declare()
            while limit is None or moved < limit:
                message = queue.get(no_ack=False)
                if message is None:
                    break
                headers = dict(message.headers or {})
                origin = headers.get(ORIGIN_HEADER) or dlq.removesuffix(".dlq")
                for key in (
                    ATTEMPT_HEADER,
                    REASON_HEADER,
                    ERROR_HEADER,
                    ORIGIN_HEADER,
                    FAILED_AT_HEADER,
                    DELAY_HEADER,
                ):
                    headers.pop(key, None)
                publisher.publish(
                    _decode(message), exchange="", routing_key=origin, headers=headers
                )
                message.ack()  # only after the broker confirmed the republish
                moved += 1
    finally:
        publisher.close()
    return moved


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.common.deadletter",
        description="Inspect and replay dead-letter queues.",
    )
    parser.add_argument("command", choices=["show", "replay"])
    parser.add_argument("queue", help="the dead-letter queue, e.g. evt-polls-poll_closed--x.y.dlq")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--amqp-uri", default="amqp://guest:guest@127.0.0.1:5672//")
    args = parser.parse_args(argv)
    if args.command == "show":
        for item in show(args.amqp_uri, args.queue, args.limit or 20):
            print(json.dumps(item, ensure_ascii=False, default=str))
    else:
        print(f"replayed {replay(args.amqp_uri, args.queue, args.limit)} message(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
