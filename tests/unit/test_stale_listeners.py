"""The suite's guard against greenthreads left waiting on a closed socket (tests/conftest.py):
eventlet keeps such a descriptor number registered, and a later ``subprocess`` pipe that gets
the number fails with "Second simultaneous read on fileno N"."""

from __future__ import annotations

import socket
import subprocess
import threading

import pytest

from tests.conftest import _stale_listeners

eventlet = pytest.importorskip("eventlet")


def test_a_thread_left_in_accept_on_a_closed_socket_is_found_and_woken():
    if not eventlet.patcher.is_monkey_patched("socket"):
        pytest.skip("only eventlet's hub keeps such listeners")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    fileno = server.fileno()
    errors: list[BaseException] = []

    def accept() -> None:
        try:
            server.accept()
        except BaseException as error:  # noqa: BLE001 - what the woken thread gets
            errors.append(error)

    waiting = threading.Thread(target=accept, daemon=True)
    waiting.start()
    eventlet.sleep(0.05)
    assert _stale_listeners() == []  # waiting on an open socket is fine

    server.close()  # without a shutdown first: eventlet does not wake the thread
    assert _stale_listeners() == [fileno]

    eventlet.hubs.get_hub().mark_as_reopened(fileno)  # what the teardown hook does
    waiting.join(5)
    assert not waiting.is_alive() and errors
    assert _stale_listeners() == []
    subprocess.run(["true"], check=True)  # its pipes may take the number again
