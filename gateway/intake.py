"""The submission path at the gateway: Idempotency-Key handling (IETF
draft-ietf-httpapi-idempotency-key-header), signed receipts, and publishing to the responses
intake queue with publisher confirms.

Idempotency records live in this process's memory for 24 h (bounded): a repeat must reach the
same gateway process to get the stored answer (sticky sessions by token), otherwise it is
absorbed downstream — responses keeps one response per resident and poll and rejects the
second with ``already_answered``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from services.common.amqp import GroupConfirmPublisher
from services.responses.service import INTAKE_QUEUE, intake_queue

IDEMPOTENCY_TTL = 24 * 3600


@dataclass
class IdempotencyRecord:
    fingerprint: str
    created: float
    done: bool = False
    status: int = 0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class IdempotencyStore:
    def __init__(self, max_entries: int = 200_000):
        self.max_entries = max_entries
        self._records: OrderedDict[tuple[str, str], IdempotencyRecord] = OrderedDict()
        self._lock = threading.Lock()

    def begin(self, scope: str, key: str, fingerprint: str) -> tuple[str, IdempotencyRecord | None]:
        """("new", None) to go ahead; ("replay", record), ("conflict", None) for a different
        body, ("in_flight", None) while the first request runs."""
        now = time.monotonic()
        with self._lock:
            record = self._records.get((scope, key))
            if record is not None and now - record.created > IDEMPOTENCY_TTL:
                del self._records[(scope, key)]
                record = None
            if record is None:
                self._records[(scope, key)] = IdempotencyRecord(fingerprint, now)
                while len(self._records) > self.max_entries:
                    self._records.popitem(last=False)
                return "new", None
            if record.fingerprint != fingerprint:
                return "conflict", None
            return ("replay", record) if record.done else ("in_flight", None)

    def finish(self, scope: str, key: str, status: int, body: Any, headers: dict[str, str]) -> None:
        with self._lock:
            record = self._records.get((scope, key))
            if record is not None:
                record.done, record.status, record.body, record.headers = (
                    True,
                    status,
                    body,
                    headers,
                )

    def forget(self, scope: str, key: str) -> None:
        """The request failed before anything was accepted: a retry may go ahead."""
        with self._lock:
            self._records.pop((scope, key), None)


def fingerprint(body: Any) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


class Receipts:
    """Receipt ids the resident can show later: ``<uuid>.<tag>``, the tag an HMAC, so the
    gateway can say "accepted" for its own receipts without storing them."""

    def __init__(self, secret: str):
        self.secret = secret.encode()

    def issue(self) -> tuple[str, str]:
        receipt = str(uuid.uuid4())
        return receipt, f"{receipt}.{self._tag(receipt)}"

    def verify(self, token: str) -> str | None:
        receipt, _, tag = str(token).partition(".")
        return receipt if tag and hmac.compare_digest(tag, self._tag(receipt)) else None

    def _tag(self, receipt: str) -> str:
        return hmac.new(self.secret, receipt.encode(), hashlib.sha256).hexdigest()[:16]


class IntakePublisher:
    """Submissions to the responses intake queue, each confirmed by the broker before the
    gateway answers 202 — with the confirms waited for in groups (group commit, see
    ``GroupConfirmPublisher``): a request still waits for its own confirm, but one round trip
    to the broker now confirms every submission that arrived while the previous group was
    being confirmed, instead of one each. ``channels`` lanes (connections) pipeline the groups.
    """

    def __init__(self, amqp_uri: str, channels: int = 2, *, max_batch: int = 500):
        self._publisher = GroupConfirmPublisher(
            amqp_uri, lanes=channels, max_batch=max_batch, declare=[intake_queue()]
        )

    def publish(self, submission: dict[str, Any]) -> None:
        self._publisher.publish(submission, exchange="", routing_key=INTAKE_QUEUE)

    def close(self) -> None:
        self._publisher.close()
