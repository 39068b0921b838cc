"""The staff dashboard under ``/staff/``: sign in, the polls by status with their response rate,
a poll from a template in the library, its questions and audience (wijken, buurten, a sample),
publish and close, the results per question for the gemeente, each wijk and buurt (SVG charts
and the buurt map from Python, each beside a table with the same figures), and the feedback
(terugkoppeling) with its measures.

The municipality is the signed-in staff member's (the token's ``mun``), never one in the path;
every page gets its data through ``ctx.api`` — the staff routes' own roles, tenancy and
validation. A page that changes state names the role its POST needs (``role``): a viewer's
POST is refused (403 page) before anything is read from the form.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, time
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from babel.dates import format_date
from werkzeug.wrappers import Response

from gateway.auth import DATA_ENTRY, ROLE_RANK, Principal, authorize
from gateway.errors import Forbidden, RouteNotFound
from services.common.errors import (
    BeingComputed,
    Conflict,
    InvalidInput,
    NotFound,
    Unauthorized,
)
from web import charts, pollform
from web.pages import (
    PageContext,
    Redirect,
    app_links,
    forget_session,
    load_session,
    municipality,
    page,
    start_session,
)
from web.preview import base_definition, preview_values
from web.resident import field_errors, when, with_header
from web.session import STAFF

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
STATUSES = ("draft", "scheduled", "open", "closed", "archived")
COUNTED = ("single_choice", "multiple_choice", "likert5", "rating10", "ranking")
MEASURE_STATUSES = ("planned", "in_progress", "done", "dropped")
NEW_QUESTION_TYPES = ("single_choice", "likert5", "open_text")
LINKS = {
    "home": "/staff/",
    "polls": "/staff/peilingen",
    "new": "/staff/peilingen/nieuw",
    "composition": "/staff/panel",
    "sign_out": "/staff/afmelden",
}


# --- the session --------------------------------------------------------------------------------

# The session lives as long as its refresh token (12 h): ``load_session`` refreshes the access
# token (15 minutes) through ``staff_token_refresh``; after that, or when the refresh token is
# refused (the account disabled, the session revoked), the staff member signs in again and comes
# back to the page they were on.


def staff_page(method: str, path: str, **kwargs: Any):
    return page(method, "/staff" + path, app="staff", personal=True, **kwargs)


def back_to(ctx: PageContext) -> str:
    """Where to return after signing in: this page (only a path of the dashboard)."""
    path = ctx.request.full_path.rstrip("?") if ctx.request.method == "GET" else ""
    return path if path.startswith("/staff/") and "//" not in path else ""


def signed_in(ctx: PageContext) -> dict[str, Any]:
    """The signed-in staff member's municipality; a POST needs the page's role; data entry
    (``invoerder``) only the pages whose role is data entry."""
    if not load_session(ctx, STAFF):
        target = back_to(ctx)
        raise Redirect("/staff/?verlopen=1" + (f"&terug={quote(target)}" if target else ""))
    if not ctx.claims.get("mun"):
        raise Forbidden("the platform administrator has no municipality's dashboard")
    if ctx.claims.get("role") == DATA_ENTRY and ctx.page.role != DATA_ENTRY:
        # Data entry sees the data-entry pages only, also those that read no route.
        raise Forbidden("data entry (invoerder) may only key in paper forms")
    if ctx.request.method == "POST" and ctx.page.role:
        principal = Principal(
            "staff", ctx.claims["sub"], ctx.claims["mun"], ctx.claims.get("role"), ctx.claims
        )
        authorize(principal, ctx.page.role)
    return municipality(ctx, ctx.claims["mun"])


def may(ctx: PageContext, role: str) -> bool:
    return ROLE_RANK.get(ctx.claims.get("role") or "", 0) >= ROLE_RANK[role]


def show(ctx: PageContext, template: str, found: dict[str, Any], **values: Any) -> Response:
    return ctx.render(
        template,
        municipality=found,
        app=app_links(found),
        staff=LINKS,
        me=ctx.claims,
        can_edit=may(ctx, "editor"),
        status_names=status_names(ctx),
        **values,
    )


def status_names(ctx: PageContext) -> dict[str, str]:
    return {
        "draft": ctx._("Draft"),
        "scheduled": ctx._("Scheduled"),
        "open": ctx._("Open"),
        "closed": ctx._("Closed"),
        "archived": ctx._("Archived"),
    }


def safe_target(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/staff/") or "//" in value:
        return LINKS["polls"]
    return value


def landing(ctx: PageContext, target: str) -> str:
    """Data entry (``invoerder``) may use the data-entry pages only: it lands there."""
    if ctx.claims.get("role") == "invoerder" and not target.startswith("/staff/invoer"):
        return "/staff/invoer"
    return target


@staff_page("GET,POST", "/", summary="Staff: sign in with e-mail address and password")
def staff_sign_in(ctx: PageContext) -> Response:
    target = safe_target(ctx.form.get("terug") or ctx.request.args.get("terug", ""))
    if load_session(ctx, STAFF) and ctx.claims.get("mun"):
        return ctx.redirect(landing(ctx, target))
    errors: list[dict[str, str]] = []
    email = ctx.form.get("email", "").strip()
    if ctx.request.method == "POST":
        try:
            tokens = ctx.api(
                "login", body={"email": email, "password": ctx.form.get("password", "")}
            ).body
        except (InvalidInput, Unauthorized) as exc:
            errors = field_errors(exc)  # type: ignore[arg-type]
        else:
            start_session(ctx, STAFF, tokens)
            if not ctx.claims.get("mun"):
                forget_session(ctx)
                raise Forbidden("the platform administrator has no municipality's dashboard")
            return ctx.redirect(landing(ctx, target))
    return ctx.render(
        "staff/sign_in.html",
        municipality=None,
        staff=LINKS,
        errors=errors,
        email=email,
        target=target,
        expired="verlopen" in ctx.request.args,
        signed_out="afgemeld" in ctx.request.args,
        status=422 if errors else 200,
    )


@staff_page("POST", "/afmelden", summary="Staff: sign out")
def staff_sign_out(ctx: PageContext) -> Response:
    ctx.kind = STAFF
    forget_session(ctx)
    return ctx.redirect("/staff/?afgemeld=1")


@staff_page("GET,POST", "/<path:rest>", summary="Staff: nothing here (an HTML 404)")
def staff_not_found(ctx: PageContext) -> Response:
    raise RouteNotFound("no such page")


# --- polls --------------------------------------------------------------------------------------


def response_rate(ctx: PageContext, poll: dict[str, Any]) -> float | None:
    """The gemeente's response rate as the results show it (None before opening or hidden)."""
    if poll["status"] not in ("open", "closed", "archived"):
        return None
    try:
        doc = results_document(ctx, poll["id"], "all")
    except (Conflict, NotFound, RouteNotFound):
        return None
    gemeente = next((a for a in doc.get("areas", []) if a.get("level") == "gemeente"), None)
    return gemeente.get("response_rate") if gemeente else None


@staff_page("GET", "/peilingen", summary="Staff: our polls by status, with the response rate")
def staff_polls(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    listed = ctx.api("list_polls").body
    groups = []
    for status in ("open", "scheduled", "draft", "closed", "archived"):
        items = [p for p in listed if p["status"] == status]
        for p in items:
            p["rate"] = response_rate(ctx, p)
            p["closes_on"] = when(p.get("closes_at"), ctx.lang)
            p["opens_on"] = when(p.get("opens_at"), ctx.lang)
        if items:
            groups.append((status, items))
    try:
        overdue = ctx.api("overdue_feedback").body
    except NotFound:  # feedback has not heard of this municipality yet
        overdue = []
    return show(
        ctx,
        "staff/polls.html",
        found,
        groups=groups,
        overdue=overdue,
        published="gepubliceerd" in ctx.request.args,
    )


@staff_page(
    "GET,POST", "/peilingen/nieuw", role="editor", summary="Staff: a new poll from a template"
)
def staff_new_poll(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    errors: list[dict[str, str]] = []
    templates = ctx.api("list_templates").body
    choice = ctx.form.get("template_id", "")
    preview: dict[str, Any] = {}
    known = {t["id"] for t in templates}
    if ctx.request.method == "POST" and ctx.form.get("preview") and choice in known:
        # "Voorbeeld tonen" (no JavaScript): the chosen template as residents will see it.
        template = ctx.api("get_template", params={"template_id": choice}).body
        preview = preview_values(ctx, template["definition"])
    elif ctx.request.method == "POST":
        if choice not in known:
            errors = [
                {
                    "field": "template_id",
                    "code": "required",
                    "message": "choose",
                    "anchor": "f-template_id",
                }
            ]
        else:
            made = ctx.api("create_poll", body={"template_id": choice}).body
            return ctx.redirect(f"/staff/peilingen/{made['id']}/bewerken?nieuw=1")
    return show(
        ctx,
        "staff/new_poll.html",
        found,
        templates=sorted(templates, key=lambda t: t["title"]),
        chosen=choice,
        errors=errors,
        status=422 if errors else 200,
        **preview,
    )


def get_poll(ctx: PageContext) -> dict[str, Any]:
    return ctx.api("get_poll", params={"poll_id": ctx.params["poll_id"]}).body


def area_tree(ctx: PageContext) -> list[dict[str, Any]]:
    """Our wijken, each with its buurten, by name (none before the CBS areas are imported)."""
    try:
        found = ctx.api("list_areas").body
    except NotFound:
        return []
    wijken = {a["code"]: {**a, "buurten": []} for a in found if a["level"] == "wijk"}
    for a in found:
        if a["level"] == "buurt" and a.get("parent_code") in wijken:
            wijken[a["parent_code"]]["buurten"].append(a)
    for w in wijken.values():
        w["buurten"].sort(key=lambda b: b["name"])
    return sorted(wijken.values(), key=lambda w: w["name"])


def audience_text(ctx: PageContext, audience: dict[str, Any], names: dict[str, str]) -> str:
    text = areas_text(ctx, audience, names)
    who = kinds_text(ctx, audience)
    return f"{text}. {who}" if who else text


def areas_text(ctx: PageContext, audience: dict[str, Any], names: dict[str, str]) -> str:
    kind = audience.get("kind")
    codes = audience.get("area_codes") or []
    listed = ", ".join(names.get(c, c) for c in codes)
    if kind == "areas":
        return ctx._("Residents of: %(areas)s", areas=listed)
    if kind == "sample":
        size = audience.get("sample_size") or 0
        if codes:
            return ctx._("A sample of %(n)s residents per area in: %(areas)s", n=size, areas=listed)
        return ctx._("A sample of %(n)s residents of the whole municipality", n=size)
    return ctx._("Every resident of the municipality in the panel")


def kinds_text(ctx: PageContext, audience: dict[str, Any]) -> str:
    """Who of the panel a poll is for, when not residents only (the default)."""
    kinds = audience.get("kinds") or ["resident"]
    if list(kinds) == ["resident"]:
        return ""
    names = {
        "resident": ctx._("residents"),
        "ondernemer": ctx._("businesses"),
        "organisatie": ctx._("organisations"),
    }
    return ctx._("For: %(kinds)s", kinds=", ".join(names.get(k, k) for k in kinds))


def area_names(tree: list[dict[str, Any]]) -> dict[str, str]:
    names = {}
    for w in tree:
        names[w["code"]] = ctx_name = w["name"]
        for b in w["buurten"]:
            names[b["code"]] = f"{b['name']} ({ctx_name})"
    return names


def poll_counts(ctx: PageContext, poll: dict[str, Any]) -> dict[str, Any]:
    """What the poll's details show: audience, dates, invitations, notifications, response."""
    deliveries = None
    if poll["status"] in ("open", "closed", "archived"):
        deliveries = ctx.api("delivery_summary", params={"poll_id": poll["id"]}).body
    sent: dict[str, int] = {}
    for d in (deliveries or {}).get("deliveries", []):
        sent[d["status"]] = sent.get(d["status"], 0) + d["count"]
    return {
        "poll": poll,
        "audience": audience_text(ctx, poll["audience"], area_names(area_tree(ctx))),
        "deliveries": deliveries,
        "sent": sent,
        "rate": response_rate(ctx, poll),
        "opens_on": when(poll.get("opens_at"), ctx.lang),
        "opens_moment": moment_text(poll.get("opens_at"), ctx.lang),
        "closes_on": when(poll.get("closes_at"), ctx.lang),
    }


def moment_text(value: str | None, lang: str) -> str:
    """A date and time in Dutch time, as people read it ("1 maart 2027 09:00")."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(AMSTERDAM)
    return f"{format_date(moment.date(), format='long', locale=lang)} {moment:%H:%M}"


@staff_page("GET", "/peilingen/<poll_id>", resource="poll", summary="Staff: one poll")
def staff_poll(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    poll = get_poll(ctx)
    return show(
        ctx,
        "staff/poll.html",
        found,
        definition=poll["definition"],
        questions=pollform.questions_view(poll["definition"], ctx.lang),
        dont_know_label=pollform.dont_know_label,
        done=ctx.request.args.get("klaar", ""),
        **poll_counts(ctx, poll),
    )


@staff_page(
    "GET",
    "/peilingen/<poll_id>/tellingen",
    resource="poll",
    summary="Staff: a poll's live counts (the fragment htmx refreshes on the poll's page)",
)
def staff_poll_counts(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    return show(ctx, "staff/_counts.html", found, **poll_counts(ctx, get_poll(ctx)))


# --- editing a draft ----------------------------------------------------------------------------


def closes_at_from(value: str) -> str | None:
    """A date (yyyy-mm-dd) → the end of that day in Amsterdam, as an aware ISO time."""
    value = value.strip()
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise InvalidInput(
            "closes_at must be a date",
            [{"field": "closes_at", "code": "invalid", "message": "date"}],
        ) from None
    return datetime.combine(day, time(23, 59), AMSTERDAM).isoformat()


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def option_id(label: str, taken: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[:30] or "optie"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def definition_from_form(ctx: PageContext, definition: dict[str, Any]) -> dict[str, Any]:
    """The poll's definition with the form's texts, removals and one new question."""
    form = ctx.form
    new = {**definition, "questions": []}
    for name in ("title", "intro"):  # required by pollspec: empty is refused there
        if name in form:
            new[name] = form[name].strip()
    for i, q in enumerate(definition["questions"]):
        if form.get(f"q{i}-remove") == "ja":
            continue
        q = dict(q)
        q["text"] = form.get(f"q{i}-text", q["text"]).strip()
        help_text = form.get(f"q{i}-help", "").strip()
        if help_text:
            q["help"] = help_text
        else:
            q.pop("help", None)
        q["required"] = form.get(f"q{i}-required") == "ja"
        if "options" in q:
            q["options"] = [
                {**o, "label": form.get(f"q{i}-o{j}", o["label"]).strip()}
                for j, o in enumerate(q["options"])
            ]
        new["questions"].append(q)
    kind = form.get("new-type", "")
    text = form.get("new-text", "").strip()
    if kind in NEW_QUESTION_TYPES and text:
        taken = {q["id"] for q in definition["questions"]}
        n = len(definition["questions"]) + 1
        qid = f"vraag_{n}"
        while qid in taken:
            n += 1
            qid = f"vraag_{n}"
        added: dict[str, Any] = {"id": qid, "type": kind, "text": text, "required": False}
        if kind == "single_choice":
            ids: set[str] = set()
            added["options"] = [
                {"id": option_id(label, ids), "label": label}
                for label in lines(form.get("new-options", ""))
            ]
        new["questions"].append(added)
    return new


def audience_from_form(ctx: PageContext, form: Any = None) -> dict[str, Any]:
    form = ctx.form if form is None else form
    kind = form.get("audience_kind", "municipality")
    codes = [c for c in form.getlist("area_codes") if c]
    audience: dict[str, Any] = {"kind": kind, "area_codes": codes if kind != "municipality" else []}
    if kind == "sample":
        size = form.get("sample_size", "").strip()
        audience["sample_size"] = int(size) if size.isdigit() else size or None
    if form.get("kinds_shown"):
        # The kinds of participant (issue 14): none ticked is sent as such, and refused.
        audience["kinds"] = [k for k in form.getlist("audience_kinds") if k]
    return audience


def definition_errors(exc: InvalidInput, definition: dict[str, Any], ctx: PageContext):
    """The service's errors about the definition, each at the question it is about."""
    found = []
    for e in field_errors(exc):
        name = e["field"]
        match = re.match(r"definition\.questions\[(\d+)\]", name)
        if match:
            i = int(match.group(1))
            number = i + 1
            text = ctx._(
                "Question %(number)s: %(problem)s", number=number, problem=e.get("message", "")
            )
            found.append({**e, "anchor": f"q{i}-text", "text": text})
        elif name.startswith("definition.title"):
            found.append({**e, "anchor": "f-title", "field": "title"})
        elif name.startswith("audience.kinds"):
            found.append({**e, "anchor": "f-kinds", "field": "kinds"})
        elif name.startswith("audience"):
            found.append({**e, "anchor": "f-audience"})
        elif name.startswith("definition"):
            text = ctx._("The questions: %(problem)s", problem=e.get("message", ""))
            found.append({**e, "anchor": "f-title", "text": text})
        else:
            found.append(e)
    return found


@staff_page(
    "GET,POST",
    "/peilingen/<poll_id>/bewerken",
    resource="poll",
    role="editor",
    summary="Staff: edit a draft — its questions, audience and closing date",
)
def staff_edit_poll(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    poll = get_poll(ctx)
    errors: list[dict[str, str]] = []
    definition = poll["definition"]
    audience = poll["audience"]
    previewed = False
    if (
        ctx.request.method == "POST"
        and poll["status"] == "draft"
        and ctx.form.get("next") == "preview"
    ):
        # "Voorbeeld bijwerken": the form's texts shown and previewed, nothing saved.
        definition = definition_from_form(ctx, base_definition(ctx, poll))
        audience = audience_from_form(ctx)
        previewed = True
    elif ctx.request.method == "POST" and poll["status"] == "draft":
        try:
            definition = definition_from_form(ctx, base_definition(ctx, poll))
            audience = audience_from_form(ctx)
            body = {
                "definition": definition,
                "audience": audience,
                "closes_at": closes_at_from(ctx.form.get("closes_at", "")),
            }
            original = ctx.request
            ctx.request = with_header(original, "If-Match", f'"{ctx.form.get("version", "")}"')
            try:
                ctx.api("update_poll", params={"poll_id": poll["id"]}, body=body)
            finally:
                ctx.request = original
        except InvalidInput as exc:
            errors = definition_errors(exc, definition, ctx)
        else:
            if ctx.form.get("next") == "publish":
                return ctx.redirect(f"/staff/peilingen/{poll['id']}/publiceren")
            return ctx.redirect(f"/staff/peilingen/{poll['id']}?klaar=opgeslagen")
    closes = ""
    if poll.get("closes_at"):
        moment = datetime.fromisoformat(poll["closes_at"].replace("Z", "+00:00"))
        closes = moment.astimezone(AMSTERDAM).date().isoformat()
    return show(
        ctx,
        "staff/edit_poll.html",
        found,
        poll=poll,
        definition=definition,
        audience=audience,
        wijken=area_tree(ctx),
        closes=ctx.form.get("closes_at", closes),
        errors=errors,
        created="nieuw" in ctx.request.args,
        previewed=previewed,
        base=json.dumps(definition, ensure_ascii=False),
        status=422 if errors else 200,
        **preview_values(ctx, definition),
    )


def confirm_action(ctx: PageContext, action: str, route: str, allowed: tuple[str, ...]) -> Response:
    found = signed_in(ctx)
    poll = get_poll(ctx)
    if ctx.request.method == "POST" and poll["status"] in allowed:
        ctx.api(route, params={"poll_id": poll["id"]})
        return ctx.redirect(f"/staff/peilingen/{poll['id']}?klaar={action}")
    tree = area_tree(ctx)
    return show(
        ctx,
        "staff/confirm.html",
        found,
        poll=poll,
        action=action,
        allowed=poll["status"] in allowed,
        audience=audience_text(ctx, poll["audience"], area_names(tree)),
        closes_on=when(poll.get("closes_at"), ctx.lang),
    )


@staff_page(
    "GET,POST",
    "/peilingen/<poll_id>/publiceren",
    resource="poll",
    role="editor",
    summary="Staff: publish a draft (after a confirmation)",
)
def staff_publish_poll(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    poll = get_poll(ctx)
    planned = opening_of(poll)
    choice = ctx.form.get("when") or ("later" if planned else "now")
    opens_value = ctx.form.get("opens_at", planned)
    errors: list[dict[str, str]] = []
    status = 200
    followed: dict[str, Any] | None = None  # the poll that already follows this one's wave
    if ctx.request.method == "POST" and poll["status"] == "draft":
        try:
            opens_at = opens_at_from(ctx, opens_value) if choice == "later" else None
            if opens_at is not None or poll.get("opens_at"):  # a new time, or none any more
                original = ctx.request
                version = ctx.form.get("version", str(poll["version"]))
                ctx.request = with_header(original, "If-Match", f'"{version}"')
                try:
                    ctx.api(
                        "update_poll", params={"poll_id": poll["id"]}, body={"opens_at": opens_at}
                    )
                finally:
                    ctx.request = original
            published = ctx.api("publish_poll", params={"poll_id": poll["id"]}).body
        except InvalidInput as exc:
            errors = [{**e, "anchor": "f-opens_at"} for e in field_errors(exc)]
            status = 422
        except Conflict as exc:
            taken = next((e for e in exc.errors if e.get("code") == "wave_already_followed"), None)
            if taken is None:
                raise
            followed = ctx.api("get_poll", params={"poll_id": taken["poll_id"]}).body
            errors = [
                {
                    **taken,
                    "anchor": "f-previous_poll_id",
                    "text": ctx._(
                        "“%(title)s” already follows the same wave of this series and has been "
                        "published. A series goes one wave after another: start the next wave "
                        "from that poll instead.",
                        title=followed["title"],
                    ),
                }
            ]
            status = 409
        else:
            done = "ingepland" if published["status"] == "scheduled" else "gepubliceerd"
            return ctx.redirect(f"/staff/peilingen/{poll['id']}?klaar={done}")
    return show(
        ctx,
        "staff/confirm.html",
        found,
        poll=poll,
        action="gepubliceerd",
        allowed=poll["status"] == "draft",
        audience=audience_text(ctx, poll["audience"], area_names(area_tree(ctx))),
        closes_on=when(poll.get("closes_at"), ctx.lang),
        when_choice=choice,
        opens_value=opens_value,
        errors=errors,
        followed=followed,
        status=status,
    )


def opening_of(poll: dict[str, Any]) -> str:
    """The planned opening as the form's value (yyyy-mm-ddThh:mm, Amsterdam), or ""."""
    if not poll.get("opens_at") or poll["status"] != "draft":
        return ""
    moment = datetime.fromisoformat(poll["opens_at"].replace("Z", "+00:00"))
    return moment.astimezone(AMSTERDAM).strftime("%Y-%m-%dT%H:%M")


def opens_at_from(ctx: PageContext, value: str) -> str:
    """A local date and time (yyyy-mm-ddThh:mm, as a datetime-local input sends it; a space
    instead of the T too) in Amsterdam → an aware ISO time, in the future."""
    value = value.strip().replace(" ", "T")
    try:
        moment = datetime.strptime(value, "%Y-%m-%dT%H:%M").replace(tzinfo=AMSTERDAM)
    except ValueError:
        raise InvalidInput(
            "opens_at must be a date and time",
            [
                {
                    "field": "opens_at",
                    "code": "invalid",
                    "message": "date and time",
                    "text": ctx._("Enter the date and time to publish, like 2027-03-01 09:00."),
                }
            ],
        ) from None
    if moment <= datetime.now(AMSTERDAM):
        raise InvalidInput(
            "opens_at lies in the past",
            [
                {
                    "field": "opens_at",
                    "code": "in_past",
                    "message": "in the future",
                    "text": ctx._("Choose a moment in the future, or publish now."),
                }
            ],
        )
    return moment.isoformat()


@staff_page(
    "GET,POST",
    "/peilingen/<poll_id>/sluiten",
    resource="poll",
    role="editor",
    summary="Staff: close an open poll (after a confirmation)",
)
def staff_close_poll(ctx: PageContext) -> Response:
    return confirm_action(ctx, "gesloten", "close_poll", ("open", "scheduled"))


# --- results ------------------------------------------------------------------------------------


def results_document(ctx: PageContext, poll_id: str, view: str) -> dict[str, Any]:
    body = ctx.api("poll_results", params={"poll_id": poll_id}, query={"respondents": view}).body
    return json.loads(body) if isinstance(body, str) else body


def option_labels(q: dict[str, Any], lang: str) -> dict[str, str]:
    """Option id → the label residents saw (scales: the step's label or number)."""
    labels: dict[str, str] = {}
    if q["type"] == "likert5":
        steps = q.get("labels") or pollform.SCALE_DEFAULT_LABELS.get(lang, [])
        labels = {
            str(i + 1): f"{i + 1} · {steps[i]}" if i < len(steps) else str(i + 1) for i in range(5)
        }
    elif q["type"] == "rating10":
        labels = {str(i): str(i) for i in range(11)}
    for o in q.get("options", []):
        labels[str(o["id"])] = o["label"]
    if "dont_know" in q:
        labels["dont_know"] = pollform.dont_know_label(q, lang) or "dont_know"
    return labels


def figure_of(figures: dict[str, Any], option: str) -> dict[str, Any]:
    """One option's figures in an area: shown, hidden, or none (nobody answered)."""
    if figures.get("suppressed"):
        return {"state": "hidden"}
    if not figures.get("respondents"):
        return {"state": "none", "respondents": figures.get("respondents")}
    chosen = next((o for o in figures.get("options", []) if o["option"] == option), None)
    if chosen is None or chosen.get("count") is None:  # the area's n is shown, this count not
        return {
            "state": "hidden",
            "option_hidden": True,
            "respondents": figures.get("respondents"),
            "effective_n": figures.get("effective_n"),
        }
    value = chosen.get("weighted_percent")
    return {
        "state": "shown",
        "respondents": figures.get("respondents"),
        "effective_n": figures.get("effective_n"),
        "count": chosen.get("count"),
        "percent": chosen.get("percent"),
        "weighted": value,
        "low": chosen.get("ci_low"),
        "high": chosen.get("ci_high"),
        "value": value if value is not None else chosen.get("percent"),
        "mean": figures.get("mean"),
        "notes": figures.get("weighting_notes") or [],
    }


@staff_page(
    "GET",
    "/peilingen/<poll_id>/resultaten",
    resource="poll",
    summary="Staff: results per question for the gemeente, wijken and buurten, charts and map",
)
def staff_results(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    poll = get_poll(ctx)
    if poll["status"] in ("draft", "scheduled"):
        return show(ctx, "staff/results.html", found, poll=poll, doc=None)
    args = ctx.request.args
    view = args.get("respondents", "all")
    if view not in ("all", "panel"):
        view = "all"
    try:
        doc = results_document(ctx, poll["id"], view)
    except BeingComputed:
        # A first (or final) release that takes a while: said as such, with the way back.
        response = show(ctx, "staff/results.html", found, poll=poll, doc=None, computing=True)
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response
    asked = {q["id"]: q for q in poll["definition"]["questions"]}
    tabled = [q for q in doc["questions"] if q["id"] in asked]
    question = next((q for q in tabled if q["id"] == args.get("vraag")), None) or (
        tabled[0] if tabled else None
    )
    gemeente = next((a for a in doc["areas"] if a["level"] == "gemeente"), None)
    wijken = sorted(
        (a for a in doc["areas"] if a["level"] == "wijk"), key=lambda a: a["name"] or ""
    )
    buurten = sorted(
        (a for a in doc["areas"] if a["level"] == "buurt"), key=lambda a: a["name"] or ""
    )
    values: dict[str, Any] = {
        "poll": poll,
        "doc": doc,
        "view": view,
        "tabled": tabled,
        "question": question,
        "gemeente": gemeente,
        "wijken": wijken,
        "buurten": buurten,
        "k": doc.get("k"),
        "charts": None,
    }
    if gemeente is not None:
        values["who"] = respondents_split(ctx, gemeente)
    if question and question["type"] in COUNTED:
        values.update(
            counted_results(ctx, poll, question, asked[question["id"]], wijken, buurten, gemeente)
        )
    return show(ctx, "staff/results.html", found, **values)


def kind_names(ctx: PageContext) -> list[tuple[str, str]]:
    return [
        ("resident", ctx._("Residents")),
        ("ondernemer", ctx._("Businesses")),
        ("organisatie", ctx._("Organisations")),
    ]


def channel_names(ctx: PageContext) -> list[tuple[str, str]]:
    return [("app", ctx._("App")), ("link", ctx._("E-mail link")), ("paper", ctx._("Paper"))]


def respondents_split(ctx: PageContext, gemeente: dict[str, Any]) -> list[dict[str, Any]]:
    """The municipality's respondents per kind of participant and per channel (None: hidden),
    as rows of one table."""
    rows = []
    for heading, key, names in (
        (ctx._("Kind of participant"), "kinds", kind_names(ctx)),
        (ctx._("Channel"), "channels", channel_names(ctx)),
    ):
        counts = gemeente.get(key) or {}
        for group, name in names:
            hidden = gemeente.get("suppressed") or counts.get(group, 0) is None
            rows.append(
                {"heading": heading, "label": name, "n": None if hidden else counts.get(group, 0)}
            )
    return rows


def split_rows(
    question: dict[str, Any],
    split: str,
    names: list[tuple[str, str]],
    area: dict[str, Any] | None,
    option: str,
) -> list[dict[str, Any]]:
    """One option's figures in an area per kind of participant or per channel (unweighted)."""
    rows = []
    for group, name in names:
        if group not in (question.get(split) or {}):
            continue  # nobody of that kind or channel answered: no group
        per_area = question[split][group]
        if area is None or area.get("suppressed"):
            figures: dict[str, Any] = {"suppressed": True}
        else:
            figures = per_area.get(area["code"], {})
        rows.append({"group": group, "label": name, **figure_of(figures, option)})
    return rows


def counted_results(
    ctx: PageContext,
    poll: dict[str, Any],
    question: dict[str, Any],
    asked: dict[str, Any],
    wijken: list[dict[str, Any]],
    buurten: list[dict[str, Any]],
    gemeente: dict[str, Any] | None,
) -> dict[str, Any]:
    labels = option_labels(asked, ctx.lang)
    options = question.get("options") or []
    option = ctx.request.args.get("optie")
    if option is None or option not in options:
        option = options[0] if options else ""
    hidden_word, none_word = ctx._("hidden"), ctx._("no answers")
    gm_figures = question["areas"].get(gemeente["code"], {"suppressed": True}) if gemeente else {}
    gm_rows = []
    bars = []
    for opt in options:
        fig = figure_of(gm_figures, opt)
        gm_rows.append({"option": opt, "label": labels.get(opt, opt), **fig})
        bars.append(
            charts.Bar(
                labels.get(opt, opt),
                fig.get("value"),
                fig.get("low"),
                fig.get("high"),
                hidden=fig["state"] == "hidden",
                reference=fig.get("percent") if fig.get("weighted") is not None else None,
            )
        )
    gm_chart = charts.bar_chart(
        bars,
        title=ctx._(
            "%(question)s — the whole municipality, weighted percentage with 95%% interval",
            question=question["text"],
        ),
        hidden_word=hidden_word,
        none_word=none_word,
        chart_id="chart-gemeente",
    )

    def rows_for(level_areas: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows = []
        for a in level_areas:
            fig = figure_of(question["areas"].get(a["code"], {"suppressed": True}), option)
            if a.get("suppressed"):
                fig = {"state": "hidden"}
            rows.append({"area": a, **fig})
        return rows

    wijk_rows = rows_for(wijken)
    option_label = labels.get(option, option)
    wijk_chart = charts.bar_chart(
        [
            charts.Bar(
                r["area"]["name"] or r["area"]["code"],
                r.get("value"),
                r.get("low"),
                r.get("high"),
                hidden=r["state"] == "hidden",
                reference=r.get("percent") if r.get("weighted") is not None else None,
            )
            for r in wijk_rows
        ],
        title=ctx._(
            "Share answering “%(option)s” per wijk, weighted, with 95%% interval",
            option=option_label,
        ),
        hidden_word=hidden_word,
        none_word=none_word,
        chart_id="chart-wijken",
    )
    buurt_rows = rows_for(buurten)
    try:
        boundaries = ctx.api(
            "public_buurt_boundaries", params={"municipality_code": poll["municipality_code"]}
        ).body
    except NotFound:  # no CBS areas imported: no map
        boundaries = {"features": []}
    shapes = {f["properties"]["code"]: f["geometry"]["coordinates"] for f in boundaries["features"]}
    shading = {}
    for r in buurt_rows:
        name = r["area"]["name"] or r["area"]["code"]
        if r["state"] == "shown":
            label = f"{name}: {charts._number(r['value'])}%"
        elif r["state"] == "hidden":
            label = f"{name}: {hidden_word}"
        else:
            label = f"{name}: {none_word}"
        shading[r["area"]["code"]] = {"state": r["state"], "value": r.get("value"), "label": label}
    for code in shapes:
        if code not in shading:
            shading[code] = {
                "state": "outside",
                "label": ctx._("%(name)s: not in the audience", name=code),
            }
    buurt_map = charts.buurt_map(
        shapes,
        shading,
        title=ctx._("Map of the buurten: share answering “%(option)s”", option=option_label),
        map_id="map-buurten",
    )
    legend = [
        (charts.swatch(colour, f"legend-{i}"), f"{low:.0f}–{min(high, 100):.0f}%")
        for i, (low, high, colour) in enumerate(charts.CLASSES)
    ]
    kinds = kind_names(ctx) + [("all", ctx._("All participants"))]
    return {
        "kind_rows": split_rows(question, "by_kind", kinds, gemeente, option),
        "channel_rows": split_rows(question, "by_channel", channel_names(ctx), gemeente, option),
        "option": option,
        "option_label": option_label,
        "labels": labels,
        "gm_rows": gm_rows,
        "gm_figures": gm_figures,
        "gm_chart": gm_chart,
        "wijk_rows": wijk_rows,
        "wijk_chart": wijk_chart,
        "buurt_rows": buurt_rows,
        "buurt_map": buurt_map,
        "legend": legend,
        "hatch_swatch": charts.swatch("hatch", "legend-hatch"),
        "none_swatch": charts.swatch(charts.NO_DATA, "legend-none"),
        "charts": True,
    }


@staff_page(
    "GET",
    "/peilingen/<poll_id>/resultaten.csv",
    resource="poll",
    summary="Staff: the results as CSV (the same suppressed figures)",
)
def staff_results_csv(ctx: PageContext) -> Response:
    return export(ctx, "poll_results_csv")


@staff_page(
    "GET",
    "/peilingen/<poll_id>/resultaten.xlsx",
    resource="poll",
    summary="Staff: the results as XLSX (the same suppressed figures)",
)
def staff_results_xlsx(ctx: PageContext) -> Response:
    return export(ctx, "poll_results_xlsx")


def export(ctx: PageContext, route: str) -> Response:
    signed_in(ctx)
    view = ctx.request.args.get("respondents", "all")
    reply = ctx.api(
        route,
        params={"poll_id": ctx.params["poll_id"]},
        query={"respondents": view if view in ("all", "panel") else "all"},
    )
    return Response(reply.body, headers=reply.headers, content_type=reply.content_type)


# --- feedback -----------------------------------------------------------------------------------


def feedback_body(ctx: PageContext) -> dict[str, Any]:
    form = ctx.form
    return {
        "title": form.get("title", ""),
        "heard": form.get("heard", ""),
        "plan": form.get("plan", ""),
        "not_followed": form.get("not_followed", "") or None,
        "key_figures": [{"question_id": q} for q in form.getlist("key_figures") if q],
        "notify_all_invitees": form.get("notify_all_invitees") == "ja",
    }


def measure_body(ctx: PageContext) -> dict[str, Any]:
    form = ctx.form
    return {
        "title": form.get("m-title", ""),
        "owner": form.get("m-owner", ""),
        "description": form.get("m-description", "") or None,
        "expected_date": form.get("m-expected_date", "") or None,
        "area_codes": [c for c in form.getlist("m-area_codes") if c],
    }


@staff_page(
    "GET,POST",
    "/peilingen/<poll_id>/terugkoppeling",
    resource="poll",
    role="editor",
    summary="Staff: write and publish the feedback on a poll, and promise measures",
)
def staff_feedback(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    poll = get_poll(ctx)  # ours, or a 404 page (feedback's own NotFound means "none yet")
    params = {"poll_id": poll["id"]}
    errors: list[dict[str, str]] = []
    done = ctx.request.args.get("klaar", "")
    action = ctx.form.get("action", "")
    if ctx.request.method == "POST":
        try:
            if action == "save":
                ctx.api("save_feedback", params=params, body=feedback_body(ctx))
                done = "opgeslagen"
            elif action == "publish":
                ctx.api("publish_feedback", params=params)
                done = "gepubliceerd"
            elif action == "measure":
                ctx.api("add_measure", params=params, body=measure_body(ctx))
                done = "maatregel"
            else:
                raise InvalidInput(
                    "unknown action", [{"field": "action", "code": "invalid", "message": "?"}]
                )
        except InvalidInput as exc:
            prefix = "m-" if action == "measure" else ""
            errors = [
                {**e, "anchor": "f-" + prefix + e["field"].split(".")[0].split("[")[0]}
                for e in field_errors(exc)
            ]
        else:
            return ctx.redirect(f"/staff/peilingen/{poll['id']}/terugkoppeling?klaar={done}")
    try:
        current = ctx.api("get_feedback", params=params).body
    except NotFound:
        current = None
    form = ctx.form if ctx.request.method == "POST" and action == "save" else None
    values = {
        "title": (form or current or {}).get("title") or "",
        "heard": (form or current or {}).get("heard") or "",
        "plan": (form or current or {}).get("plan") or "",
        "not_followed": (form or current or {}).get("not_followed") or "",
    }
    chosen = (
        set(ctx.form.getlist("key_figures"))
        if form is not None
        else {k.get("question_id") for k in (current or {}).get("key_figures", [])}
    )
    tree = area_tree(ctx)
    reactions = None
    if current and current.get("status") == "published":
        reactions = ctx.api("feedback_reactions", params=params).body
    return show(
        ctx,
        "staff/feedback.html",
        found,
        reactions=reactions,
        names=area_names(tree),
        poll=poll,
        feedback=current,
        values=values,
        chosen=chosen,
        questions=[q for q in poll["definition"]["questions"] if q["type"] in COUNTED],
        wijken=tree,
        measure_form=ctx.form if action == "measure" else {},
        measure_statuses=MEASURE_STATUSES,
        errors=errors,
        done=done,
        status=422 if errors else 200,
    )


@staff_page(
    "GET,POST",
    "/maatregelen/<measure_id>",
    resource="measure",
    role="editor",
    summary="Staff: move a measure on (planned, in progress, done, dropped) with a note",
)
def staff_measure_status(ctx: PageContext) -> Response:
    signed_in(ctx)
    poll_id = ctx.form.get("poll_id") or ctx.request.args.get("poll", "")
    back = LINKS["polls"]
    if re.fullmatch(r"[0-9a-f-]{36}", poll_id):
        back = f"/staff/peilingen/{poll_id}/terugkoppeling"
    if ctx.request.method == "POST":
        ctx.api(
            "change_measure_status",
            params={"measure_id": ctx.params["measure_id"]},
            body={"status": ctx.form.get("status", ""), "note": ctx.form.get("note", "") or None},
        )
        return ctx.redirect(back + ("?klaar=status" if "terugkoppeling" in back else ""))
    return ctx.redirect(back)
