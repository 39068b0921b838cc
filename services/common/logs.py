"""JSON logs, one object per line, carrying service, entrypoint and correlation id.

The correlation id travels with every RPC call and event (nameko context data, and the
``correlation_id`` of an event envelope), so one resident action can be followed through all
services' logs.
"""

from __future__ import annotations

import contextvars
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from nameko.extensions import DependencyProvider

CORRELATION_KEY = "correlation_id"
# Never mutated, only replaced (set/reset), so the shared empty default is safe.
_EMPTY: dict[str, str] = {}
_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar(
    "log_context", default=_EMPTY
)


def current_context() -> dict[str, str]:
    return _context.get()


_factory_installed = False


def install_record_factory() -> None:
    """Stamp the worker's context onto each record when it is made, so the JSON formatter
    sees it even when the record is formatted later or in another thread."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.buurtpeil_context = _context.get()
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


def quiet_expected_errors(record: logging.LogRecord) -> bool:
    """nameko logs an RPC's *expected* error (a 404, a 409 the caller turns into an answer) as a
    warning with its traceback — hundreds of lines in a demo for every "no such receipt (yet)".
    They are answers, not faults: a debug line without the traceback. Unexpected errors keep
    their error line and traceback."""
    if record.levelno == logging.WARNING and str(record.msg).startswith("(expected) error"):
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        record.exc_info, record.exc_text = None, None
        return logging.getLogger().isEnabledFor(logging.DEBUG)
    return True


_quiet_installed = False


def install_quiet_expected_errors() -> None:
    global _quiet_installed
    if not _quiet_installed:
        logging.getLogger("nameko.containers").addFilter(quiet_expected_errors)
        _quiet_installed = True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "buurtpeil_context", None) or current_context())
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class LoggingContext(DependencyProvider):
    """Put service, entrypoint and correlation id into every log line a worker writes.

    A worker without a correlation id (a timer, a first HTTP request) starts one, and nameko
    passes it on to the RPC calls and events the worker makes.
    """

    def __init__(self) -> None:
        self._tokens: dict[Any, contextvars.Token[dict[str, str]]] = {}

    def setup(self) -> None:
        install_record_factory()
        install_quiet_expected_errors()

    def worker_setup(self, worker_ctx: Any) -> None:
        correlation_id = worker_ctx.data.get(CORRELATION_KEY) or uuid.uuid4().hex
        worker_ctx.data[CORRELATION_KEY] = correlation_id
        self._tokens[worker_ctx] = _context.set(
            {
                "service": self.container.service_name,
                "entrypoint": worker_ctx.entrypoint.method_name,
                CORRELATION_KEY: correlation_id,
            }
        )

    def worker_teardown(self, worker_ctx: Any) -> None:
        token = self._tokens.pop(worker_ctx, None)
        if token is not None:
            try:
                _context.reset(token)
            except ValueError:  # teardown in another greenlet than setup: nothing to restore
                pass
