"""``make run`` starts the gateway once per core (GATEWAY_PROCESSES to choose), every other
process of deploy/Procfile once; it stops what an earlier run left and refuses a taken port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess

from deploy.local import (
    port_taken,
    procfile,
    replicated,
    started_at,
    stop_leftovers,
    taken_ports,
)


def test_the_gateway_runs_as_several_processes_and_the_rest_once(monkeypatch):
    monkeypatch.setenv("GATEWAY_PROCESSES", "3")
    names = [name for name, _ in replicated(procfile())]
    others = [name for name, _ in procfile() if name != "gateway"]
    assert names == others + ["gateway-1", "gateway-2", "gateway-3"]
    commands = {command for name, command in replicated(procfile()) if name.startswith("gateway")}
    assert commands == {dict(procfile())["gateway"]}  # the same command, the same port


def test_one_gateway_process_keeps_its_name(monkeypatch):
    monkeypatch.setenv("GATEWAY_PROCESSES", "1")
    assert [name for name, _ in replicated(procfile())] == [name for name, _ in procfile()]


def test_what_an_earlier_run_left_running_is_stopped_and_only_that(monkeypatch, tmp_path):
    """Defect 15.17: a launcher killed before it could stop its children left them running.
    The next run stops the processes the earlier one recorded — by pid *and* start time, so a
    pid the system has since given to another process is left alone."""
    monkeypatch.setenv("BUURTPEIL_RUN_DIR", str(tmp_path))
    leftover = subprocess.Popen(["sleep", "300"], start_new_session=True)
    bystander = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        (tmp_path / ".run-pids").write_text(
            json.dumps(
                [
                    {"name": "polls", "pid": leftover.pid, "started": started_at(leftover.pid)},
                    # the bystander's pid with another start time: a reused pid
                    {"name": "panel", "pid": bystander.pid, "started": "1"},
                ]
            )
        )
        assert stop_leftovers(grace=5) == [f"polls ({leftover.pid})"]
        assert leftover.wait(timeout=5) == -signal.SIGTERM
        assert bystander.poll() is None
        assert not (tmp_path / ".run-pids").exists()
        assert stop_leftovers() == []  # nothing recorded: nothing to do
    finally:
        for process in (leftover, bystander):
            process.kill()
            process.wait()


def test_a_taken_port_stops_the_start_in_one_line_naming_its_holder(monkeypatch):
    """Defect 15.17: a child whose port was taken failed obscurely later (the gateway, with
    SO_REUSEPORT, would even share the port with a leftover). Now the start stops at once
    with one line naming the process that holds the port and how to stop it."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        monkeypatch.setenv("PUSH_PORT", str(port))
        assert port_taken(port)
        (line,) = [taken for taken in taken_ports() if taken.startswith(f"port {port} ")]
        assert line.startswith(
            f"port {port} (push (fake push service)) is taken by pid {os.getpid()} "
        )
        assert line.endswith(f"; stop it with: kill {os.getpid()}")
    assert not port_taken(port)
