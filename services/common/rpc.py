"""RPC in both directions: ``@rpc`` to answer, ``ServiceRpc`` to call with a time limit.

``@rpc``: nameko's RPC entrypoint, made to survive a reply it cannot send.

nameko sends an RPC's reply from the worker that ran it; when the broker is away at that moment
(a restart, a node lost) the publish raises in the worker, and nameko treats any error there as
fatal: the whole service container stops, and with it the process — one RPC answered during a
broker restart took notify down in the fault suite. A reply that cannot be sent is instead
logged and dropped here: the request stays unacknowledged, so RabbitMQ delivers it again once
the consumer has reconnected (our RPCs are reads or idempotent writes), and the caller, whose
reply queue went with the broker connection anyway, has long timed out and answered 503.
"""

from __future__ import annotations

import logging
from typing import Any

import eventlet
from nameko.containers import WorkerContext
from nameko.exceptions import UnknownService
from nameko.extensions import DependencyProvider, Entrypoint
from nameko.rpc import MethodProxy, ReplyListener
from nameko.rpc import Rpc as NamekoRpc

from services.common.amqp import BROKER_GONE
from services.common.errors import Unavailable
from services.common.settings import read_number

log = logging.getLogger(__name__)


class Rpc(NamekoRpc):
    def handle_result(self, message: Any, worker_ctx: Any, result: Any, exc_info: Any) -> Any:
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except BROKER_GONE as exc:
            log.warning(
                "rpc %s: the reply could not be sent (%s); the request comes again after the "
                "broker connection is back",
                worker_ctx.entrypoint.method_name,
                exc,
            )
            return result, exc_info


rpc = Rpc.decorator


class RpcCaller:
    """``call(service, method, *args, **kwargs)``: one RPC, answered within ``timeout`` seconds
    or raised as ``unavailable`` — as it is when the service is not running at all (no consumer
    on its queue: nameko's UnknownService). Errors the service raised come through as they are."""

    def __init__(
        self,
        worker_ctx: Any,
        reply_listener: ReplyListener,
        timeout: float,
        unavailable: type[Exception],
    ):
        self.worker_ctx = worker_ctx
        self.reply_listener = reply_listener
        self.timeout = timeout
        self.unavailable = unavailable

    def call(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        proxy = MethodProxy(self.worker_ctx, service, method, self.reply_listener)
        try:
            reply = proxy.call_async(*args, **kwargs)
            with eventlet.Timeout(self.timeout):
                return reply.result()
        except eventlet.Timeout:
            raise self.unavailable(f"the {service} service did not answer in time") from None
        except UnknownService:
            raise self.unavailable(f"the {service} service is not running") from None

    def within(self, seconds: float) -> RpcCaller:
        """The same caller with another time limit (a readiness probe's short one)."""
        return RpcCaller(self.worker_ctx, self.reply_listener, seconds, self.unavailable)


class _Outside(Entrypoint):
    """Stands for "no entrypoint" in the context of calls made outside any worker."""

    method_name = "outside_worker"


class ServiceRpc(DependencyProvider):
    """Inject an :class:`RpcCaller`: ``self.remote.call("panel", "get_settings", code)``.

    The one way a service calls another (gateway, feedback, notify), on the container's shared
    RPC reply queue. A caller does not wait for ever on a service that hangs: the limit is the
    config value ``timeout_key`` (``default_timeout`` if unset), and the error raised is
    ``unavailable`` (``Unavailable``: 503 at the gateway, with Retry-After).
    """

    rpc_reply_listener = ReplyListener()

    def __init__(
        self,
        *,
        timeout_key: str = "RPC_TIMEOUT",
        default_timeout: float = 10.0,
        unavailable: type[Exception] = Unavailable,
    ):
        self.timeout_key = timeout_key
        self.default_timeout = default_timeout
        self.unavailable = unavailable
        self.timeout = default_timeout

    def setup(self) -> None:
        self.timeout = read_number(self.container, self.timeout_key, self.default_timeout)

    def get_dependency(self, worker_ctx: Any) -> RpcCaller:
        return RpcCaller(worker_ctx, self.rpc_reply_listener, self.timeout, self.unavailable)

    def outside_worker(self) -> RpcCaller:
        """A caller for a provider's process-wide code, which no worker runs (notify's cache
        of municipality settings, filled from whichever worker needs it first)."""
        context = WorkerContext(self.container, service=None, entrypoint=_Outside)
        return RpcCaller(context, self.rpc_reply_listener, self.timeout, self.unavailable)

    @staticmethod
    def of(container: Any) -> ServiceRpc:
        """The ServiceRpc dependency of a container."""
        return next(d for d in container.dependencies if isinstance(d, ServiceRpc))
