"""Routes for the residents' app: ``/api/v1/…``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields, validate

from gateway import schemas as out
from gateway.answering import checked_answers, queue_submission
from gateway.errors import BadRequest, RouteNotFound, ServiceUnavailable
from gateway.intake import fingerprint
from gateway.poll_cache import eligible
from gateway.routing import Reply, RequestContext, route
from gateway.schemas import answers, notify, panel
from services.common.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)

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
    description="A code is made for a wijk: the buurt must lie in it (else 422 "
    "`outside_invited_wijk` on `buurt_code` or `location`, and the code stays unused). "
    "A code carries the kind of participant it is for: a business (`ondernemer`) or "
    "organisation (`organisatie`) gives `kvk_number` (exactly 8 digits, else 422 on "
    "`kvk_number`) and `organisation_name`; a KvK number already in the panel 409. A contact "
    "code (`POST /api/v1/me/contacts`) signs in for its business or organisation instead.",
    errors=(409,),  # the KvK number is in the panel already
)
def join(ctx: RequestContext) -> Reply:
    return Reply(ctx.rpc("panel", "join_with_code", ctx.body), status=201)


@route(
    "POST",
    "/api/v1/me/contacts",
    tag=TAG,
    auth="resident",
    body=panel.ContactCodeIn,
    response=answers.ContactCodeOut,
    success=201,
    limits=("signup",),
    summary="A business or organisation: a contact code for another person to sign in for it",
    description="Whoever joins with the code (`POST /api/v1/join`) signs in for the same "
    "business or organisation: it stays one participant with one answer per poll. With "
    "`email` the code is e-mailed there too. A resident has no contacts (409).",
    errors=(404, 409),
)
def contact_code(ctx: RequestContext) -> Reply:
    return Reply(ctx.rpc("panel", "contact_code", ctx.principal.subject, ctx.body), status=201)


@route(
    "GET",
    "/api/v1/me/contacts",
    tag=TAG,
    auth="resident",
    response=answers.OrganisationContactOut,
    many=True,
    summary="The people who sign in for my business or organisation",
    errors=(404,),
)
def contacts(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "list_contacts", ctx.principal.subject, contact_of(ctx))


def contact_of(ctx: RequestContext) -> str | None:
    """The contact of a business or organisation the token was issued to (its ``cid``
    claim), or None: a resident, or a session from before contacts were told apart."""
    found = ctx.principal.claims.get("cid")
    return found if isinstance(found, str) and found else None


@route(
    "POST",
    "/api/v1/signup",
    tag=TAG,
    body=panel.SignupStartIn,
    success=202,
    limits=("signup",),
    summary="Open sign-up: e-mail a verification code to the address",
    response=answers.SignupStartedOut,
    errors=(404,),  # no such municipality
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
    errors=(404, 409),  # no such municipality; in the panel already
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
    errors=(401,),  # a refresh token not valid, or used twice
)
def token_refresh(ctx: RequestContext) -> Any:
    return ctx.rpc("panel", "refresh", ctx.body)


@route(
    "GET",
    "/api/v1/me",
    tag=TAG,
    auth="resident",
    response=out.ResidentOut,
    summary="My profile",
    errors=(404,),  # panel does not know the token's resident
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
    errors=(404,),  # panel does not know the token's resident
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
    description="A resident leaves and is erased. A contact of a business or organisation "
    "that has other contacts leaves alone: its sessions end (its tokens 401 from now on), "
    "the devices it registered and its e-mail address are erased, and the organisation "
    "stays with its other contacts, its answers kept. The last contact to leave takes the "
    "organisation out, as a resident leaves. A contact's session from before contacts were "
    "told apart cannot leave alone while there are other contacts: 409 `contact_unknown`.",
    errors=(404, 409),  # panel does not know the token's resident; contact unknown
)
def leave(ctx: RequestContext) -> Reply:
    gone = ctx.rpc("panel", "leave", ctx.principal.subject, contact_of(ctx))
    if gone.get("participant_left", True):
        # What the gateway holds under the participant's id goes too: idempotency records
        # and rate limits in Redis (else 24 h), and this process's invitation lookups (other
        # processes' expire within 10 minutes). A contact who left alone leaves them to the
        # organisation, which stays.
        ctx.gateway.state.shared.erase(ctx.principal.subject)
        ctx.gateway.invitations.forget(ctx.principal.subject)
    return Reply(status=204)


@route(
    "GET",
    "/api/v1/municipalities/<municipality_code>/branding",
    tag=TAG,
    summary="The municipality's house style and texts (public, cacheable)",
    resource="municipality",
    tenant_scoped=False,
    response=answers.MunicipalityBrandingOut,
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
    response=answers.LocatedOut,
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
    description="The open polls I was invited to (a sample poll only if I was drawn; still "
    "after I moved) and those whose audience includes where I live now.",
)
def my_polls(ctx: RequestContext) -> Any:
    return [resident_view(p) for p in polls_for_me(ctx)]


def invitations_of(ctx: RequestContext, polls: list[dict[str, Any]]) -> dict[str, Any]:
    """The resident's invitations among ``polls`` (poll id → invited area), from notify.
    Without notify (503) a listing shows the polls of the resident's area only."""
    if not polls:
        return {}
    return ctx.gateway.invitations.lookup(
        ctx.principal.subject, [p["poll_id"] for p in polls], ctx.rpc
    )


def polls_for_me(ctx: RequestContext) -> list[dict[str, Any]]:
    claims = ctx.principal.claims
    cache = ctx.gateway.open_polls
    try:
        invited = invitations_of(ctx, cache.of_municipality(claims["mun"]))
    except ServiceUnavailable:
        log.warning("notify did not answer: listing polls by area only")
        invited = {}
    return cache.for_resident(
        claims["mun"], claims.get("wijk", ""), claims.get("buurt", ""), invited, kind_of(claims)
    )


def kind_of(claims: dict[str, Any]) -> str:
    """The kind of participant a token is for (tokens issued before kinds existed: resident)."""
    return str(claims.get("kind") or "resident")


def poll_for_me(ctx: RequestContext) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The open poll of the path if it is meant for the resident (else 404), and their
    invitation to it (the area it was sent to; None if not invited or notify is down and the
    poll is not a sample — a sample is only for its drawn residents, so then 503)."""
    claims = ctx.principal.claims
    poll = ctx.gateway.open_polls.get(ctx.params["poll_id"])
    if poll is None or poll["municipality_code"] != claims["mun"]:
        raise RouteNotFound("no open poll with this id for you")
    if "poll" in claims and claims["poll"] != poll["poll_id"]:  # a personal link: its poll only
        raise RouteNotFound("no open poll with this id for you")
    try:
        invited = invitations_of(ctx, [poll])
    except ServiceUnavailable:
        if poll["audience"]["kind"] == "sample":
            raise
        log.warning("notify did not answer: poll %s by the resident's area", poll["poll_id"])
        invited = {}
    # Decided on the entry read above: a resync may have replaced it meanwhile (the notify
    # call yields), and the new entry need not compare equal to it.
    if not eligible(
        poll,
        claims["mun"],
        claims.get("wijk", ""),
        claims.get("buurt", ""),
        invited,
        kind_of(claims),
    ):
        raise RouteNotFound("no open poll with this id for you")
    return poll, invited.get(poll["poll_id"])


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
    return resident_view(poll_for_me(ctx)[0])


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
    response=answers.VapidKeyOut,
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
    description="A business or organisation's devices are every contact's: "
    "`registered_by` says whose each is — `me` (this contact's own; all of a resident's), "
    "`colleague` (another contact, `contact_id` matches `GET /api/v1/me/contacts`) or "
    "`unknown` (registered before contacts were told apart). Own devices come first.",
    many=True,
    response=answers.DeviceOut,
)
def list_devices(ctx: RequestContext) -> Any:
    return ctx.rpc("notify", "list_devices", ctx.principal.subject, contact_of(ctx))


@route(
    "POST",
    "/api/v1/devices",
    tag=TAG,
    auth="resident",
    body=notify.DeviceIn,
    success=201,
    summary="Register a Web Push subscription (PushSubscription.toJSON()) or an FCM token",
    response=answers.DeviceOut,
    errors=(404,),  # my profile has not reached notify yet
)
def register_device(ctx: RequestContext) -> Reply:
    return Reply(
        ctx.rpc("notify", "register_device", ctx.principal.subject, ctx.body, contact_of(ctx)),
        status=201,
    )


@route(
    "DELETE",
    "/api/v1/devices/<device_id>",
    tag=TAG,
    auth="resident",
    success=204,
    resource="device",
    summary="Stop notifications to a device",
    description="A contact of a business or organisation removes its own devices (and those "
    "registered before contacts were told apart); a colleague's device 403 "
    "(`colleague_s_device`): only that colleague, or its leaving, removes it.",
    errors=(403,),
)
def remove_device(ctx: RequestContext) -> Reply:
    ctx.rpc(
        "notify", "remove_device", ctx.principal.subject, ctx.params["device_id"], contact_of(ctx)
    )
    return Reply(status=204)


@route(
    "PATCH",
    "/api/v1/notification-preferences",
    tag=TAG,
    auth="resident",
    body=notify.PreferencesIn,
    summary="Channel order and quiet hours (Europe/Amsterdam) for my notifications",
    response=answers.PreferencesOut,
    errors=(404,),  # my profile has not reached notify yet
)
def notification_preferences(ctx: RequestContext) -> Any:
    return ctx.rpc("notify", "set_preferences", ctx.principal.subject, ctx.body)


@route(
    "POST",
    "/api/v1/unsubscribe",
    tag=TAG,
    query=UnsubscribeQuery,
    limits=("verify",),
    errors=(401,),  # a link token that is not valid
    summary="Stop e-mail (the one-click link in every e-mail, RFC 8058)",
    response=answers.UnsubscribedOut,
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
    "running 409; no key 400. A poll not meant for me (a sample I was not drawn for, a "
    "kind of participant it is not for) 404. A business or organisation answers once, "
    "whichever contact sends it: a second contact's answer 409 (`already_answered`). "
    "An invited resident's answer counts where they were invited, marked recently moved "
    "if they live elsewhere now.",
    response=answers.SubmissionAcceptedOut,
    errors=(400, 409),  # no Idempotency-Key; the same key in flight
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
    digest = fingerprint(ctx.body)
    state, record = gateway.idempotency.begin(scope, key, digest)
    if state == "replay":
        return Reply(record.body, status=record.status, headers=record.headers)
    if state == "conflict":
        raise InvalidInput(
            "this Idempotency-Key was used for another request",
            [{"field": "Idempotency-Key", "code": "reused", "message": "use a fresh key"}],
        )
    if state == "in_flight":
        raise Conflict("a request with this Idempotency-Key is still being processed")
    claimed = False
    try:
        poll, invitation = poll_for_me(ctx)
        answers = checked_answers(ctx, poll, ctx.body["answers"])
        if kind_of(claims) != "resident":
            if not gateway.idempotency.claim_answer(scope, poll["poll_id"], answer_ttl(poll)):
                raise Conflict(
                    "your business or organisation has answered this poll already (another "
                    "contact sent its answer): one answer per business or organisation",
                    [
                        {
                            "field": "poll_id",
                            "code": "already_answered",
                            "message": "one answer per business or organisation",
                        }
                    ],
                )
            claimed = True
        _, token = queue_submission(
            ctx,
            poll,
            answers,
            holder=ctx.principal.subject,
            channel=claims.get("channel", "app"),  # "link": through a personal link
            resident={
                # A business or organisation is one respondent whichever contact answers:
                # the subject is the participant, so responses keeps one answer per poll.
                "id": ctx.principal.subject,
                "kind": kind_of(claims),
                "municipality_code": claims["mun"],
                **answer_area(claims, invitation),
                "age_band": claims.get("age_band"),
                "sex": claims.get("sex"),
                "self_selected": bool(claims.get("self_selected")),
            },
        )
    except Exception:
        gateway.idempotency.forget(scope, key)
        if claimed:
            gateway.idempotency.release_answer(scope, poll["poll_id"])
        raise
    body = {"receipt_id": token, "status": "accepted", "poll_id": poll["poll_id"]}
    headers = {"Location": f"/api/v1/receipts/{token}"}
    gateway.idempotency.finish(scope, key, digest, status=202, body=body, headers=headers)
    return Reply(body, status=202, headers=headers)


def answer_ttl(poll: dict[str, Any]) -> int:
    """How long a business's answer to ``poll`` is remembered by the gateway: until a day
    after the poll closes (180 days for a poll without a closing date)."""
    closes = poll.get("closes_at")
    if not closes:
        return 180 * 86400
    left = datetime.fromisoformat(str(closes)) - datetime.now(UTC)
    return int(left.total_seconds()) + 86400


def answer_area(claims: dict[str, Any], invitation: dict[str, Any] | None) -> dict[str, Any]:
    """Where an answer counts: where its resident was invited (the area is frozen for the
    poll once invited), flagged ``recently_moved`` when they live elsewhere now; a resident
    not invited (joined after the poll opened) counts where they live."""
    here = {"wijk_code": claims.get("wijk"), "buurt_code": claims.get("buurt")}
    if not invitation or not invitation.get("buurt_code"):
        return {**here, "recently_moved": False}
    return {
        "wijk_code": invitation["wijk_code"],
        "buurt_code": invitation["buurt_code"],
        "recently_moved": invitation["buurt_code"] != here["buurt_code"],
    }


@route(
    "GET",
    "/api/v1/receipts/<receipt_id>",
    tag=TAG,
    auth="resident",
    summary="What became of a submission: accepted, recorded, or rejected with the reason",
    description="Only the resident who submitted can read a receipt; anyone else gets 404.",
    response=answers.ReceiptOut,
)
def receipt(ctx: RequestContext) -> Any:
    receipt_id = ctx.gateway.receipts.verify(ctx.params["receipt_id"], ctx.principal.subject)
    if receipt_id is None:
        raise RouteNotFound("no such receipt")
    try:
        found = ctx.rpc("responses", "receipt", receipt_id)
    except NotFound:
        return {"receipt_id": ctx.params["receipt_id"], "status": "accepted"}
    return {**found, "receipt_id": ctx.params["receipt_id"]}
