"""Paper questionnaires (issue 14): print runs of a poll's forms, each with its own code, and
keying a returned form in — ``/admin/v1/…``.

Who may do what (``gateway/auth.py``): editors and admins make print runs and print them; the
role ``invoerder`` (data entry) may only look up a form's code and key its answers in — as may
editors and admins; a viewer may do neither. The codes live in panel (``services/panel/
paper.py``: why print runs have codes of their own, not the letter codes).

Keying in goes through the app's own path (``gateway/answering.py``): the same validation of
the answers against the open poll, the same submission on the same intake queue, marked
``channel: paper``, counted in the buurt the form was printed for. Once per code: panel marks
the code keyed (row-locked) before the answer is queued, and takes the mark back when it
cannot be queued; a second entry is 409 with the moment of the first.

The data-entry page (``web/staff_paper.py``) shows what was keyed in for review before it
counts: ``CHECK_ENTRY`` runs key_in_form's checks (its role, limits, body schema, the code and the
answers) and stops there. It is no route of the JSON API: the page calls it in-process.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from typing import Any

from marshmallow import Schema, fields, validate

from gateway.answering import checked_answers, queue_submission
from gateway.auth import DATA_ENTRY
from gateway.poll_cache import eligible
from gateway.routing import ROUTES, Reply, RequestContext, route
from gateway.schemas import answers, panel
from services.common.areas import parent_of
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.events import AGE_BANDS, SEXES

log = logging.getLogger(__name__)
TAG = "paper"
# As a submission's strata carry them (the event catalogue's vocabulary): the age bands of the
# panel (15+; docs/methods.md) and sex, "onbekend" for "I would rather not say".
PAPER_AGE_BANDS = tuple(band for band in AGE_BANDS if band != "0_14")
PAPER_SEXES = SEXES
# A paper participant's pseudonymous id: derived from the poll and the form's code, so that
# responses, which keeps one answer per participant and poll, would refuse a second one too.
PAPER_PARTICIPANTS = uuid.UUID("6f1c2d4e-8a7b-4c55-9e0f-3a1b2c3d4e5f")


class PaperEntryIn(Schema):
    code = fields.String(
        required=True,
        validate=validate.Length(min=10, max=20),
        metadata={"description": "the code printed on the form, e.g. 7KQ4-M2XD-9HBT"},
    )
    answers = fields.Dict(
        required=True,
        metadata={"description": "question id → answer, as docs/pollspec.md describes"},
    )
    age_band = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(PAPER_AGE_BANDS),
        metadata={"description": "the form's question about age; null: not filled in"},
    )
    sex = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(PAPER_SEXES),
        metadata={"description": "the form's question about sex; null: not filled in"},
    )


class PaperPollOut(Schema):
    poll_id = fields.UUID()
    title = fields.String()
    closes_at = fields.DateTime(allow_none=True)


class PaperPollDetailOut(PaperPollOut):
    definition = fields.Dict(metadata={"description": "the poll's questions (docs/pollspec.md)"})


def paper_poll_view(poll: dict[str, Any], *, definition: bool = False) -> dict[str, Any]:
    view = {
        "poll_id": poll["poll_id"],
        "title": poll["definition"]["title"],
        "closes_at": poll.get("closes_at"),
    }
    return {**view, "definition": poll["definition"]} if definition else view


def paper_participant(poll_id: str, code: str) -> str:
    return str(uuid.uuid5(PAPER_PARTICIPANTS, f"{poll_id}:{code}"))


def poll_of_ours(ctx: RequestContext) -> dict[str, Any]:
    """The poll of the path as polls knows it (another municipality's: 404)."""
    return dict(ctx.rpc("polls", "get_poll", ctx.municipality, ctx.params["poll_id"]))


def open_poll(ctx: RequestContext) -> dict[str, Any]:
    """The open poll of the path, as residents answer it (the gateway's cache of open polls);
    another municipality's 404; one of ours that is not open 409, saying why."""
    poll = ctx.gateway.open_polls.get(ctx.params["poll_id"])
    if poll is not None and poll["municipality_code"] == ctx.municipality:
        return dict(poll)
    found = poll_of_ours(ctx)  # 404 when it is not ours or does not exist
    if found.get("status") in ("closed", "archived"):
        raise Conflict(
            "this poll is closed: answers keyed in now would not count",
            [{"field": "poll_id", "code": "poll_closed", "message": "the poll is closed"}],
        )
    raise Conflict(
        "this poll is not open yet: key forms in once it has opened",
        [{"field": "poll_id", "code": "poll_not_open", "message": "the poll is not open yet"}],
    )


@route(
    "GET",
    "/admin/v1/paper/polls",
    tag=TAG,
    auth="staff",
    role=DATA_ENTRY,
    response=PaperPollOut,
    many=True,
    calls_services=False,
    summary="Our open polls, to key paper forms in (data entry)",
)
def paper_polls(ctx: RequestContext) -> Any:
    polls = ctx.gateway.open_polls.of_municipality(ctx.municipality)
    return sorted((paper_poll_view(p) for p in polls), key=lambda p: (p["title"], p["poll_id"]))


@route(
    "GET",
    "/admin/v1/paper/polls/<poll_id>",
    tag=TAG,
    auth="staff",
    role=DATA_ENTRY,
    response=PaperPollDetailOut,
    resource="poll",
    summary="An open poll's questions, to key paper forms in (data entry)",
    description="A poll of ours that is not open: 409 (`poll_closed`, `poll_not_open`).",
    errors=(409,),
)
def paper_poll(ctx: RequestContext) -> Any:
    return paper_poll_view(open_poll(ctx), definition=True)


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/paper-runs",
    tag=TAG,
    auth="staff",
    role="viewer",
    response=answers.PaperRunOut,
    many=True,
    resource="poll",
    summary="A poll's print runs of paper forms, with how many were keyed in",
)
def paper_runs(ctx: RequestContext) -> Any:
    poll_of_ours(ctx)
    return ctx.rpc("panel", "list_paper_runs", ctx.municipality, ctx.params["poll_id"])


@route(
    "POST",
    "/admin/v1/polls/<poll_id>/paper-runs",
    tag=TAG,
    auth="staff",
    role="editor",
    body=panel.PaperRunIn,
    success=201,
    response=answers.PaperRunDetailOut,
    resource="poll",
    summary="Print paper forms: a run of forms for one buurt of the poll's audience, each with "
    "its own code",
    description="The poll must be scheduled or open (a draft's questions may still change: "
    "409; a closed poll 409), and not a sample (its answers are only for the drawn panel "
    "members: 409). The buurt must be in the poll's audience (422 `not_in_audience`). "
    "Answers keyed in from these forms count in that buurt.",
    errors=(409,),
)
def create_paper_run(ctx: RequestContext) -> Reply:
    poll = poll_of_ours(ctx)
    status = poll.get("status")
    if status not in ("scheduled", "open"):
        raise Conflict(
            "publish the poll first: a draft's questions may still change"
            if status == "draft"
            else "this poll is closed: forms printed now could not be keyed in"
        )
    if poll["audience"].get("kind") == "sample":
        raise Conflict("a sample poll is only for its drawn panel members: no paper forms")
    buurt = ctx.body["buurt_code"]
    wijk = parent_of(buurt) or ""
    audience = {
        "poll_id": poll["id"],
        "municipality_code": ctx.municipality,
        "audience": poll["audience"],
    }
    if not eligible(audience, ctx.municipality, wijk, buurt):
        raise InvalidInput(
            "this buurt is not in the poll's audience",
            [
                {
                    "field": "buurt_code",
                    "code": "not_in_audience",
                    "message": "choose a buurt the poll is for",
                }
            ],
        )
    run = ctx.rpc(
        "panel",
        "create_paper_run",
        ctx.municipality,
        poll["id"],
        ctx.body,
        ctx.principal.claims.get("email"),
    )
    return Reply(run, status=201)


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/paper-runs/<run_id>",
    tag=TAG,
    auth="staff",
    role="editor",
    response=answers.PaperRunDetailOut,
    summary="One print run with its codes, in print order (to print it again)",
)
def paper_run(ctx: RequestContext) -> Any:
    poll_of_ours(ctx)
    return ctx.rpc(
        "panel", "get_paper_run", ctx.municipality, ctx.params["poll_id"], ctx.params["run_id"]
    )


@route(
    "GET",
    "/admin/v1/polls/<poll_id>/paper-forms/<code>",
    tag=TAG,
    auth="staff",
    role=DATA_ENTRY,
    response=answers.PaperCodeOut,
    resource="poll",
    summary="Look up a paper form's code before keying it in (data entry)",
    description="422 `unknown_code` for a code on none of our forms (another municipality's "
    "looks the same), 422 `other_poll` for one of another of our polls; `keyed_at` says "
    "whether, and when, the form was keyed in already. The poll must be open (409).",
    errors=(409,),
)
def paper_form(ctx: RequestContext) -> Any:
    poll = open_poll(ctx)
    form = ctx.rpc("panel", "paper_code", ctx.municipality, poll["poll_id"], ctx.params["code"])
    return {**form, **answer_state(ctx, form.get("receipt_id"))}


def answer_state(ctx: RequestContext, receipt_id: str | None) -> dict[str, Any]:
    """What became of a keyed-in form's answer: accepted (queued), recorded, or rejected with
    the reason (responses' receipt); nothing before it was keyed in."""
    if not receipt_id:
        return {"answer_status": None, "answer_reason": None}
    try:
        found = ctx.rpc("responses", "receipt", receipt_id)
    except NotFound:
        return {"answer_status": "accepted", "answer_reason": None}
    return {"answer_status": found.get("status"), "answer_reason": found.get("reason")}


@route(
    "POST",
    "/admin/v1/polls/<poll_id>/paper-forms",
    tag=TAG,
    auth="staff",
    role=DATA_ENTRY,
    body=PaperEntryIn,
    success=202,
    response=answers.PaperEntryOut,
    resource="poll",
    summary="Key a returned paper form in: its code and answers (data entry)",
    description="Checked like an answer in the app (422 naming each answer at fault), then "
    "queued like one, marked `channel: paper` and counted in the buurt the form was printed "
    "for, with the age band and sex from the form (null when left blank). Once per code: a "
    "second entry 409 `already_keyed`, with when the first was keyed in. A closed poll 409; "
    "an unknown code, or another municipality's, 422 `unknown_code`; one of another poll 422 "
    "`other_poll`.",
    errors=(409,),
)
def key_in_form(ctx: RequestContext) -> Reply:
    poll, _, answers_in = checked_entry(ctx)
    email = ctx.principal.claims.get("email")
    receipt = str(uuid.uuid4())  # kept with the code: staff see the answer recorded
    form = ctx.rpc(
        "panel",
        "key_paper_code",
        ctx.municipality,
        poll["poll_id"],
        ctx.body["code"],
        email,
        receipt,
    )
    participant = paper_participant(poll["poll_id"], form["code"])
    try:
        queue_submission(
            ctx,
            poll,
            answers_in,
            holder=participant,
            receipt=receipt,
            channel="paper",
            resident={
                "id": participant,
                "municipality_code": ctx.municipality,
                "wijk_code": form["wijk_code"],
                "buurt_code": form["buurt_code"],
                "age_band": ctx.body.get("age_band"),
                "sex": ctx.body.get("sex"),
                # The municipality handed the form out in that buurt: not self-selected.
                "self_selected": False,
                "recently_moved": False,
            },
        )
    except Exception:
        try:
            ctx.rpc("panel", "release_paper_code", ctx.municipality, poll["poll_id"], form["code"])
        except Exception:  # noqa: BLE001 - the form stays marked; keyed_by says who tried
            log.warning("paper form %s stays marked keyed although not queued", form["code"])
        raise
    body = {
        "receipt_id": receipt,
        "status": "accepted",
        "poll_id": poll["poll_id"],
        "code": form["code"],
        "buurt_code": form["buurt_code"],
        "keyed_at": form["keyed_at"],
    }
    return Reply(body, status=202)


def checked_entry(ctx: RequestContext) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The open poll, the form's code as panel knows it, and the answers as the poll accepts
    them — or the refusal key_in_form answers with. A form keyed in before is refused as such
    whatever its answers now (the atomic check is key_paper_code's); an unknown code before its
    answers are read."""
    poll = open_poll(ctx)
    form = ctx.rpc("panel", "paper_code", ctx.municipality, poll["poll_id"], ctx.body["code"], True)
    return poll, form, checked_answers(ctx, poll, ctx.body["answers"])


def check_entry(ctx: RequestContext) -> dict[str, Any]:
    """key_in_form without keying in: what would count, for the page's review step (with the
    buurt's name: data entry may not list the areas)."""
    _, form, answers_in = checked_entry(ctx)
    buurten = ctx.rpc("panel", "list_areas", ctx.municipality, "buurt", None)
    names = {a["code"]: a["name"] for a in buurten}
    return {
        "code": form["code"],
        "buurt_code": form["buurt_code"],
        "buurt_name": names.get(form["buurt_code"], form["buurt_code"]),
        "answers": answers_in,
        "age_band": ctx.body.get("age_band"),
        "sex": ctx.body.get("sex"),
    }


# key_in_form's rules with check_entry as handler; not in ROUTES (no JSON route, no OpenAPI).
CHECK_ENTRY = dataclasses.replace(
    next(r for r in ROUTES if r.name == "key_in_form"),
    name="check_entry",
    handler=check_entry,
    success=200,
)
