"""The OpenAPI 3.1 document, generated from the route table and its marshmallow schemas."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from gateway.auth import DATA_ENTRY, ENTRY_ROLES, ROLE_RANK
from gateway.errors import ERROR_STATUSES, ERROR_TABLE, INTERNAL
from gateway.routing import Route, is_json
from gateway.schemas import Problem

TITLES = {p.status: p.title for _, p in ERROR_TABLE} | {INTERNAL.status: INTERNAL.title}


def error_statuses(route: Route) -> list[int]:
    """The errors a route can answer with: those its declaration implies, and those its
    handler or the services behind it raise (``Route.errors``). Any request may also be refused
    with 413 (a body over the limit) or 422 (control characters in a query value) although the
    route takes neither; docs/api.md says so once instead of on every operation."""
    statuses = {500} | set(route.errors)  # 500: ours, whatever the route
    if route.calls_services:
        statuses.add(503)  # a service did not answer
    if route.body is not None:
        statuses |= {400, 413, 415, 422}  # malformed, too large, not JSON, not valid
    if route.query is not None:
        statuses.add(422)
    if route.path_params:
        statuses |= {404, 422}  # nothing (of ours) by that id; control characters in it
    if route.auth is not None:
        statuses |= {401, 429}  # no valid token; the per-token rate limit
    if route.role is not None:
        statuses.add(403)
    if route.limits:
        statuses.add(429)
    return sorted(s for s in statuses if s in ERROR_STATUSES)


def build_spec(routes: list[Route], *, server_url: str = "/") -> dict[str, Any]:
    spec = APISpec(
        title="Buurtpeil API",
        version="1.0.0",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Residents' app (/api/v1), municipal staff (/admin/v1) and "
            "operations. Errors are application/problem+json (RFC 9457)."
        },
        servers=[{"url": server_url}],
    )
    spec.components.schema("Problem", schema=Problem)
    spec.components.security_scheme(
        "resident",
        {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA), typ resident+access"},
    )
    spec.components.security_scheme(
        "staff",
        {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA), typ staff+access"},
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = operation(route)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    return spec.to_dict()


def operation(route: Route) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": route.name,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": [
            {"in": "path", "name": p, "required": True, "schema": {"type": "string"}}
            for p in route.path_params
        ],
        "responses": {},
    }
    if route.description:
        op["description"] = route.description
    if route.role:
        op["description"] = f"{op.get('description', '')} Role: {role_text(route.role)}.".strip()
    if route.auth:
        op["security"] = [{route.auth: []}]
    if route.query is not None:
        op["parameters"].append({"in": "query", "schema": route.query})
    if route.name == "update_poll":
        op["parameters"].append(
            {
                "in": "header",
                "name": "If-Match",
                "required": False,
                "schema": {"type": "string"},
                "description": "the ETag of the poll as read",
            }
        )
    if route.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": route.body}},
        }
    success: dict[str, Any] = {"description": "OK" if route.success < 300 else "No content"}
    if route.success != 204:
        schema: Any = route.response or {"type": "object"}  # none undeclared: a unit test
        if route.many:
            schema = {"type": "array", "items": schema}
        if route.media_type.startswith("text/"):
            schema = {"type": "string"}
        elif not is_json(route.media_type):
            schema = {"type": "string", "format": "binary"}
        success["content"] = {route.media_type: {"schema": schema}}
        if route.name == "create_invitation_batch":  # with Accept: text/csv, the codes as a file
            success["content"]["text/csv"] = {"schema": {"type": "string"}}
    op["responses"][str(route.success)] = success
    if route.name in ("branding", "public_timeline"):
        op["responses"]["304"] = {"description": "Not modified (If-None-Match matched)"}
    if route.name == "readyz":  # not ready: the same JSON document, not a problem
        op["responses"]["503"] = {
            "description": "Not ready: the checks say which part does not answer",
            "content": {"application/json": {"schema": route.response}},
        }
    for status in error_statuses(route):
        if str(status) in op["responses"]:
            continue
        op["responses"][str(status)] = {
            "description": TITLES[status],
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
    return op


def routes_markdown(routes: list[Route]) -> str:
    """The route table of docs/api.md (a test keeps the two in step)."""
    lines = ["| method | path | who | summary |", "|---|---|---|---|"]
    for r in routes:
        who = (
            "public"
            if r.auth is None
            else r.auth
            if r.auth == "resident"
            else f"staff: {', '.join(ENTRY_ROLES) if r.role == DATA_ENTRY else r.role}"
        )
        lines.append(f"| {r.method} | `{r.openapi_path}` | {who} | {r.summary} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m gateway.openapi [--routes-markdown]
    import json
    import sys

    from gateway.routes import ROUTES

    if "--routes-markdown" in sys.argv:
        print(routes_markdown(ROUTES))
    else:
        print(json.dumps(build_spec(ROUTES), indent=2))


def role_text(role: str | None) -> str:
    """Who may use a route that needs ``role`` (gateway/auth.py)."""
    if role == DATA_ENTRY:
        return " or ".join(ENTRY_ROLES)
    if role in ROLE_RANK:
        return f"{role} or higher"
    return str(role)
