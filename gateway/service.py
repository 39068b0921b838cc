"""gateway: the only HTTP face of Buurtpeil — residents' app (/api/v1), municipal staff
(/admin/v1), public open data (/public/v1), operations (/healthz, /readyz, /metrics,
/openapi.json).

Holds nothing persistent. Every route of the table in ``routing.py`` becomes a nameko ``@http``
entrypoint here (so metrics count per route); requests are answered from the poll cache or by
RPC to the owning service, each call bounded by ``RPC_TIMEOUT`` (503 with Retry-After when a
service does not answer). Listens to poll_published / poll_closed as a broadcast, to keep its
cache of open polls, and to sessions_revoked, to keep the list of revoked sessions whose tokens
it refuses (``revocations.py``); both are read again from their owner at start, after every
reconnection to the broker and every ``CACHE_RESYNC_INTERVAL`` seconds (``resync.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import eventlet
import eventlet.queue
from kombu import Connection
from nameko.extensions import DependencyProvider
from nameko.standalone.rpc import ClusterRpcProxy
from werkzeug.wrappers import Request, Response

from gateway.auth import Authenticator
from gateway.errors import RouteNotFound, ServiceUnavailable, problem_response
from gateway.intake import IdempotencyStore, IntakePublisher, Receipts
from gateway.poll_cache import BoundaryCache, InvitationCache, OpenPollCache
from gateway.ratelimit import Limit, RateLimiter
from gateway.resync import broadcast_handler
from gateway.routes import ROUTES
from gateway.routing import Route, dispatch
from gateway.settings import GatewaySettings
from gateway.sharedstate import SharedState
from gateway.webserver import http
from services.common.environment import DevelopmentDefaults
from services.common.logs import LoggingContext
from services.common.metrics import Metrics
from services.common.rpc import ServiceRpc
from services.common.settings import common_settings, settings_of
from web import pages as web_pages

log = logging.getLogger(__name__)


class Cors:
    """CORS for the configured app origins only (``CORS_ORIGINS``, comma separated)."""

    def __init__(self, origins: Iterable[str]):
        self.origins = set(origins)

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
    """What the routes share: authenticator, CORS, the poll cache (per process: kept by
    events, read again from polls at start, on reconnection and periodically); rate limits
    and idempotency records (in Redis, shared by every gateway process)."""

    def setup(self) -> None:
        settings = settings_of(self.container, GatewaySettings.load)
        self.amqp_uri = common_settings(self.container).amqp_uri
        self.authenticator = Authenticator.from_settings(settings)
        self.shared = SharedState.from_settings(settings)
        self.limits = {name: Limit.parse(text) for name, text in settings.rate_limits.items()}
        self.rate_limiter = RateLimiter(self.shared, self.limits)
        self.cors = Cors(settings.cors_origins)
        self.max_body_bytes = settings.max_body_bytes
        self.max_large_body_bytes = settings.max_large_body_bytes
        self.open_polls = OpenPollCache()
        # Seconds between resyncs of the in-memory copies (gateway/resync.py).
        self.resync_interval = settings.cache_resync_interval
        self.synced = {"poll_cache": False, "revocations": False}  # the last resync succeeded
        self._kick: eventlet.queue.LightQueue = eventlet.queue.LightQueue()
        self._connections = 0
        self.boundaries = BoundaryCache()
        self.invitations = InvitationCache()
        self.idempotency = IdempotencyStore(self.shared)
        self.receipts = Receipts(settings.receipt_secret.reveal())
        self.intake = IntakePublisher(self.amqp_uri, settings.intake_publish_channels)

    def start(self) -> None:
        self.container.spawn_managed_thread(self._resync_loop, identifier="resync_caches")

    def stop(self) -> None:
        self.intake.close()
        self.shared.close()

    kill = stop

    def on_broker_connected(self) -> None:
        """The broadcast consumer is consuming again (gateway/resync.py): events published
        while it was away are lost, so the copies are stale until read again."""
        self._connections += 1
        if self._connections > 1:
            log.warning("broker connection restored: resynchronising the caches")
            self.synced = dict.fromkeys(self.synced, False)
        self._kick.put(None)

    def _resync_loop(self) -> None:
        """Read every copy from its owner at start, after each reconnection and every
        ``resync_interval`` seconds; after a failure again soon (backing off to 10 s)."""
        delay = 0.5
        while True:
            ok = self.resync()
            try:
                self._kick.get(timeout=self.resync_interval if ok else delay)
                while not self._kick.empty():  # several reconnections: one resync
                    self._kick.get_nowait()
            except eventlet.queue.Empty:
                pass
            delay = 0.5 if ok else min(delay * 2, 10)

    def resync(self) -> bool:
        """One resync of every copy; True when all succeeded. ``synced`` says which did (the
        readiness checks)."""
        try:
            with ClusterRpcProxy(self.container.config, timeout=10) as rpc:
                self._resync_one("poll_cache", lambda: self._load_polls(rpc))
                self._resync_one(
                    "revocations",
                    lambda: self.authenticator.revoked.load(rpc.panel.revoked_sessions()),
                )
        except Exception as exc:  # noqa: BLE001 - the broker itself is away
            log.warning("resynchronising the caches failed (%s); retrying", exc)
            self.synced = dict.fromkeys(self.synced, False)
        return all(self.synced.values())

    def _resync_one(self, name: str, load: Any) -> None:
        try:
            load()
            self.synced[name] = True
        except Exception as exc:  # noqa: BLE001 - the owner not up (yet): retry
            log.warning("resynchronising %s failed (%s); retrying", name, exc)
            self.synced[name] = False

    def _load_polls(self, rpc: Any) -> None:
        self.open_polls.begin_resync()
        try:
            self.open_polls.load(rpc.polls.list_open_polls())
        except BaseException:
            self.open_polls.abort_resync()
            raise
        log.info("poll cache synchronised: %d open polls", len(self.open_polls))

    def get_dependency(self, worker_ctx: Any) -> GatewayState:
        return self


def make_entrypoint(route: Route) -> Any:
    def entry(self: Any, request: Request, **params: str) -> Response:
        return dispatch(self, route, request, params)

    entry.__name__ = route.name
    entry.__doc__ = route.summary
    return http(route.method, route.path)(entry)


# The services the gateway calls.
SERVICES = ("polls", "panel", "notify", "responses", "feedback")


class GatewayBase:
    name = "gateway"

    state = GatewayState()
    # Every call to a service: at most RPC_TIMEOUT seconds, else 503 with Retry-After.
    remote = ServiceRpc(
        timeout_key="RPC_TIMEOUT", default_timeout=10, unavailable=ServiceUnavailable
    )
    metrics = Metrics()
    log_context = LoggingContext()
    development_defaults = DevelopmentDefaults()  # refused at start outside development
    web_state = web_pages.WebState()

    # What routing.dispatch needs from the worker's service instance.
    @property
    def authenticator(self) -> Authenticator:
        return self.state.authenticator

    @property
    def rate_limiter(self) -> RateLimiter:
        return self.state.rate_limiter

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
    def max_large_body_bytes(self) -> int:
        return self.state.max_large_body_bytes

    @property
    def open_polls(self) -> OpenPollCache:
        return self.state.open_polls

    @property
    def boundaries(self) -> BoundaryCache:
        return self.state.boundaries

    @property
    def invitations(self) -> InvitationCache:
        return self.state.invitations

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
        if service not in SERVICES:
            raise KeyError(service)
        return self.remote.call(service, method, *args, **kwargs)

    def readiness(self) -> dict[str, bool]:
        checks = dict(self.state.synced)
        try:
            with Connection(self.state.amqp_uri, connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1)
            checks["broker"] = True
        except Exception:  # noqa: BLE001 - any failure means not ready
            checks["broker"] = False
        probe_within = self.remote.within(2)
        for service, probe in (
            ("polls", ("list_templates", "veiligheidsgevoel")),
            ("panel", ("list_municipalities",)),
            ("feedback", ("loop_figures", "GM0000")),  # its own tables only, no panel call
        ):
            try:
                probe_within.call(service, *probe)
                checks[service] = True
            except Exception:  # noqa: BLE001 - not answering in time is not ready too
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

    @broadcast_handler("polls", "poll_published")
    def on_poll_published(self, event: Any) -> None:
        self.state.open_polls.published(event.payload)

    @broadcast_handler("polls", "poll_closed")
    def on_poll_closed(self, event: Any) -> None:
        self.state.open_polls.closed(event.payload["poll_id"])

    @broadcast_handler("panel", "sessions_revoked")
    def on_sessions_revoked(self, event: Any) -> None:
        self.state.authenticator.revoked.add(
            event.payload["session_ids"], event.payload["expires_at"]
        )


def build_service() -> type:
    """One nameko entrypoint per route of the table, named after the route, and one per page
    of the web apps (``web/``, mounted here: the pages call the same route functions)."""
    pages = web_pages.entrypoints()
    clashes = [n for n in [r.name for r in ROUTES] + list(pages) if hasattr(GatewayBase, n)]
    if clashes:  # a route named like a dependency would silently replace it
        raise RuntimeError(f"route names clash with the gateway's attributes: {clashes}")
    entrypoints = {r.name: make_entrypoint(r) for r in ROUTES}
    return type("GatewayService", (GatewayBase,), {**entrypoints, **pages})


GatewayService = build_service()
