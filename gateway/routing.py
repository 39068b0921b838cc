"""The route table and what every request goes through.

A route declares everything about itself — method, path, who may call it, its body and query
schemas, its rate limits, the object its path id names — and ``dispatch`` does the rest in one
place: size and media type checks, authentication, role, rate limits, validation, the RPC
calls, the answer through its response schema, the problem+json answer for every error. The
OpenAPI document and the tenant-isolation tests are generated from this same table.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import Schema, ValidationError, fields
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from gateway.auth import Principal, authorize
from gateway.errors import (
    BadRequest,
    PayloadTooLarge,
    TooManyRequests,
    UnsupportedMediaType,
    problem_response,
)
from gateway.ratelimit import retry_after_header
from services.common.errors import InvalidInput
from services.common.metrics import HTTP_RESPONSES
from services.common.validation import (
    flatten_messages,
    json_errors,
    loaded_errors,
    single_line_errors,
    text_error,
)

# Bodies: every route takes at most MAX_BODY_BYTES (256 KiB by default), a route with
# ``large_body`` (the area import: KWB CSV + GeoJSON) MAX_LARGE_BODY_BYTES (25 MB; defaults in
# gateway/settings.py). Checked before anything reads the body (werkzeug's max_content_length
# stops reads past it too).


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
    # Statuses the route answers with beyond what error_statuses (gateway/openapi.py) derives
    # from its declaration, e.g. 401 for a link token that is not valid, 409 for a draft.
    errors: tuple[int, ...] = ()
    large_body: bool = False  # may take MAX_LARGE_BODY_BYTES instead of MAX_BODY_BYTES
    # False for a large document (the trend of a series): described by ``response`` but sent
    # as the service built it, not projected per request (docs/benchmarks.md); the OpenAPI
    # conformance test validates it instead. A JSONText answer is never projected.
    project_reply: bool = True
    calls_services: bool = True  # False: answered by the gateway alone (no 503)

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

    @functools.cached_property
    def reply_plan(self) -> Plan:
        return plan_of(self.response()) if self.response else None


# What of an answer a response schema declares: None (the value as it is), ("object", {field:
# plan}) or ("map", plan) for a dict whose values are of one schema; a list is projected item by
# item with the plan of its items.
Plan = tuple[str, Any] | None


def plan_of(schema: Schema) -> Plan:
    return ("object", {name: _field_plan(f) for name, f in schema.fields.items()})


def _field_plan(declared: fields.Field) -> Plan:
    if isinstance(declared, fields.Nested):
        return plan_of(declared.schema)
    if isinstance(declared, fields.List):
        return _field_plan(declared.inner)
    if isinstance(declared, fields.Dict) and declared.value_field is not None:
        inner = _field_plan(declared.value_field)
        return ("map", inner) if inner is not None else None
    return None


def project(plan: Plan, value: Any) -> Any:
    """``value`` with only the fields ``plan`` declares, at every depth, in the order the
    service gave them (so a body that declares everything it holds is sent byte for byte as
    before); values are not converted."""
    if plan is None:
        return value
    if isinstance(value, list):
        return [project(plan, item) for item in value]
    if not isinstance(value, dict):
        return value
    kind, inner = plan
    if kind == "map":
        return {key: project(inner, item) for key, item in value.items()}
    return {key: project(inner[key], item) for key, item in value.items() if key in inner}


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
    signed_in: Principal | None  # None on a route without auth
    body: dict[str, Any]
    query: dict[str, Any]
    params: dict[str, str]
    gateway: Any  # the worker's service instance: rpc(), cache, config

    def rpc(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return self.gateway.call(service, method, *args, **kwargs)

    @property
    def principal(self) -> Principal:
        """Who sent the request, on a route with ``auth`` (dispatch authenticated them)."""
        assert self.signed_in is not None, "a route without auth has no principal"
        return self.signed_in

    @property
    def municipality(self) -> str:
        assert self.principal.municipality_code is not None
        return self.principal.municipality_code


def body_limit(gateway: Any, route: Route) -> int:
    return gateway.max_large_body_bytes if route.large_body else gateway.max_body_bytes


def limit_body(request: Request, max_bytes: int) -> None:
    """Before any read of the body: refuse a declared length over ``max_bytes`` (413), and
    make werkzeug stop any later read (a chunked body, a form) past it."""
    request.max_content_length = max_bytes
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"the body may be at most {max_bytes} bytes")


_BODY = "buurtpeil.body"  # the parsed body (or why it cannot be), kept in the WSGI environ


def read_json(request: Request, max_bytes: int) -> Any:
    """The body as JSON, read once (the login rate limit reads the e-mail address from it
    before the route does). Every way a body can be malformed is a 4xx here: over
    ``max_bytes`` 413; not UTF-8, not JSON, NaN/Infinity, nested too deep for the parser 400.
    (``load`` then refuses nesting deeper than ``MAX_DEPTH``, control characters and unpaired
    surrogates with 422 naming the field, for JSON bodies and web forms alike.)"""
    if _BODY not in request.environ:
        try:
            request.environ[_BODY] = (True, _parse_json(request, max_bytes))
        except Exception as exc:  # noqa: BLE001 - kept, raised again to each reader
            request.environ[_BODY] = (False, exc)
    ok, value = request.environ[_BODY]
    if not ok:
        raise value
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(request: Request, max_bytes: int) -> Any:
    if (
        request.content_length is None
        and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    ):  # the WSGI server gives no end to read up to: werkzeug would read nothing
        raise BadRequest(
            "send the body with a Content-Length",
            errors=[{"field": "body", "code": "length_required", "message": "no length"}],
        )
    try:
        raw = request.get_data(cache=True)
    except RequestEntityTooLarge:
        raise PayloadTooLarge(f"the body may be at most {max_bytes} bytes") from None
    if len(raw) > max_bytes:  # chunked bodies have no Content-Length
        raise PayloadTooLarge(f"the body may be at most {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"the body is not valid UTF-8 (byte {exc.start})",
            errors=[{"field": "body", "code": "invalid_utf8", "message": "send UTF-8"}],
        ) from None
    try:
        data = json.loads(text or "null", parse_constant=_refuse_constant)
    except RecursionError:
        raise BadRequest(
            "the body is nested too deeply",
            errors=[{"field": "body", "code": "too_deep", "message": "nested too deeply"}],
        ) from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers of 4,300+ digits
        message = getattr(exc, "msg", None) or str(exc)
        position = f" at position {exc.pos}" if hasattr(exc, "pos") else ""
        raise BadRequest(
            f"the body is not valid JSON ({message}{position})",
            errors=[{"field": "body", "code": "invalid_json", "message": message}],
        ) from None
    return data


def parse_body(request: Request, route: Route, max_bytes: int) -> dict[str, Any]:
    if route.body is None:
        return {}
    if request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json")
    return read_json(request, max_bytes)


def check_text_inputs(params: dict[str, str], query: dict[str, Any]) -> None:
    """Path parameters and query values with control characters or unpaired surrogates: 422
    naming them (PostgreSQL refuses a NUL in any text)."""
    errors = [
        error
        for where, values in (("path", params), ("query", query))
        for name, value in values.items()
        if isinstance(value, str) and (error := text_error(value, f"{where}.{name}"))
    ]
    if errors:
        raise InvalidInput("the address holds characters that are not allowed", errors)


def load(schema: Schema, data: Any, *, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInput(
            f"the {where} must be a JSON object",
            [{"field": where, "code": "invalid_type", "message": "expected an object"}],
        )
    root = "query" if where == "query" else ""
    errors = json_errors(data, root=root) or single_line_errors(schema, data, root)
    if errors:  # strings PostgreSQL cannot store, nesting too deep: before the schema sees it
        raise InvalidInput(f"the {where} holds values that cannot be stored", errors)
    try:
        loaded = schema.load(data)
    except ValidationError as exc:
        errors = flatten_messages(exc.messages)
    else:
        errors = loaded_errors(loaded)  # values marshmallow takes but PostgreSQL refuses
        if not errors:
            return loaded
    if where == "query":
        errors = [{**e, "field": f"query.{e['field']}"} for e in errors]
    raise InvalidInput(f"invalid {where}", errors)


def dispatch(gateway: Any, route: Route, request: Request, params: dict[str, str]) -> Response:
    try:
        limit = body_limit(gateway, route)
        limit_body(request, limit)
        query = request.args.to_dict()
        check_text_inputs(params, query)
        reply = invoke(
            gateway,
            route,
            request,
            params,
            authorization=request.headers.get("Authorization"),
            read_body=lambda: parse_body(request, route, limit),
            query=query,
        )
        response = to_response(shape(route, reply))
    except Exception as exc:  # noqa: BLE001 - every error becomes problem+json, never a trace
        response = problem_response(exc)
    HTTP_RESPONSES.labels(route.name, str(response.status_code)).inc()
    return gateway.cors.decorate(request, response)


def invoke(
    gateway: Any,
    route: Route,
    request: Request,
    params: dict[str, str],
    *,
    authorization: str | None,
    read_body: Callable[[], Any],
    query: dict[str, Any],
    principal: Principal | None = None,
) -> Reply:
    """Everything a route's rules ask of a call, whatever the caller: the token, the role, the
    rate limits, the body and query schemas, then the handler. The JSON routes (``dispatch``)
    and the web pages (``web/``, bodies from forms) both come through here; errors raise.

    ``principal``: a caller the gateway already verified some other way — the participant of a
    personal link (web/link.py), whose claims name the one poll it may answer and the channel
    ``link``; every other rule applies as to a token's."""
    if route.auth is not None:
        if principal is None or principal.kind != route.auth:
            principal = gateway.authenticator.authenticate(authorization, route.auth)
        authorize(principal, route.role)
        check_limit(gateway, "token", principal.subject)
    else:
        principal = None
    for rule in route.limits:
        check_limit(gateway, rule, limit_key(rule, request))
    body_schema, query_schema = route.body_schema, route.query_schema
    body = read_body() if body_schema is not None else {}
    if body_schema is not None:
        load(body_schema, body, where="body")
    # The owning service validates again and is the authority; it gets the body as sent.
    query = load(query_schema, query, where="query") if query_schema is not None else {}
    context = RequestContext(request, route, principal, body, query, params, gateway)
    result = route.handler(context)
    return result if isinstance(result, Reply) else Reply(body=result, status=route.success)


def shape(route: Route, reply: Reply) -> Reply:
    """A route's success answer through its response schema: what the schema does not declare
    does not leave the gateway, so the OpenAPI document (generated from the same schemas) cannot
    promise less than is sent. Only on the JSON API: the web pages read the services' answers
    as they are."""
    if (
        route.reply_plan is None
        or not route.project_reply
        or reply.status != route.success
        or not is_json(reply.content_type)
        or isinstance(reply.body, (str, bytes))  # JSONText too: passed on as it is
    ):
        return reply
    return dataclasses.replace(reply, body=project(route.reply_plan, reply.body))


def is_json(media_type: str) -> bool:
    """application/json and the JSON-based media types (application/geo+json, …)."""
    return media_type == "application/json" or media_type.endswith("+json")


def to_response(reply: Reply) -> Response:
    if reply.status == 204 or reply.status == 304:
        return Response(status=reply.status, headers=reply.headers)
    if isinstance(reply.body, JSONText):
        payload = str(reply.body)
    elif is_json(reply.content_type) and not isinstance(reply.body, (str, bytes)):
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
        try:  # bounded: dispatch set the route's body limit before anything read the body
            email = str(read_json(request, request.max_content_length or 0).get("email", ""))
        except Exception:  # noqa: BLE001 - a malformed body is refused by the route itself
            email = ""
        return f"{address}|{email.lower()}"
    if rule == "login" and request.mimetype == "application/x-www-form-urlencoded":
        return f"{address}|{request.form.get('email', '').lower()}"  # the web's login form
    return address


def check_limit(gateway: Any, rule: str, key: str) -> None:
    """Shared by every gateway process (Redis; gateway/ratelimit.py)."""
    wait = gateway.rate_limiter.take(rule, key)
    if wait is not None:
        raise TooManyRequests(
            f"too many requests; try again in {retry_after_header(wait)} s",
            headers={"Retry-After": retry_after_header(wait)},
        )
