"""What a delivery becomes after an attempt at its participant's devices (channels.settle): one
record per participant, whatever each device's push service answered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.notify.channels import Job, Outcome, Target, settle

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
PHONE, LAPTOP = uuid.UUID(int=1), uuid.UUID(int=2)


def delivery(*devices: uuid.UUID, attempts: int = 0, reached: bool = False) -> Job:
    return Job(
        id=5,
        kind="invitation",
        ref_id=uuid.UUID(int=7),
        poll_id=uuid.UUID(int=7),
        resident_id=uuid.UUID(int=9),
        channel="webpush",
        endpoint_id=None,
        address=None,
        p256dh=None,
        auth=None,
        attempts=attempts,
        queued_at=NOW,
        language="nl",
        quiet_hours=None,
        municipality_code="GM0344",
        targets=[Target(d, "webpush", f"https://push.example/{d}", "k", "a") for d in devices],
        reached=reached,
    )


def answered(job: Job, *outcomes: Outcome) -> list[tuple[Job, Outcome]]:
    return [(job.to(t), o) for t, o in zip(job.targets, outcomes, strict=True)]


def settled(job: Job, *outcomes: Outcome, max_attempts: int = 3):
    return settle(
        job,
        answered(job, *outcomes),
        at=NOW,
        max_attempts=max_attempts,
        retry_delay=lambda attempt, after: max(after or 0.0, 10.0 * attempt),
    )


SENT = Outcome("sent")
GONE = Outcome("gone", error="HTTP 410: gone")
BUSY = Outcome("retry", retry_after=60, error="HTTP 429: slow down")
DOWN = Outcome("retry", error="HTTP 503: down")
REFUSED = Outcome("failed", error="HTTP 413: too large")


def test_a_message_per_device_carries_that_device_s_endpoint_and_keys():
    job = delivery(PHONE, LAPTOP)
    phone, laptop = (job.to(t) for t in job.targets)
    assert (phone.endpoint_id, laptop.endpoint_id) == (PHONE, LAPTOP)
    assert laptop.address == f"https://push.example/{LAPTOP}" and laptop.targets == []
    assert phone.id == laptop.id == job.id  # one delivery


def test_every_device_reached_is_one_sent_delivery():
    update, delay = settled(delivery(PHONE, LAPTOP), SENT, SENT)
    assert (update.status, update.attempts, update.error, delay) == ("sent", 1, None, None)
    assert update.done == (PHONE, LAPTOP) and update.reached == (PHONE, LAPTOP)


def test_a_gone_device_beside_a_reached_one_is_sent_and_says_so():
    update, _ = settled(delivery(PHONE, LAPTOP), SENT, GONE)
    assert update.status == "sent" and update.reached == (PHONE,)
    assert update.error == "HTTP 410: gone"


def test_a_device_to_be_tried_again_keeps_the_delivery_retrying_for_that_device_only():
    update, delay = settled(delivery(PHONE, LAPTOP), SENT, BUSY)
    assert update.status == "retrying" and update.error == "HTTP 429: slow down"
    assert update.done == (PHONE,)  # the next attempt goes to the laptop alone
    assert delay == 60 and update.retry_at == NOW + timedelta(seconds=60)


def test_the_longest_retry_after_of_the_devices_is_waited_for():
    _, delay = settled(delivery(PHONE, LAPTOP), DOWN, BUSY)
    assert delay == 60


def test_after_the_last_attempt_a_device_still_failing_makes_the_delivery_dead():
    update, delay = settled(delivery(LAPTOP, attempts=2, reached=True), DOWN)
    assert (update.status, update.attempts, delay) == ("dead", 3, None)
    assert update.error == "HTTP 503: down" and update.done == ()


@pytest.mark.parametrize(
    ("outcomes", "error"),
    [((GONE, GONE), "HTTP 410: gone"), ((REFUSED, GONE), "HTTP 413: too large")],
)
def test_no_device_reached_is_a_failed_delivery(outcomes, error):
    update, delay = settled(delivery(PHONE, LAPTOP), *outcomes)
    assert (update.status, update.error, delay, update.reached) == ("failed", error, None, ())


def test_a_device_refusing_for_good_is_done_with():
    update, _ = settled(delivery(PHONE, LAPTOP), REFUSED, DOWN)
    assert update.status == "retrying" and update.done == (PHONE,)


def test_nothing_left_to_send_to():
    update, _ = settled(delivery())
    assert update.status == "failed" and "no device" in update.error
    earlier, _ = settled(delivery(reached=True))  # its other devices went meanwhile
    assert earlier.status == "sent" and earlier.error is None


def test_a_device_gone_after_another_was_reached_earlier_leaves_it_sent():
    update, _ = settled(delivery(LAPTOP, attempts=1, reached=True), GONE)
    assert update.status == "sent" and update.attempts == 2
