"""An RPC whose reply cannot be sent (the broker went away as it answered) must not stop the
service: nameko treats an error in a worker's result handling as fatal to the container, and
one such reply during a broker restart took notify down in the fault suite."""

from __future__ import annotations

import pytest
from kombu.exceptions import OperationalError
from nameko.rpc import Responder
from nameko.standalone.rpc import ClusterRpcProxy

from services.common.rpc import rpc


class Echo:
    name = "echo"

    @rpc
    def echo(self, value: str) -> str:
        return value


def test_a_reply_that_cannot_be_sent_leaves_the_service_running(
    container_factory, amqp_uri, monkeypatch
):
    container = container_factory(Echo, {"AMQP_URI": amqp_uri})
    container.start()
    send_response = Responder.send_response
    failures = []

    def broker_gone_once(self, result, exc_info):
        if not failures:
            failures.append(result)
            raise OperationalError("[Errno 111] ECONNREFUSED")
        return send_response(self, result, exc_info)

    monkeypatch.setattr(Responder, "send_response", broker_gone_once)
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=3) as cluster:
        # The first reply is lost: the caller times out (the gateway would answer 503) ...
        with pytest.raises(Exception):  # noqa: B017, PT011 - nameko's RpcTimeout or eventlet's
            cluster.echo.echo("first")
        assert failures == ["first"]
        # ... and the service is still there to answer the next call.
        assert cluster.echo.echo("second") == "second"
    assert not container._died.ready()  # the container did not stop
