"""What a local run shows on screen: the platform so far, used as staff would use it.

It talks to the running services over RabbitMQ only (RPC and events), as the gateway will.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from typing import Any

from kombu import Connection, Queue
from kombu.exceptions import ChannelError
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.amqp import events_exchange
from services.common.config import load_service_config

MUNICIPALITY = "GM0344"
WIJKEN = ["WK034401", "WK034403", "WK034406"]  # West, Overvecht, Zuid


def say(message: str) -> None:
    print(f"[buurtpeil] {message}", flush=True)


def wait_for_services(
    config: dict[str, Any],
    processes: list[tuple[str, subprocess.Popen[bytes]]],
    services: tuple[str, ...] = ("polls",),
    timeout: float = 60,
) -> None:
    """Until every service consumes its RPC queue (a service declares it when it is up)."""
    deadline = time.monotonic() + timeout
    with Connection(config["AMQP_URI"]) as conn:
        for service in services:
            while True:
                dead = [name for name, p in processes if p.poll() is not None]
                if dead:
                    raise RuntimeError(f"{', '.join(dead)} exited; see .run-{dead[0]}.log")
                try:
                    _, _, consumers = conn.channel().queue_declare(f"rpc-{service}", passive=True)
                    if consumers:
                        break
                except ChannelError:
                    pass  # not declared yet
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{service} did not start within {timeout:.0f} s")
                time.sleep(0.3)


def walkthrough(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> str:
    config = {"AMQP_URI": load_service_config("polls")["AMQP_URI"]}
    wait_for_services(config, processes)
    say("services answer over RPC")

    with Connection(config["AMQP_URI"]) as conn:
        # A private queue that sees every polls event, as any consumer would.
        watch = Queue(
            f"walkthrough-{socket.gethostname()}-{time.time_ns()}",
            exchange=events_exchange("polls"),
            routing_key="#",
            exclusive=True,
            auto_delete=True,
        )(conn.channel())
        watch.declare()

        with ClusterRpcProxy(config, timeout=30) as rpc:
            templates = rpc.polls.list_templates()
            say(f"template library: {len(templates)} templates")
            for t in templates:
                size = f"{t['question_count']:>2} vragen, ~{t['estimated_minutes']} min"
                say(f"  {t['id']:<20} {size}  {t['title']}")
            poll = rpc.polls.create_poll(
                MUNICIPALITY,
                {
                    "template_id": "veiligheidsgevoel",
                    "audience": {"kind": "areas", "area_codes": WIJKEN},
                    "reminder_after_hours": [72],
                },
                created_by="walkthrough",
            )
            say(f"draft poll {poll['id']}: {poll['title']!r} for {', '.join(WIJKEN)}")
            published = rpc.polls.publish_poll(MUNICIPALITY, poll["id"])
            say(
                f"published: status={published['status']} version={published['version']} "
                f"hash={published['content_hash'][:12]}…"
            )
            seen = wait_events(watch, 1)
            closed = rpc.polls.close_poll(MUNICIPALITY, poll["id"])
            say(f"closed: status={closed['status']}")
            seen += wait_events(watch, 1)
    names = [e["event"] for e in seen]
    return f"polls: templates={len(templates)} events={','.join(names)}"


def wait_events(queue: Queue, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count:
        message = queue.get(no_ack=True)
        if message is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"expected {count} event(s), saw {len(seen)}")
            time.sleep(0.1)
            continue
        event = json.loads(message.body)
        say(f"event {event['event']} v{event['version']} id={event['event_id']}")
        seen.append(event)
    return seen
