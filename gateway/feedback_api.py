"""Routes of the closed loop (terugkoppeling): staff write feedback on a closed poll and promise
measures (``/admin/v1``), residents read it and react (``/api/v1``), and anyone may read a
municipality's timeline of feedback and measures (``/public/v1``, cacheable).

The feedback service owns all of it; these routes only scope every call by the verified token
(staff: the municipality; residents: municipality, wijk and buurt) and shape the HTTP answer.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

from gateway.errors import RouteNotFound
from gateway.routing import Reply, RequestContext, route
from gateway.schemas import answers, feedback
from services.common.errors import NotFound

STAFF_TAG, RESIDENT_TAG, PUBLIC_TAG = "feedback", "residents", "public"
MUNICIPALITY_CODE = re.compile(r"^GM\d{4}$")
TIMELINE_MAX_AGE = 300


# --- helpers ---------------------------------------------------------------------------------


def object_id(ctx: RequestContext, name: str, what: str) -> str:
    """The path id as a canonical UUID; anything else names nothing (404, like polls do)."""
    try:
        return str(uuid.UUID(ctx.params[name]))
    except ValueError:
        raise RouteNotFound(f"no such {what}") from None


def poll_id(ctx: RequestContext) -> str:
    # feedback scopes the poll to the municipality itself (it keeps a projection of published
    # polls): no extra call to polls on these routes.
    return object_id(ctx, "poll_id", "poll")


def actor(ctx: RequestContext) -> str:
    return ctx.principal.claims.get("email") or ctx.principal.subject


# --- staff -----------------------------------------------------------------------------------


@route(
    "GET",
    "/admin/v1/feedback",
    tag=STAFF_TAG,
    auth="staff",
    role="viewer",
    summary="Our published polls with the status of their feedback, overdue ones flagged",
    many=True,
    response=answers.FeedbackStatusOut,
)
def list_feedback(ctx: RequestContext) -> Any:
    return ctx.rpc("feedback", "list_feedback", ctx.municipality)


@route(
    "GET",
    "/admin/v1/feedback/overdue",
    tag=STAFF_TAG,
    auth="staff",
    role="viewer",
    summary="Polls closed too long ago without published feedback",
    many=True,
    response=answers.OverdueOut,
)
def overdue_feedback(ctx: RequestContext) -> Any:
    return ctx.rpc("feedback", "overdue", ctx.municipality)


@route(
    "GET",
    "/admin/v1/feedback/figures",
    tag=STAFF_TAG,
    auth="staff",
    role="viewer",
    summary="How well we close the loop: feedback published, time to feedback, measures done",
    response=answers.LoopFiguresOut,
)
def loop_figures(ctx: RequestContext) -> Any:
    return ctx.rpc("feedback", "loop_figures", ctx.municipality)


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/feedback",
    tag=STAFF_TAG,
    auth="staff",
    role="viewer",
    resource="poll",
    summary="The feedback on a poll, draft or published, with its measures",
    response=answers.FeedbackOut,
)
def get_feedback(ctx: RequestContext) -> Any:
    return ctx.rpc("feedback", "get_feedback", ctx.municipality, poll_id(ctx))


@route(
    "PUT",
    "/admin/v1/polls/<poll_id>/feedback",
    tag=STAFF_TAG,
    auth="staff",
    role="editor",
    body=feedback.FeedbackDraftIn,
    resource="poll",
    summary="Write or rewrite the draft feedback: what we heard, what we will do",
    response=answers.FeedbackOut,
    errors=(409,),  # the feedback is published
)
def save_feedback(ctx: RequestContext) -> Any:
    return ctx.rpc("feedback", "save_draft", ctx.municipality, poll_id(ctx), ctx.body, actor(ctx))


@route(
    "POST",
    "/admin/v1/polls/<poll_id>/feedback/publish",
    tag=STAFF_TAG,
    auth="staff",
    role="editor",
    resource="poll",
    summary="Publish the feedback and tell those who answered (idempotent)",
    description="409 while the poll is still open.",
    response=answers.FeedbackOut,
    errors=(409,),  # the poll is still open
)
def publish_feedback(ctx: RequestContext) -> Any:
    return ctx.rpc("feedback", "publish", ctx.municipality, poll_id(ctx), actor(ctx))


@route(
    "POST",
    "/admin/v1/polls/<poll_id>/feedback/measures",
    tag=STAFF_TAG,
    auth="staff",
    role="editor",
    body=feedback.MeasureIn,
    success=201,
    resource="poll",
    summary="Promise a measure in the feedback on a poll",
    response=answers.MeasureOut,
)
def add_measure(ctx: RequestContext) -> Reply:
    measure = ctx.rpc(
        "feedback", "add_measure", ctx.municipality, poll_id(ctx), ctx.body, actor(ctx)
    )
    return Reply(measure, status=201)


@route(
    "PATCH",
    "/admin/v1/measures/<measure_id>",
    tag=STAFF_TAG,
    auth="staff",
    role="editor",
    body=feedback.MeasureUpdate,
    resource="measure",
    summary="Change a measure's title, description, areas, owner or expected date",
    response=answers.MeasureOut,
)
def update_measure(ctx: RequestContext) -> Any:
    measure_id = object_id(ctx, "measure_id", "measure")
    return ctx.rpc("feedback", "update_measure", ctx.municipality, measure_id, ctx.body, actor(ctx))


@route(
    "POST",
    "/admin/v1/measures/<measure_id>/status",
    tag=STAFF_TAG,
    auth="staff",
    role="editor",
    body=feedback.StatusChangeIn,
    resource="measure",
    summary="Move a measure on (planned → in progress → done, or dropped); residents are told",
    description="409 for a transition that is not allowed (e.g. from done).",
    response=answers.MeasureOut,
    errors=(409,),  # a transition not allowed
)
def change_measure_status(ctx: RequestContext) -> Any:
    measure_id = object_id(ctx, "measure_id", "measure")
    return ctx.rpc(
        "feedback",
        "change_measure_status",
        ctx.municipality,
        measure_id,
        ctx.body["status"],
        ctx.body.get("note"),
        actor(ctx),
    )


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/feedback/reactions",
    tag=STAFF_TAG,
    auth="staff",
    role="viewer",
    resource="poll",
    summary="What residents thought of the feedback, per area; small areas suppressed",
    response=answers.ReactionsOut,
)
def feedback_reactions(ctx: RequestContext) -> Any:
    return ctx.rpc("feedback", "reactions", ctx.municipality, poll_id(ctx))


# --- residents -------------------------------------------------------------------------------


@route(
    "GET",
    "/api/v1/feedback",
    tag=RESIDENT_TAG,
    auth="resident",
    summary="Published feedback of my municipality, what concerns my buurt or wijk first",
    many=True,
    response=answers.FeedItemOut,
)
def my_feedback(ctx: RequestContext) -> Any:
    claims = ctx.principal.claims
    return ctx.rpc(
        "feedback", "resident_feed", claims["mun"], claims.get("buurt"), claims.get("wijk")
    )


@route(
    "GET",
    "/api/v1/feedback/<feedback_id>",
    tag=RESIDENT_TAG,
    auth="resident",
    resource="feedback",
    summary="One published feedback with its measures, and my reaction",
    response=answers.FeedbackDetailOut,
)
def feedback_detail(ctx: RequestContext) -> Any:
    feedback_id = object_id(ctx, "feedback_id", "feedback")
    return ctx.rpc(
        "feedback",
        "resident_detail",
        ctx.principal.claims["mun"],
        feedback_id,
        ctx.principal.subject,
    )


@route(
    "PUT",
    "/api/v1/feedback/<feedback_id>/reaction",
    tag=RESIDENT_TAG,
    auth="resident",
    body=feedback.ReactionIn,
    resource="feedback",
    summary="React to feedback: useful or not, with an optional comment (one per resident)",
    response=answers.ReactionOut,
)
def react_to_feedback(ctx: RequestContext) -> Any:
    feedback_id = object_id(ctx, "feedback_id", "feedback")
    claims = ctx.principal.claims
    return ctx.rpc(
        "feedback",
        "react",
        claims["mun"],
        feedback_id,
        ctx.principal.subject,
        claims.get("buurt"),
        claims.get("wijk"),
        ctx.body["useful"],
        ctx.body.get("comment"),
    )


# --- public ----------------------------------------------------------------------------------


@route(
    "GET",
    "/public/v1/municipalities/<municipality_code>/timeline",
    tag=PUBLIC_TAG,
    resource="municipality",
    tenant_scoped=False,
    summary="Published feedback and measures, newest first (public, cacheable)",
    description="Sends a strong ETag and Cache-Control: public, max-age=300; 304 to a matching "
    "If-None-Match. Open to every origin (CORS).",
    response=answers.TimelineOut,
)
def public_timeline(ctx: RequestContext) -> Reply:
    code = ctx.params["municipality_code"]
    if not MUNICIPALITY_CODE.match(code):
        raise RouteNotFound("no such municipality")
    try:
        timeline = ctx.rpc("feedback", "public_timeline", code)
    except NotFound:
        timeline = None
    if timeline is None or not timeline.get("items"):
        # feedback hears of a municipality only with its first closed poll: panel decides
        # whether an empty timeline is a municipality without feedback yet, or none at all.
        ctx.rpc("panel", "get_branding", code)
        timeline = timeline or {"municipality_code": code, "items": [], "updated_at": None}
    etag = strong_etag(timeline)
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={TIMELINE_MAX_AGE}",
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": "ETag",
    }
    if etag_matches(ctx.request.headers.get("If-None-Match"), etag):
        return Reply(status=304, headers=headers)
    return Reply(timeline, headers=headers)


def strong_etag(body: Any) -> str:
    """A hash of exactly the bytes routing.to_response will send for ``body``."""
    payload = json.dumps(body, ensure_ascii=False, default=str).encode()
    return f'"{hashlib.sha256(payload).hexdigest()[:32]}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: ``*`` or any listed tag, compared weakly (a W/ prefix is ignored)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = (t.strip().removeprefix("W/") for t in if_none_match.split(","))
    return etag in tags
