"""Test-only nameko services that record the domain events they receive."""

from __future__ import annotations

from typing import Any

from services.common.consumers import event_handler


def recorder(source: str, *events: str, name: str = "recorder") -> tuple[type, list[Any]]:
    """A service class that appends every event it handles to the returned list."""
    received: list[Any] = []

    def make_handler(event: str) -> Any:
        @event_handler(source, event)
        def handle(self: Any, evt: Any) -> None:
            received.append(evt)

        handle.__name__ = f"on_{event}"
        return handle

    namespace: dict[str, Any] = {"name": name}
    for event in events:
        namespace[f"on_{event}"] = make_handler(event)
    return type(f"Recorder_{name}", (), namespace), received
