"""``make run`` starts the gateway once per core (GATEWAY_PROCESSES to choose), every other
process of deploy/Procfile once."""

from __future__ import annotations

from deploy.local import procfile, replicated


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
