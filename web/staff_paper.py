"""Paper questionnaires in the staff dashboard (issue 14): print runs of a poll's forms, the
printable forms (HTML with print CSS: one form per code, every question with its options and
its condition in words, boxes to tick), and the data-entry screen where a returned form is keyed
in by its code.

Every page gets its data through ``ctx.api`` (``gateway/paper_api.py``): the routes' roles
decide who may do what — print runs need an editor, keying in the role ``invoerder`` (or an
editor or admin) — and keying in goes through the app's own validation and submission path.

A keyed-in form is reviewed before it counts ("Controleren", then "Bevestigen en tellen"): once
counted it cannot be taken back (results are released in versions that may only grow), so the
review page is where a wrong box is caught. It carries the answers in hidden fields; nothing is
stored before the confirmation.
"""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from gateway.auth import ENTRY_ROLES
from gateway.paper_api import CHECK_ENTRY
from gateway.poll_cache import eligible
from services.common.errors import Conflict, InvalidInput, NotFound
from services.common.pollspec import DONT_KNOW, visible_questions
from web import pollform
from web.pages import PageContext, Redirect
from web.resident import field_errors
from web.staff import area_tree, get_poll, moment_text, show, signed_in, staff_page

ENTRY_HOME = "/staff/invoer"


def may_key_in(ctx: PageContext) -> bool:
    return ctx.claims.get("role") in ENTRY_ROLES


def age_band_names(ctx: PageContext) -> dict[str, str]:
    return {
        "15_24": ctx._("15 to 24 years"),
        "25_44": ctx._("25 to 44 years"),
        "45_64": ctx._("45 to 64 years"),
        "65_plus": ctx._("65 years or older"),
    }


def sex_names(ctx: PageContext) -> dict[str, str]:
    return {
        "vrouw": ctx._("Woman"),
        "man": ctx._("Man"),
        "anders": ctx._("Other"),
        "onbekend": ctx._("I would rather not say"),
    }


def paper_errors(exc: InvalidInput) -> list[dict[str, str]]:
    """Field errors of a paper route: the code's field is ``paper_code`` on the pages (its own
    texts; ``code`` is the e-mail's six digits elsewhere)."""
    found = []
    for e in field_errors(exc):
        if e["field"] == "code":
            e = {**e, "field": "paper_code", "anchor": "f-paper_code"}
        found.append(e)
    return found


# --- print runs ---------------------------------------------------------------------------------


def audience_buurten(ctx: PageContext, poll: dict[str, Any]) -> list[dict[str, Any]]:
    """Wijken with the buurten of the poll's audience (the app's own rule: ``eligible``)."""
    shape = {
        "poll_id": poll["id"],
        "municipality_code": poll["municipality_code"],
        "audience": poll["audience"],
    }
    tree = []
    for wijk in area_tree(ctx):
        buurten = [
            b
            for b in wijk["buurten"]
            if eligible(shape, poll["municipality_code"], wijk["code"], b["code"])
        ]
        if buurten:
            tree.append({**wijk, "buurten": buurten})
    return tree


@staff_page(
    "GET,POST",
    "/peilingen/<poll_id>/papier",
    resource="poll",
    role="editor",
    summary="Staff: paper forms of a poll — print runs per buurt, and a new run",
)
def staff_paper_runs(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    poll = get_poll(ctx)  # another municipality's poll: 404, before the form is read
    errors: list[dict[str, str]] = []
    values = {"buurt_code": "", "count": ""}
    if ctx.request.method == "POST":
        values = {k: ctx.form.get(k, "").strip() for k in values}
        count = values["count"]
        body = {"buurt_code": values["buurt_code"], "count": int(count) if count.isdigit() else -1}
        try:
            run = ctx.api("create_paper_run", params={"poll_id": poll["id"]}, body=body).body
        except InvalidInput as exc:
            errors = field_errors(exc)
        else:
            raise Redirect(f"/staff/peilingen/{poll['id']}/papier/afdrukken?run={run['run_id']}")
    runs = ctx.api("paper_runs", params={"poll_id": poll["id"]}).body
    tree = audience_buurten(ctx, poll)
    names = {b["code"]: b["name"] for w in tree for b in w["buurten"]}
    for w in area_tree(ctx):
        for b in w["buurten"]:
            names.setdefault(b["code"], b["name"])
    return show(
        ctx,
        "staff/paper_runs.html",
        found,
        poll=poll,
        definition=poll["definition"],
        runs=[{**r, "made_on": moment_text(r["created_at"], ctx.lang)} for r in runs],
        buurt_names=names,
        wijken=tree,
        printable=poll.get("status") in ("scheduled", "open")
        and poll["audience"].get("kind") != "sample",
        values=values,
        errors=errors,
        status=422 if errors else 200,
    )


@staff_page(
    "GET",
    "/peilingen/<poll_id>/papier/afdrukken",
    resource="poll",
    summary="Staff: the printable paper forms of a poll (one run, or all its runs)",
)
def staff_paper_print(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    poll = get_poll(ctx)
    wanted = ctx.request.args.get("run", "")
    runs = ctx.api("paper_runs", params={"poll_id": poll["id"]}).body
    if wanted:
        runs = [r for r in runs if r["run_id"] == wanted]
        if not runs:
            raise NotFound("no such print run")
    names = {b["code"]: b["name"] for w in area_tree(ctx) for b in w["buurten"]}
    forms = []
    for run in runs:
        detail = ctx.api("paper_run", params={"poll_id": poll["id"], "run_id": run["run_id"]}).body
        for form in detail["forms"]:
            if form["keyed_at"] is None:  # a form keyed in already is not printed again
                forms.append({**form, "buurt": names.get(run["buurt_code"], run["buurt_code"])})
    definition = poll["definition"]
    return show(
        ctx,
        "staff/paper_print.html",
        found,
        poll=poll,
        definition=definition,
        questions=print_questions(definition, ctx.lang),
        dont_know_label=pollform.dont_know_label,
        forms=forms,
        age_bands=age_band_names(ctx),
        sexes=sex_names(ctx),
        closes_on=moment_text(poll.get("closes_at"), ctx.lang),
    )


def print_questions(definition: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """The questions as the resident form shows them (``pollform.questions_view``), with the
    choices a paper form offers: a box per option, per scale step, and "don't know"."""
    view = pollform.questions_view(definition, lang)
    for q in view:
        if q["type"] in ("single_choice", "multiple_choice"):
            q["boxes"] = [o["label"] for o in q["options"]]
        elif q["type"] in ("likert5", "rating10"):
            q["boxes"] = [label for _, label in q["steps"]]
        else:
            q["boxes"] = []
        dk = pollform.dont_know_label(q, lang)
        if dk and q["type"] in ("likert5", "rating10"):
            q["boxes"].append(dk)
    return view


# --- data entry -----------------------------------------------------------------------------


@staff_page(
    "GET",
    "/invoer",
    role="invoerder",
    summary="Staff: data entry — the open polls to key paper forms in",
)
def staff_entry_home(ctx: PageContext) -> Response:
    return entry_home(ctx, signed_in(ctx))


def entry_home(
    ctx: PageContext, found: dict[str, Any], refusal: Conflict | None = None, status: int = 200
) -> Response:
    polls = ctx.api("paper_polls").body
    reason = ((refusal.errors or [{}])[0].get("code") if refusal else None) or ""
    return show(
        ctx,
        "staff/entry_home.html",
        found,
        polls=[{**p, "closes_on": moment_text(p.get("closes_at"), ctx.lang)} for p in polls],
        refusal=reason,
        done=ctx.request.args.get("ingevoerd", ""),
        status=status,
    )


@staff_page(
    "GET,POST",
    "/invoer/<poll_id>",
    resource="poll",
    role="invoerder",
    summary="Staff: data entry — key in a returned paper form by its code",
)
def staff_entry(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    poll_id = ctx.params["poll_id"]
    try:
        poll = ctx.api("paper_poll", params={"poll_id": poll_id}).body  # another's: 404
    except Conflict as exc:  # closed, or not open yet: say so, and which polls are open
        return entry_home(ctx, found, refusal=exc, status=409)
    definition = poll["definition"]
    code = (ctx.form.get("code") or ctx.request.args.get("code", "")).strip()
    errors: list[dict[str, str]] = []
    values = {
        "poll": poll,
        "definition": definition,
        "code": code,
        "done": ctx.request.args.get("ingevoerd", ""),
        "age_bands": age_band_names(ctx),
        "sexes": sex_names(ctx),
    }
    if not code:
        if ctx.request.method == "POST" or "code" in ctx.request.args:
            errors = [{"field": "paper_code", "code": "missing", "anchor": "f-paper_code"}]
        return entry_page(ctx, found, values, step="code", errors=errors)
    try:
        form = ctx.api("paper_form", params={"poll_id": poll_id, "code": code}).body
    except InvalidInput as exc:
        return entry_page(ctx, found, values, step="code", errors=paper_errors(exc))
    values["code"] = form["code"]
    if form["keyed_at"]:
        return keyed_already(ctx, found, values, form["keyed_at"], form.get("keyed_by"))
    values["buurt_code"] = form["buurt_code"]
    if ctx.request.method != "POST" or ctx.form.get("step") == "back":
        # "Back to the form" from the review: the answers form with what was keyed in.
        return entry_page(ctx, found, values, step="answers", errors=[])
    try:
        body = {
            "code": form["code"],
            "answers": pollform.answers_from_form(definition, ctx.form),
            "age_band": ctx.form.get("age_band") or None,
            "sex": ctx.form.get("sex") or None,
        }
        if ctx.form.get("step") == "confirm":  # only here does the form count
            ctx.api("key_in_form", params={"poll_id": poll_id}, body=body)
        else:
            checked = ctx.api(CHECK_ENTRY, params={"poll_id": poll_id}, body=body).body
    except InvalidInput as exc:
        return entry_page(ctx, found, values, step="answers", errors=paper_errors(exc))
    except Conflict as exc:  # keyed in meanwhile (by a colleague, say): refused as such
        first = (exc.errors or [{}])[0]
        if first.get("code") != "already_keyed":
            raise
        return keyed_already(ctx, found, values, first.get("keyed_at"), None)
    if ctx.form.get("step") == "confirm":
        raise Redirect(f"{ENTRY_HOME}/{poll_id}?ingevoerd={form['code']}")
    return entry_page(
        ctx,
        found,
        {**values, "review": review_rows(ctx, definition, checked), "kept": kept_fields(ctx.form)},
        step="review",
        errors=[],
    )


def kept_fields(form: MultiDict) -> list[tuple[str, str]]:
    """The answers form's fields as keyed in, carried by the review page in hidden fields: back
    to the form, every value is there again; confirmed, they are read as the first time."""
    return [
        (name, value)
        for name, value in form.items(multi=True)
        if name.startswith("q.") or name in ("age_band", "sex")
    ]


def review_rows(
    ctx: PageContext, definition: dict[str, Any], checked: dict[str, Any]
) -> dict[str, Any]:
    """What the review page shows: the form's buurt, every question with its answer in words
    (or that it was left empty, or did not apply after an earlier answer), age band and sex."""
    answers = checked["answers"]
    shown = set(visible_questions(definition, answers))
    rows = []
    for q in pollform.questions_view(definition, ctx.lang):
        value = answers.get(q["id"])
        if value is None:
            rows.append(
                {
                    "q": q,
                    "empty": ctx._("Not filled in")
                    if q["id"] in shown
                    else ctx._("Does not apply after an earlier answer"),
                }
            )
        else:
            rows.append({"q": q, "words": answer_in_words(ctx, q, value)})
    return {
        "buurt": checked["buurt_name"],
        "rows": rows,
        "age_band": age_band_names(ctx).get(checked.get("age_band") or ""),
        "sex": sex_names(ctx).get(checked.get("sex") or ""),
    }


def answer_in_words(ctx: PageContext, q: dict[str, Any], value: Any) -> list[str]:
    """A checked answer as the form shows it: option labels (a ranking in its order), a scale's
    step, "don't know", a location's coordinates, the open text. One line per item."""
    if value == DONT_KNOW:
        return [pollform.dont_know_label(q, ctx.lang) or ctx._("Don't know")]
    labels = {str(o["id"]): o["label"] for o in q.get("options", [])}
    kind = q["type"]
    if kind == "single_choice":
        return [labels.get(str(value), str(value))]
    if kind == "multiple_choice":
        return [labels.get(str(v), str(v)) for v in value]
    if kind == "ranking":
        return [
            ctx._("%(place)s. %(label)s", place=place, label=labels.get(str(v), str(v)))
            for place, v in enumerate(value, start=1)
        ]
    if kind in ("likert5", "rating10"):
        steps = dict(q["steps"])
        label = steps.get(value, str(value))
        return [
            label
            if label == str(value)
            else ctx._("%(value)s: %(label)s", value=value, label=label)
        ]
    if kind == "location":
        return [
            ctx._(
                "Point chosen on the map: %(lat)s, %(lon)s",
                lat=f"{value['lat']:.5f}",
                lon=f"{value['lon']:.5f}",
            )
        ]
    return [str(value)]


def entry_page(
    ctx: PageContext,
    found: dict[str, Any],
    values: dict[str, Any],
    *,
    step: str,
    errors: list[dict[str, str]],
    status: int | None = None,
) -> Response:
    definition = values["definition"]
    return show(
        ctx,
        "staff/entry.html",
        found,
        step=step,
        errors=errors,
        questions=pollform.questions_view(definition, ctx.lang),
        field_name=pollform.field_name,
        dont_know_label=pollform.dont_know_label,
        form=ctx.form if ctx.request.method == "POST" else MultiDict(),
        tile_url=ctx.web.tile_url,
        tile_attribution=ctx.web.tile_attribution,
        status=status or (422 if errors else 200),
        **values,
    )


def keyed_already(
    ctx: PageContext,
    found: dict[str, Any],
    values: dict[str, Any],
    keyed_at: str | None,
    keyed_by: str | None,
) -> Response:
    """The form was keyed in before: refused (409), saying when (and by whom)."""
    text = ctx._(
        "Form %(code)s was keyed in already, on %(moment)s. A form counts once: put it aside.",
        code=values["code"],
        moment=moment_text(keyed_at, ctx.lang),
    )
    if keyed_by:
        text += " " + ctx._("It was keyed in by %(who)s.", who=keyed_by)
    errors = [
        {"field": "paper_code", "code": "already_keyed", "anchor": "f-paper_code", "text": text}
    ]
    return entry_page(ctx, found, values, step="code", errors=errors, status=409)
