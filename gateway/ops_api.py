"""Routes for operations: health, readiness, metrics and the API description."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.routing import ROUTES, Reply, RequestContext, route  # ROUTES: filled on import
from gateway.schemas import answers

TAG = "operations"


@route(
    "GET",
    "/healthz",
    tag=TAG,
    summary="The process is alive",
    response=answers.HealthOut,
    calls_services=False,
)
def healthz(ctx: RequestContext) -> Any:
    return {"status": "ok"}


@route(
    "GET",
    "/readyz",
    tag=TAG,
    summary="Ready to serve: the broker and every service answer, the poll cache is synchronised",
    response=answers.ReadinessOut,
)
def readyz(ctx: RequestContext) -> Reply:
    checks = ctx.gateway.readiness()
    ready = all(checks.values())
    return Reply(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
        headers={} if ready else {"Retry-After": "5"},
    )


@route(
    "GET",
    "/metrics",
    tag=TAG,
    summary="Prometheus metrics of the gateway process",
    media_type="text/plain",  # the Prometheus text format (version=0.0.4 or 1.0.0)
    calls_services=False,
)
def prometheus_metrics(ctx: RequestContext) -> Reply:
    return Reply(generate_latest().decode(), content_type=CONTENT_TYPE_LATEST)


@route(
    "GET",
    "/openapi.json",
    tag=TAG,
    summary="This API, as OpenAPI 3.1",
    response=answers.OpenAPIOut,
    calls_services=False,
)
def openapi(ctx: RequestContext) -> Any:
    from gateway.openapi import build_spec

    return build_spec(ROUTES)
