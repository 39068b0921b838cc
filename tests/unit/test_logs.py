"""The service logs: an RPC's expected error is an answer, not a fault."""

import logging
import sys

from services.common.logs import quiet_expected_errors


def _record(level, msg, exc=True):
    try:
        raise LookupError("no such receipt (yet)")
    except LookupError:
        exc_info = sys.exc_info() if exc else None
    return logging.LogRecord("nameko.containers", level, __file__, 1, msg, ("w", "e"), exc_info)


def test_an_expected_error_becomes_a_debug_line_without_traceback():
    record = _record(logging.WARNING, "(expected) error handling worker %s: %s")
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.INFO)
    try:
        assert quiet_expected_errors(record) is False  # dropped at INFO
        root.setLevel(logging.DEBUG)
        record = _record(logging.WARNING, "(expected) error handling worker %s: %s")
        assert quiet_expected_errors(record) is True  # kept, as debug, when asked for
    finally:
        root.setLevel(previous)
    assert record.levelname == "DEBUG" and record.exc_info is None


def test_an_unexpected_error_keeps_its_level_and_traceback():
    record = _record(logging.ERROR, "error handling worker %s: %s")
    assert quiet_expected_errors(record) is True
    assert record.levelno == logging.ERROR and record.exc_info is not None
