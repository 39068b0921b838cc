"""Errors are part of the API: one table maps every exception, local or remote, to an HTTP
status and a problem+json document (RFC 9457) with a stable ``type``.

A problem looks like::

    {"type": "/problems/invalid-input", "title": "Invalid input", "status": 422,
     "detail": "the poll definition is not valid",
     "errors": [{"field": "definition.questions[2].options", "code": "too_few",
                 "message": "..."}]}
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from werkzeug import exceptions as werkzeug_errors
from werkzeug.wrappers import Response

from services.common.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    NotPermitted,
    Unauthorized,
    Unavailable,
)

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class HttpError(Exception):
    """An error the gateway itself decides on (auth, limits, media type, …); ERROR_TABLE gives
    each subclass its status and problem type."""

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}


class BadRequest(HttpError):
    pass


class AuthenticationRequired(HttpError):
    pass


class Forbidden(HttpError):
    pass


class RouteNotFound(HttpError):
    pass


class PayloadTooLarge(HttpError):
    pass


class UnsupportedMediaType(HttpError):
    pass


class TooManyRequests(HttpError):
    pass


class ServiceUnavailable(HttpError):
    pass


class PreconditionFailed(HttpError):
    pass


@dataclass(frozen=True)
class ProblemType:
    status: int
    slug: str
    title: str
    headers: dict[str, str] = field(default_factory=dict)


# The one table. Order matters only where classes inherit from each other.
ERROR_TABLE: list[tuple[type[Exception], ProblemType]] = [
    (InvalidInput, ProblemType(422, "invalid-input", "Invalid input")),
    (NotFound, ProblemType(404, "not-found", "Not found")),
    (Conflict, ProblemType(409, "conflict", "Conflict")),
    (
        Unauthorized,
        ProblemType(
            401,
            "unauthorized",
            "Not authenticated",
            {"WWW-Authenticate": 'Bearer realm="buurtpeil"'},
        ),
    ),
    (BadRequest, ProblemType(400, "bad-request", "Bad request")),
    (
        AuthenticationRequired,
        ProblemType(
            401,
            "unauthorized",
            "Not authenticated",
            {"WWW-Authenticate": 'Bearer realm="buurtpeil"'},
        ),
    ),
    (Forbidden, ProblemType(403, "forbidden", "Forbidden")),
    (NotPermitted, ProblemType(403, "forbidden", "Forbidden")),
    (RouteNotFound, ProblemType(404, "not-found", "Not found")),
    (PreconditionFailed, ProblemType(412, "precondition-failed", "Precondition failed")),
    (PayloadTooLarge, ProblemType(413, "payload-too-large", "Payload too large")),
    # werkzeug's own, raised when it parses a form or reads a body past max_content_length
    (
        werkzeug_errors.RequestEntityTooLarge,
        ProblemType(413, "payload-too-large", "Payload too large"),
    ),
    (werkzeug_errors.BadRequest, ProblemType(400, "bad-request", "Bad request")),
    (UnsupportedMediaType, ProblemType(415, "unsupported-media-type", "Unsupported media type")),
    (TooManyRequests, ProblemType(429, "too-many-requests", "Too many requests")),
    (
        ServiceUnavailable,
        ProblemType(503, "service-unavailable", "Service unavailable", {"Retry-After": "5"}),
    ),
    (
        Unavailable,
        ProblemType(503, "service-unavailable", "Service unavailable", {"Retry-After": "5"}),
    ),
]
INTERNAL = ProblemType(500, "internal-error", "Internal error")
ERROR_STATUSES = sorted({p.status for _, p in ERROR_TABLE} | {INTERNAL.status})


def problem_type(exc: Exception) -> ProblemType:
    for cls, problem in ERROR_TABLE:
        if isinstance(exc, cls):
            return problem
    return INTERNAL


def problem_body(exc: Exception) -> tuple[ProblemType, dict[str, Any]]:
    problem = problem_type(exc)
    body: dict[str, Any] = {
        "type": f"/problems/{problem.slug}",
        "title": problem.title,
        "status": problem.status,
    }
    if problem is INTERNAL:
        log.error("unexpected error", exc_info=exc)  # the detail stays in our logs
        body["detail"] = "something went wrong on our side; it has been logged"
        return problem, body
    body["detail"] = (
        getattr(exc, "detail", None)
        or getattr(exc, "message", None)
        or getattr(exc, "description", None)  # werkzeug's
        or str(exc)
    )
    errors = getattr(exc, "errors", None)
    if errors:
        body["errors"] = errors
    return problem, body


def problem_response(exc: Exception) -> Response:
    problem, body = problem_body(exc)
    headers = {**problem.headers, **getattr(exc, "headers", {})}
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=problem.status,
        headers=headers,
        content_type=PROBLEM_JSON,
    )
