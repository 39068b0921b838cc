"""Broadcast events into per-process memory, and what makes that memory trustworthy.

The gateway keeps two things in memory that events keep fresh: the open polls
(``poll_cache.py``) and the revoked sessions (``revocations.py``). Their handlers listen as a
broadcast with ``reliable_delivery=False``: one exclusive queue per process, which vanishes
with the connection. Events published while the connection is down are never delivered, so
each copy is read again from its owner (a "resync"):

* at start;
* every time the broadcast consumer (re)connects — ``ReconnectAwareQueueConsumer`` calls
  ``on_broker_connected`` of the container's dependency providers after its queues are
  declared and consuming, so anything published after that arrives as an event and
  anything before it is in the snapshot;
* every ``CACHE_RESYNC_INTERVAL`` seconds (30 by default), which bounds how stale a copy can
  be whatever went unnoticed.
"""

from __future__ import annotations

import logging
from typing import Any

from nameko.events import BROADCAST
from nameko.messaging import QueueConsumer

from services.common.consumers import DomainEventHandler

log = logging.getLogger(__name__)


class ReconnectAwareQueueConsumer(QueueConsumer):
    """nameko's queue consumer (a connection of its own), telling the container's dependency
    providers each time it is consuming again after a (re)connection."""

    def on_consume_ready(self, connection: Any, channel: Any, consumers: Any, **kw: Any) -> None:
        super().on_consume_ready(connection, channel, consumers, **kw)
        for provider in list(self.container.dependencies):
            hook = getattr(provider, "on_broker_connected", None)
            if hook is not None:
                try:
                    hook()
                except Exception:  # noqa: BLE001 - never break the consumer loop
                    log.exception("on_broker_connected of %s failed", provider)


class BroadcastHandler(DomainEventHandler):
    """A domain event handler for every process (an exclusive queue per process, nothing kept
    while the process is away), on the reconnect-aware consumer."""

    queue_consumer = ReconnectAwareQueueConsumer()

    def __init__(self, source_service: str, event_type: str, **kwargs: Any):
        kwargs.setdefault("handler_type", BROADCAST)
        kwargs.setdefault("reliable_delivery", False)
        super().__init__(source_service, event_type, **kwargs)


broadcast_handler = BroadcastHandler.decorator
