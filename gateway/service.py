"""gateway: the only HTTP face of Buurtpeil — residents' app (/api/v1), municipal staff
(/admin/v1), public open data (/public/v1), operations (/healthz, /readyz, /metrics,
/openapi.json).

Holds nothing persistent. Every route of the table in ``routing.py`` becomes a nameko ``@http``
entrypoint here (so metrics count per route); requests are answered from the poll cache or by
RPC to the owning service, each call bounded by ``RPC_TIMEOUT`` (503 with Retry-After when a
service does not answer). Listens to poll_published / poll_closed as a broadcast, to keep its
cache of open polls.
"""

from __future__ import annotations

import logging
from typing import Any

import eventlet
from kombu import Connection
from nameko.dependency_providers import Config
from nameko.events import BROADCAST
from nameko.exceptions import UnknownService
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy
from nameko.standalone.rpc import ClusterRpcProxy
from werkzeug.wrappers import Request, Response

from gateway.auth import Authenticator
from gateway.errors import RouteNotFound, ServiceUnavailable, problem_response
from gateway.intake import IdempotencyStore, IntakePublisher, Receipts
from gateway.poll_cache import BoundaryCache, OpenPollCache
from gateway.ratelimit import BucketStore, Limit
from gateway.routes import ROUTES
from gateway.routing import Route, dispatch
from gateway.webserver import http
from services.common.consumers import event_handler
from services.common.logs import LoggingContext
from services.common.metrics import Metrics

log = logging.getLogger(__name__)


class Cors:
    """CORS for the configured app origins only (``CORS_ORIGINS``, comma separated)."""

    def __init__(self, origins: str):
        self.origins = {o.strip() for o in origins.split(",") if o.strip()}

    def decorate(self, request: Request, response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and origin in self.origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Expose-Headers"] = "ETag, Retry-After"
        return response

    def preflight(self, request: Request) -> Response:
        response = Response(status=204)
        if request.path.startswith("/public/"):  # open data: any origin may read it
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Allow-Methods"] = "GET"
            response.headers["Access-Control-Allow-Headers"] = "If-None-Match"
            response.headers["Access-Control-Max-Age"] = "600"
            return response
        if request.headers.get("Origin") in self.origins:
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match"
            )
            response.headers["Access-Control-Max-Age"] = "600"
        return self.decorate(request, response)


class GatewayState(DependencyProvider):
    """Per-process state the routes share: authenticator, rate-limit buckets, CORS, the poll
    cache (warmed from polls at start, then kept by events)."""

    def setup(self) -> None:
        config = self.container.config
        self.authenticator = Authenticator.from_config(config)
        self.buckets = BucketStore()
        self.limits = {
            name: Limit.parse(text) for name, text in (config.get("RATE_LIMITS") or {}).items()
        }
        self.cors = Cors(str(config.get("CORS_ORIGINS", "")))
        self.max_body_bytes = int(config.get("MAX_BODY_BYTES", 1_000_000))
        self.rpc_timeout = float(config.get("RPC_TIMEOUT", 10))
        self.open_polls = OpenPollCache()
        self.boundaries = BoundaryCache()
        self.idempotency = IdempotencyStore()
        self.receipts = Receipts(str(config["RECEIPT_SECRET"]))
        self.intake = IntakePublisher(
            config["AMQP_URI"], int(config.get("INTAKE_PUBLISH_CHANNELS", 8))
        )

    def start(self) -> None:
        self.container.spawn_managed_thread(self._warm, identifier="warm_poll_cache")

    def stop(self) -> None:
        self.intake.close()

    kill = stop

    def _warm(self) -> None:
        delay = 0.5
        while not self.open_polls.warm:
            try:
                with ClusterRpcProxy(self.container.config, timeout=10) as rpc:
                    self.open_polls.load(rpc.polls.list_open_polls())
                log.info("poll cache warm: %d open polls", len(self.open_polls))
            except Exception as exc:  # noqa: BLE001 - polls not up yet: retry
                log.warning("warming the poll cache failed (%s); retrying", exc)
                eventlet.sleep(delay)
                delay = min(delay * 2, 10)

    def get_dependency(self, worker_ctx: Any) -> GatewayState:
        return self


def make_entrypoint(route: Route) -> Any:
    def entry(self: Any, request: Request, **params: str) -> Response:
        return dispatch(self, route, request, params)

    entry.__name__ = route.name
    entry.__doc__ = route.summary
    return http(route.method, route.path)(entry)


class GatewayBase:
    name = "gateway"

    state = GatewayState()
    config = Config()
    polls_rpc = RpcProxy("polls")
    panel_rpc = RpcProxy("panel")
    notify_rpc = RpcProxy("notify")
    responses_rpc = RpcProxy("responses")
    feedback_rpc = RpcProxy("feedback")
    metrics = Metrics()
    log_context = LoggingContext()

    # What routing.dispatch needs from the worker's service instance.
    @property
    def authenticator(self) -> Authenticator:
        return self.state.authenticator

    @property
    def buckets(self) -> BucketStore:
        return self.state.buckets

    @property
    def limits(self) -> dict[str, Limit]:
        return self.state.limits

    @property
    def cors(self) -> Cors:
        return self.state.cors

    @property
    def max_body_bytes(self) -> int:
        return self.state.max_body_bytes

    @property
    def open_polls(self) -> OpenPollCache:
        return self.state.open_polls

    @property
    def boundaries(self) -> BoundaryCache:
        return self.state.boundaries

    @property
    def idempotency(self) -> IdempotencyStore:
        return self.state.idempotency

    @property
    def receipts(self) -> Receipts:
        return self.state.receipts

    @property
    def intake(self) -> IntakePublisher:
        return self.state.intake

    def call(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        proxy = {
            "polls": self.polls_rpc,
            "panel": self.panel_rpc,
            "notify": self.notify_rpc,
            "responses": self.responses_rpc,
            "feedback": self.feedback_rpc,
        }[service]
        try:
            reply = getattr(proxy, method).call_async(*args, **kwargs)
            with eventlet.Timeout(self.state.rpc_timeout):
                return reply.result()
        except eventlet.Timeout:
            raise ServiceUnavailable(f"the {service} service did not answer in time") from None
        except UnknownService:  # no consumer on its RPC queue: not running (or not yet)
            raise ServiceUnavailable(f"the {service} service is not running") from None

    def readiness(self) -> dict[str, bool]:
        checks = {"poll_cache": self.open_polls.warm}
        try:
            with Connection(self.config["AMQP_URI"], connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1)
            checks["broker"] = True
        except Exception:  # noqa: BLE001 - any failure means not ready
            checks["broker"] = False
        for service, probe in (
            ("polls", ("list_templates", "veiligheidsgevoel")),
            ("panel", ("list_municipalities",)),
            ("feedback", ("loop_figures", "GM0000")),  # its own tables only, no panel call
        ):
            try:
                with eventlet.Timeout(2):
                    getattr(getattr(self, f"{service}_rpc"), probe[0])(*probe[1:])
                checks[service] = True
            except (Exception, eventlet.Timeout):  # noqa: BLE001
                checks[service] = False
        return checks

    @http("OPTIONS", "/<path:path>")
    def preflight(self, request: Request, path: str) -> Response:
        return self.state.cors.preflight(request)

    @http("GET,POST,PUT,PATCH,DELETE", "/<path:path>")
    def unknown_route(self, request: Request, path: str) -> Response:
        """Anything no route matches: 404 as problem+json, like every other error."""
        return self.state.cors.decorate(
            request, problem_response(RouteNotFound(f"no route {request.method} /{path}"))
        )

    @event_handler("polls", "poll_published", handler_type=BROADCAST, reliable_delivery=False)
    def on_poll_published(self, event: Any) -> None:
        self.state.open_polls.published(event.payload)

    @event_handler("polls", "poll_closed", handler_type=BROADCAST, reliable_delivery=False)
    def on_poll_closed(self, event: Any) -> None:
        self.state.open_polls.closed(event.payload["poll_id"])


def build_service() -> type:
    """One nameko entrypoint per route of the table, named after the route."""
    clashes = [r.name for r in ROUTES if hasattr(GatewayBase, r.name)]
    if clashes:  # a route named like a dependency would silently replace it
        raise RuntimeError(f"route names clash with the gateway's attributes: {clashes}")
    return type("GatewayService", (GatewayBase,), {r.name: make_entrypoint(r) for r in ROUTES})


GatewayService = build_service()
