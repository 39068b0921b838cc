"""The submission path at the gateway: Idempotency-Key handling (IETF
draft-ietf-httpapi-idempotency-key-header), signed receipts, and publishing to the responses
intake queue with publisher confirms.

Idempotency records live in Redis (``sharedstate.py``), so a repeat gets the stored answer
whichever gateway process it reaches. A record is "in flight" for at most ``IN_FLIGHT_TTL``
seconds (a process killed mid-request does not block the key for long), then done for 24 h.
When Redis does not answer, a submission goes ahead without a record: a repeat is then
absorbed downstream — responses keeps one response per resident and poll and rejects the
second with ``already_answered``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from gateway.sharedstate import SharedState
from services.common.amqp import GroupConfirmPublisher
from services.common.intake import INTAKE_QUEUE, intake_queue

IDEMPOTENCY_TTL = 24 * 3600
# Longer than any submission can take (publisher confirm timeout 15 s), short enough that a
# key whose first request died with its process can be retried within a minute.
IN_FLIGHT_TTL = 60


@dataclass
class IdempotencyRecord:
    fingerprint: str
    done: bool = False
    status: int = 0
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def dumps(self) -> str:
        return json.dumps(
            {
                "fingerprint": self.fingerprint,
                "done": self.done,
                "status": self.status,
                "body": self.body,
                "headers": self.headers,
            },
            separators=(",", ":"),
            default=str,
        )

    @classmethod
    def loads(cls, raw: bytes | str) -> IdempotencyRecord:
        return cls(**json.loads(raw))


class IdempotencyStore:
    """One record per (scope, key) in Redis, shared by every gateway process."""

    STORE = "idempotency"

    def __init__(self, shared: SharedState):
        self.shared = shared

    def _key(self, scope: str, key: str) -> str:
        return self.shared.key("idem", scope, key)

    def begin(self, scope: str, key: str, fingerprint: str) -> tuple[str, IdempotencyRecord | None]:
        """("new", None) to go ahead; ("replay", record), ("conflict", None) for a different
        body, ("in_flight", None) while the first request runs. Without Redis: ("new", None)."""
        claim = IdempotencyRecord(fingerprint).dumps()

        def claim_or_read() -> tuple[str, IdempotencyRecord | None]:
            # SET NX GET (Redis >= 7.0): claims the key, or returns what holds it — atomically.
            existing = self.shared.client.set(
                self._key(scope, key), claim, nx=True, get=True, ex=IN_FLIGHT_TTL
            )
            if existing is None:
                return "new", None
            # redis-py types each command for its sync and async clients at once.
            record = IdempotencyRecord.loads(existing)  # type: ignore[arg-type]
            if record.fingerprint != fingerprint:
                return "conflict", None
            return ("replay", record) if record.done else ("in_flight", None)

        return self.shared.call(self.STORE, claim_or_read, lambda: ("new", None))

    def finish(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        *,
        status: int,
        body: Any,
        headers: dict[str, str],
    ) -> None:
        """The answer to replay for this key (and this body) for ``IDEMPOTENCY_TTL``."""
        record = IdempotencyRecord(fingerprint, True, status, body, headers).dumps()
        self.shared.call(
            self.STORE,
            lambda: self.shared.client.set(self._key(scope, key), record, ex=IDEMPOTENCY_TTL),
            lambda: None,
        )

    def claim_answer(self, participant: str, poll_id: str, ttl: int) -> bool:
        """A business or organisation answers a poll once, whichever contact sends it: the
        first submission claims (participant, poll) for ``ttl`` seconds, a later one gets
        False (the gateway answers 409 at once rather than a receipt rejected later).
        Without Redis: True (responses still keeps one answer per participant and poll)."""

        def claim() -> bool:
            key = self.shared.key("answered", poll_id, participant)
            return bool(self.shared.client.set(key, "1", nx=True, ex=max(ttl, 60)))

        return self.shared.call(self.STORE, claim, lambda: True)

    def release_answer(self, participant: str, poll_id: str) -> None:
        """The claimed submission was not accepted after all: another contact may answer."""
        self.shared.call(
            self.STORE,
            lambda: self.shared.client.delete(self.shared.key("answered", poll_id, participant)),
            lambda: 0,
        )

    def forget(self, scope: str, key: str) -> None:
        """The request failed before anything was accepted: a retry may go ahead."""
        self.shared.call(
            self.STORE, lambda: self.shared.client.delete(self._key(scope, key)), lambda: 0
        )


def fingerprint(body: Any) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


class Receipts:
    """Receipt ids the resident can show later: ``<uuid>.<tag>``, the tag an HMAC of the id and
    the resident who submitted, so the gateway can say "accepted" for its own receipts without
    storing them, and only to that resident (anyone else: no such receipt)."""

    def __init__(self, secret: str):
        self.secret = secret.encode()

    def issue(self, holder: str) -> tuple[str, str]:
        receipt = str(uuid.uuid4())
        return receipt, self.token_for(receipt, holder)

    def token_for(self, receipt: str, holder: str) -> str:
        """The token ``holder`` reads the receipt ``receipt`` with."""
        return f"{receipt}.{self._tag(receipt, holder)}"

    def verify(self, token: str, holder: str) -> str | None:
        receipt, _, tag = str(token).partition(".")
        if not tag or not tag.isascii():  # compare_digest takes ASCII strings only
            return None
        return receipt if hmac.compare_digest(tag, self._tag(receipt, holder)) else None

    def _tag(self, receipt: str, holder: str) -> str:
        message = f"{receipt}|{holder}".encode("utf-8", "surrogatepass")
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:16]


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
