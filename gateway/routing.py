"""The route table and what every request goes through.

A route declares everything about itself — method, path, who may call it, its body and query
schemas, its rate limits, the object its path id names — and ``dispatch`` does the rest in one
place: size and media type checks, authentication, role, rate limits, validation, the RPC
calls, the problem+json answer for every error. The OpenAPI document and the tenant-isolation
tests are generated from this same table.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema, ValidationError
from werkzeug.wrappers import Request, Response

from gateway.auth import Principal, authorize
from gateway.errors import (
    BadRequest,
    PayloadTooLarge,
    TooManyRequests,
    UnsupportedMediaType,
    problem_response,
)
from gateway.ratelimit import Limit, retry_after_header
from services.common.errors import InvalidInput
from services.common.metrics import HTTP_RESPONSES
from services.common.validation import flatten_messages


class JSONText(str):
    """A body that is JSON text already (e.g. a cached document from a service): sent as is."""


@dataclass
class Reply:
    """What a handler may return instead of its JSON body: a status, headers, and a body of
    another media type (``content_type`` other than JSON: ``body`` is sent as is, bytes or
    str — e.g. a CSV or XLSX download with its Content-Disposition in ``headers``)."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass(frozen=True)
class Route:
    name: str  # also the nameko entrypoint's method name
    method: str
    path: str  # werkzeug syntax: /admin/v1/polls/<poll_id>
    handler: Callable[[RequestContext], Any]
    summary: str
    tag: str
    auth: str | None = None  # None (public), "resident" or "staff"
    role: str | None = None  # for staff: viewer, editor, admin or platform_admin
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    many: bool = False
    success: int = 200
    limits: tuple[str, ...] = ()  # names of rate-limit rules from config (e.g. "login")
    # What a path id names, for the tenant-isolation tests: "poll", "staff", "template"...
    resource: str | None = None
    tenant_scoped: bool = True
    description: str = ""
    media_type: str = "application/json"  # of the success response (the OpenAPI document)

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"<(?:\w+:)?(\w+)>", self.path)

    @property
    def openapi_path(self) -> str:
        return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", self.path)

    @property
    def changes_state(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")

    @functools.cached_property
    def body_schema(self) -> Schema | None:
        """One instance per route: building a marshmallow schema per request cost 2–7% of the
        gateway's CPU under load (py-spy); ``load`` keeps no state on the instance."""
        return self.body() if self.body else None

    @functools.cached_property
    def query_schema(self) -> Schema | None:
        return self.query() if self.query else None


ROUTES: list[Route] = []


def route(method: str, path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        ROUTES.append(
            Route(name=handler.__name__, method=method, path=path, handler=handler, **kwargs)
        )
        return handler

    return register


@dataclass
class RequestContext:
    request: Request
    route: Route
    principal: Principal | None
    body: dict[str, Any]
    query: dict[str, Any]
    params: dict[str, str]
    gateway: Any  # the worker's service instance: rpc(), cache, config

    def rpc(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.gateway.call(service, method, *args, **kwargs)

    @property
    def municipality(self) -> str:
        assert self.principal is not None and self.principal.municipality_code is not None
        return self.principal.municipality_code


def parse_body(request: Request, route: Route, max_bytes: int) -> dict[str, Any]:
    if route.body is None:
        return {}
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"the body may be at most {max_bytes} bytes")
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    raw = request.get_data(cache=True)
    if len(raw) > max_bytes:  # chunked bodies have no Content-Length
        raise PayloadTooLarge(f"the body may be at most {max_bytes} bytes")
    try:
        data = json.loads(raw or b"null")
    except ValueError as exc:
        raise BadRequest(
            f"the body is not valid JSON ({exc.msg} at position {exc.pos})",
            errors=[{"field": "body", "code": "invalid_json", "message": exc.msg}],
        ) from None
    load(route.body_schema, data, where="body")
    # The owning service validates again and is the authority; it gets the JSON as sent.
    return data


def load(schema: Schema, data: Any, *, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput(
            f"the {where} must be a JSON object",
            [{"field": where, "code": "invalid_type", "message": "expected an object"}],
        )
    try:
        return schema.load(data)
    except ValidationError as exc:
        errors = flatten_messages(exc.messages)
        if where == "query":
            errors = [{**e, "field": f"query.{e['field']}"} for e in errors]
        raise InvalidInput(f"invalid {where}", errors) from None


def dispatch(gateway: Any, route: Route, request: Request, params: dict[str, str]) -> Response:
    try:
        principal = None
        if route.auth is not None:
            principal = gateway.authenticator.authenticate(
                request.headers.get("Authorization"), route.auth
            )
            authorize(principal, route.role)
            check_limit(gateway, "token", principal.subject)
        for rule in route.limits:
            check_limit(gateway, rule, limit_key(rule, request))
        body = parse_body(request, route, gateway.max_body_bytes)
        query = (
            load(route.query_schema, request.args.to_dict(), where="query") if route.query else {}
        )
        context = RequestContext(request, route, principal, body, query, params, gateway)
        result = route.handler(context)
        reply = result if isinstance(result, Reply) else Reply(body=result, status=route.success)
        response = to_response(reply)
    except Exception as exc:  # noqa: BLE001 - every error becomes problem+json, never a trace
        response = problem_response(exc)
    HTTP_RESPONSES.labels(route.name, str(response.status_code)).inc()
    return gateway.cors.decorate(request, response)


def to_response(reply: Reply) -> Response:
    if reply.status == 204 or reply.status == 304:
        return Response(status=reply.status, headers=reply.headers)
    if isinstance(reply.body, JSONText):
        payload = str(reply.body)
    elif reply.content_type == "application/json":
        payload = json.dumps(reply.body, ensure_ascii=False, default=str)
    else:
        payload = reply.body
    return Response(
        payload, status=reply.status, headers=reply.headers, content_type=reply.content_type
    )


def limit_key(rule: str, request: Request) -> str:
    """Per client address; the login rule also per e-mail address (account guessing)."""
    address = request.remote_addr or "unknown"
    if rule == "login" and request.mimetype == "application/json":
        try:
            email = str(json.loads(request.get_data(cache=True) or b"{}").get("email", ""))
        except (ValueError, AttributeError):
            email = ""
        return f"{address}|{email.lower()}"
    return address


def check_limit(gateway: Any, rule: str, key: str) -> None:
    limit: Limit | None = gateway.limits.get(rule)
    if limit is None:
        return
    wait = gateway.buckets.take(rule, key, limit)
    if wait is not None:
        raise TooManyRequests(
            f"too many requests; try again in {retry_after_header(wait)} s",
            headers={"Retry-After": retry_after_header(wait)},
        )
