"""kill -9 of a notify process in the middle of sending: after a restart every targeted
resident has been notified; a resident notified twice got the same Topic both times (so a
push service replaces the first copy instead of showing two)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import wait_for
from tests.support import infra
from tests.support.notify import (
    add_resident,
    panel_without_quiet_hours,
    poll_payload,
    publish_event,
    wait_for_consumer,
)

RESIDENTS = 1500


def start_notify(env: dict[str, str], log: Path) -> subprocess.Popen:
    return infra.nameko_run("notify", env, log, mode="ab")


def test_kill_9_mid_batch_loses_nobody(
    databases,
    engines,
    amqp_uri,
    clean_databases,
    push_service,
    jwt_keys,
    tmp_path,
    container_factory,
    service_config,
):
    panel_without_quiet_hours(container_factory, service_config)  # runs at any hour
    engine = engines["notify"]
    residents = [add_resident(engine, push_service) for _ in range(RESIDENTS)]
    env = {
        "AMQP_URI": amqp_uri,
        "NOTIFY_DATABASE_URL": databases["notify"],
        "VAPID_PRIVATE_KEY_FILE": jwt_keys["vapid"],
        "NOTIFY_METRICS_PORT": "0",
        "NOTIFY_DISPATCH_POLL_INTERVAL": "0.2",
        "SMTP_URL": "smtp://127.0.0.1:9",
    }
    log = tmp_path / "notify.log"
    first = start_notify(env, log)
    try:
        wait_for_consumer(amqp_uri, "evt-polls-poll_published--notify.on_poll_published")
        payload = poll_payload(audience={"kind": "municipality"})
        publish_event(amqp_uri, "poll_published", payload)
        wait_for(
            lambda: push_service.decrypted_count >= 200,
            timeout=120,
            message="sending to be under way",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        at_kill = push_service.decrypted_count
        with engine.connect() as conn:
            sent = conn.execute(
                sa.text("SELECT count(*) FROM deliveries WHERE status = 'sent'")
            ).scalar()
        assert at_kill < RESIDENTS, "the kill came too late to test anything"
        assert sent <= at_kill
    finally:
        if first.poll() is None:
            first.kill()

    second = start_notify(env, log)
    try:
        wait_for(
            lambda: reached(push_service, residents) == RESIDENTS,
            timeout=180,
            message="every resident notified after the restart",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)

    duplicates = 0
    for resident in residents:
        topics = [
            d.topic for d in push_service.deliveries_for(resident["subscription"]["endpoint"])
        ]
        assert len(set(topics)) == 1, topics  # same Topic for every copy
        duplicates += len(topics) - 1
    with engine.connect() as conn:
        final = dict(
            conn.execute(sa.text("SELECT status, count(*) FROM deliveries GROUP BY status")).all()
        )
    assert final == {"sent": RESIDENTS}
    # Only what was in flight when the process died can have been sent twice.
    assert duplicates <= at_kill - sent + 4 * 250, (duplicates, at_kill, sent)


def reached(push, residents) -> int:
    return sum(1 for r in residents if push.deliveries_for(r["subscription"]["endpoint"]))
