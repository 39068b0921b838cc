"""Routes for the residents' app: ``/api/v1/…``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields, validate

from gateway import schemas as out
from gateway.errors import BadRequest, RouteNotFound, ServiceUnavailable
from gateway.intake import fingerprint
from gateway.routing import Reply, RequestContext, route
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.pollspec import PollSpecError, validate_answers
from services.notify import schemas as notify
from services.panel import schemas as panel

TAG = "residents"


class UnsubscribeQuery(Schema):
    token = fields.String(required=True, validate=validate.Length(min=10, max=200))


@route(
    "POST",
    "/api/v1/join",
    tag=TAG,
    body=panel.JoinIn,
    response=out.SessionOut,
    success=201,
    limits=("join",),
    summary="Join the panel with the code from an invitation letter",
)
def join(ctx: RequestContext) -> Reply:
    return Reply(ctx.rpc("panel", "join_with_code", ctx.body), status=201)


@route(
    "POST",
    "/api/v1/signup",
    tag=TAG,
    body=panel.SignupStartIn,
    success=202,
    limits=("signup",),
    summary="Open sign-up: e-mail a verification code to the address",
)
def signup(ctx: RequestContext) -> Reply:
    return Reply(ctx.rpc("panel", "start_signup", ctx.body), status=202)


@route(
    "POST",
    "/api/v1/signup/verify",
    tag=TAG,
    body=panel.SignupFinishIn,
    response=out.SessionOut,
    success=201,
    limits=("verify",),
    summary="Open sign-up: confirm the code and join (marked self-selected)",
)
def signup_verify(ctx: RequestContext) -> Reply:
    return Reply(ctx.rpc("panel", "finish_signup", ctx.body), status=201)


@route(
    "POST",
    "/api/v1/token/refresh",
    tag=TAG,
    body=panel.RefreshIn,
    response=out.TokensOut,
    limits=("refresh",),
    summary="Exchange a refresh token for a new access and refresh token (rotation)",
)
def token_refresh(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "refresh", ctx.body)


@route(
    "GET", "/api/v1/me", tag=TAG, auth="resident", response=out.ResidentOut, summary="My profile"
)
def me(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "get_resident", ctx.principal.subject)


@route(
    "PATCH",
    "/api/v1/me",
    tag=TAG,
    auth="resident",
    body=panel.ProfileUpdateIn,
    response=out.ResidentOut,
    summary="Change my profile (moving changes my buurt; refresh the token to see it)",
)
def update_me(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "update_resident", ctx.principal.subject, ctx.body)


@route(
    "DELETE",
    "/api/v1/me",
    tag=TAG,
    auth="resident",
    success=204,
    summary="Leave the panel: my personal data is erased",
)
def leave(ctx: RequestContext) -> Reply:
    ctx.rpc("panel", "leave", ctx.principal.subject)
    return Reply(status=204)


@route(
    "GET",
    "/api/v1/municipalities/<municipality_code>/branding",
    tag=TAG,
    summary="The municipality's house style and texts (public, cacheable)",
    resource="municipality",
    tenant_scoped=False,
)
def branding(ctx: RequestContext) -> Reply:
    found = ctx.rpc("panel", "get_branding", ctx.params["municipality_code"])
    etag = found.pop("etag")
    headers = {"ETag": etag, "Cache-Control": "public, max-age=300"}
    if etag in ctx.request.headers.get("If-None-Match", ""):
        return Reply(status=304, headers=headers)
    return Reply(found, headers=headers)


@route(
    "GET",
    "/api/v1/municipalities/<municipality_code>/areas",
    tag=TAG,
    query=out.AreaQuery,
    response=out.AreaOut,
    many=True,
    summary="Wijken and buurten to choose from when joining (public)",
    resource="municipality",
    tenant_scoped=False,
)
def public_areas(ctx: RequestContext) -> Reply:
    areas = ctx.rpc(
        "panel",
        "list_areas",
        ctx.params["municipality_code"],
        ctx.query.get("level"),
        ctx.query.get("year"),
    )
    slim = [{k: a[k] for k in ("code", "level", "name", "parent_code")} for a in areas]
    return Reply(slim, headers={"Cache-Control": "public, max-age=3600"})


@route(
    "GET",
    "/api/v1/municipalities/<municipality_code>/locate",
    tag=TAG,
    query=out.LocateQuery,
    limits=("locate",),
    summary="Suggest the buurt of a location (the resident confirms it)",
    resource="municipality",
    tenant_scoped=False,
)
def locate(ctx: RequestContext) -> Any:
    found = ctx.rpc(
        "panel", "locate", ctx.params["municipality_code"], ctx.query["lat"], ctx.query["lon"]
    )
    if found is None:
        raise RouteNotFound("this location lies outside the municipality")
    return found


@route(
    "GET",
    "/api/v1/polls",
    tag=TAG,
    auth="resident",
    response=out.ResidentPollOut,
    many=True,
    summary="Open polls for my buurt",
)
def my_polls(ctx: RequestContext) -> Any:
    claims = ctx.principal.claims
    return [
        resident_view(p)
        for p in ctx.gateway.open_polls.for_resident(
            claims["mun"], claims.get("wijk", ""), claims.get("buurt", "")
        )
    ]


@route(
    "GET",
    "/api/v1/polls/<poll_id>",
    tag=TAG,
    auth="resident",
    response=out.ResidentPollOut,
    resource="poll",
    summary="One open poll, if it is meant for me",
)
def poll_detail(ctx: RequestContext) -> Any:
    claims = ctx.principal.claims
    poll = ctx.gateway.open_polls.get(ctx.params["poll_id"])
    if poll is None or poll not in ctx.gateway.open_polls.for_resident(
        claims["mun"], claims.get("wijk", ""), claims.get("buurt", "")
    ):
        raise RouteNotFound("no open poll with this id for you")
    return resident_view(poll)


def resident_view(poll: dict[str, Any]) -> dict[str, Any]:
    return {
        k: poll[k]
        for k in ("poll_id", "version", "content_hash", "definition", "opens_at", "closes_at")
    }


@route(
    "GET",
    "/api/v1/push/vapid-public-key",
    tag=TAG,
    summary="The applicationServerKey to subscribe to Web Push with (public)",
)
def vapid_public_key(ctx: RequestContext) -> Reply:
    key = ctx.rpc("notify", "vapid_public_key")
    return Reply(
        {"application_server_key": key}, headers={"Cache-Control": "public, max-age=86400"}
    )


@route(
    "GET",
    "/api/v1/devices",
    tag=TAG,
    auth="resident",
    summary="My devices that receive notifications",
)
def list_devices(ctx: RequestContext) -> Any:
    return ctx.rpc("notify", "list_devices", ctx.principal.subject)


@route(
    "POST",
    "/api/v1/devices",
    tag=TAG,
    auth="resident",
    body=notify.DeviceIn,
    success=201,
    summary="Register a Web Push subscription (PushSubscription.toJSON()) or an FCM token",
)
def register_device(ctx: RequestContext) -> Reply:
    return Reply(ctx.rpc("notify", "register_device", ctx.principal.subject, ctx.body), status=201)


@route(
    "DELETE",
    "/api/v1/devices/<device_id>",
    tag=TAG,
    auth="resident",
    success=204,
    resource="device",
    summary="Stop notifications to a device",
)
def remove_device(ctx: RequestContext) -> Reply:
    ctx.rpc("notify", "remove_device", ctx.principal.subject, ctx.params["device_id"])
    return Reply(status=204)


@route(
    "PATCH",
    "/api/v1/notification-preferences",
    tag=TAG,
    auth="resident",
    body=notify.PreferencesIn,
    summary="Channel order and quiet hours (Europe/Amsterdam) for my notifications",
)
def notification_preferences(ctx: RequestContext) -> Any:
    return ctx.rpc("notify", "set_preferences", ctx.principal.subject, ctx.body)


@route(
    "POST",
    "/api/v1/unsubscribe",
    tag=TAG,
    query=UnsubscribeQuery,
    limits=("verify",),
    summary="Stop e-mail (the one-click link in every e-mail, RFC 8058)",
)
def unsubscribe(ctx: RequestContext) -> Any:
    return ctx.rpc("notify", "unsubscribe", ctx.query["token"])


class SubmissionIn(Schema):
    answers = fields.Dict(
        required=True,
        metadata={"description": "question id → answer, as docs/pollspec.md describes"},
    )


@route(
    "POST",
    "/api/v1/polls/<poll_id>/responses",
    tag=TAG,
    auth="resident",
    body=SubmissionIn,
    success=202,
    resource="poll",
    summary="Answer a poll (send an Idempotency-Key); 202 with a receipt",
    description="Repeating a request with the same Idempotency-Key and body gets the same "
    "answer; the same key with another body 422; while the first is still "
    "running 409; no key 400.",
)
def submit(ctx: RequestContext) -> Reply:
    key = ctx.request.headers.get("Idempotency-Key", "").strip()
    if not key or len(key) > 255:
        raise BadRequest(
            "send an Idempotency-Key header (a fresh UUID per submission)",
            errors=[
                {
                    "field": "Idempotency-Key",
                    "code": "required",
                    "message": "required, at most 255 characters",
                }
            ],
        )
    gateway, claims = ctx.gateway, ctx.principal.claims
    scope = ctx.principal.subject
    state, record = gateway.idempotency.begin(scope, key, fingerprint(ctx.body))
    if state == "replay":
        return Reply(record.body, status=record.status, headers=record.headers)
    if state == "conflict":
        raise InvalidInput(
            "this Idempotency-Key was used for another request",
            [{"field": "Idempotency-Key", "code": "reused", "message": "use a fresh key"}],
        )
    if state == "in_flight":
        raise Conflict("a request with this Idempotency-Key is still being processed")
    try:
        poll = gateway.open_polls.get(ctx.params["poll_id"])
        if poll is None or poll not in gateway.open_polls.for_resident(
            claims["mun"], claims.get("wijk", ""), claims.get("buurt", "")
        ):
            raise RouteNotFound("no open poll with this id for you")
        try:
            answers = validate_answers(
                poll["definition"], ctx.body["answers"], location_check=location_check(ctx, poll)
            )
        except PollSpecError as exc:
            raise InvalidInput(
                "the answers are not valid", [e.as_dict() for e in exc.errors]
            ) from None
        receipt, token = gateway.receipts.issue()
        submission = {
            "receipt_id": receipt,
            "poll_id": poll["poll_id"],
            "answers": answers,
            "submitted_at": datetime.now(UTC).isoformat(),
            "resident": {
                "id": ctx.principal.subject,
                "municipality_code": claims["mun"],
                "wijk_code": claims.get("wijk"),
                "buurt_code": claims.get("buurt"),
                "age_band": claims.get("age_band"),
                "sex": claims.get("sex"),
                "self_selected": bool(claims.get("self_selected")),
            },
        }
        try:
            gateway.intake.publish(submission)
        except Exception as exc:  # noqa: BLE001 - not accepted: say so, nothing is lost
            raise ServiceUnavailable("the submission could not be queued; try again") from exc
    except Exception:
        gateway.idempotency.forget(scope, key)
        raise
    body = {"receipt_id": token, "status": "accepted", "poll_id": poll["poll_id"]}
    headers = {"Location": f"/api/v1/receipts/{token}"}
    gateway.idempotency.finish(scope, key, 202, body, headers)
    return Reply(body, status=202, headers=headers)


def location_check(ctx: RequestContext, poll: dict[str, Any]) -> Any:
    """Inside the municipality (any of its buurten). The boundaries are fetched only when an
    answer actually holds a location."""

    def inside(lat: float, lon: float) -> bool:
        return ctx.gateway.boundaries.locator(poll["municipality_code"], ctx.rpc).covers(lat, lon)

    return inside


@route(
    "GET",
    "/api/v1/receipts/<receipt_id>",
    tag=TAG,
    auth="resident",
    summary="What became of a submission: accepted, recorded, or rejected with the reason",
)
def receipt(ctx: RequestContext) -> Any:
    receipt_id = ctx.gateway.receipts.verify(ctx.params["receipt_id"])
    if receipt_id is None:
        raise RouteNotFound("no such receipt")
    try:
        found = ctx.rpc("responses", "receipt", receipt_id)
    except NotFound:
        return {"receipt_id": ctx.params["receipt_id"], "status": "accepted"}
    return {**found, "receipt_id": ctx.params["receipt_id"]}
