"""Staff pages around a poll's draft and the panel: the preview as the resident will see it
(of a template, and of a draft while it is edited), the audience on the buurt map with the
number of panel members it reaches, and the panel's composition against CBS.

Like every staff page (web/staff.py), each gets its data through ``ctx.api`` — the staff JSON
routes' own roles, tenancy and validation — and works without JavaScript: htmx only refreshes
a fragment that a submit button also brings.
"""

from __future__ import annotations

import re
from typing import Any

from werkzeug.wrappers import Response

from gateway.errors import RouteNotFound
from services.common.errors import InvalidInput, NotFound
from web import charts
from web.pages import PageContext
from web.preview import base_definition, preview_values
from web.resident import field_errors, with_header
from web.staff import (
    area_names,
    area_tree,
    audience_from_form,
    audience_text,
    definition_from_form,
    get_poll,
    show,
    signed_in,
    staff_page,
)

AGE_NAMES = {
    "15_24": "15–24",
    "25_44": "25–44",
    "45_64": "45–64",
    "65_plus": "65+",
}


# --- the preview: the poll as the resident will see it ------------------------------------------


@staff_page(
    "GET,POST",
    "/peilingen/<poll_id>/voorbeeld",
    resource="poll",
    role="editor",
    summary="Staff: the draft as residents will see it (the fragment htmx refreshes while "
    "editing; POST: the edit form's unsaved texts)",
)
def staff_poll_preview(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    poll = get_poll(ctx)
    definition = poll["definition"]
    if ctx.request.method == "POST" and poll["status"] == "draft":
        definition = definition_from_form(ctx, base_definition(ctx, poll))
    return show(ctx, "staff/_preview.html", found, **preview_values(ctx, definition))


@staff_page(
    "GET",
    "/sjablonen/<template_id>/voorbeeld",
    summary="Staff: a template of the library as residents would see it (a fragment)",
)
def staff_template_preview(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    template = ctx.api("get_template", params={"template_id": ctx.params["template_id"]}).body
    return show(ctx, "staff/_preview.html", found, **preview_values(ctx, template["definition"]))


# --- the audience on the map --------------------------------------------------------------------


def chosen_buurten(tree: list[dict[str, Any]], codes: list[str]) -> set[str]:
    """The buurten an audience of these wijk and buurt codes covers."""
    chosen = set(codes)
    covered = set()
    for wijk in tree:
        for buurt in wijk["buurten"]:
            if wijk["code"] in chosen or buurt["code"] in chosen:
                covered.add(buurt["code"])
    return covered


def reach_of(ctx: PageContext, audience: dict[str, Any]) -> dict[str, Any] | None:
    """The reach route's answer for this audience, or None when it cannot be counted (a sample
    without a size); its count is None below k."""
    query: dict[str, Any] = {
        "kind": audience.get("kind", "municipality"),
        "area_codes": ",".join(audience.get("area_codes") or []),
    }
    kinds = audience.get("kinds")
    if kinds is not None and not kinds:
        return None  # no kind of participant ticked: nobody (saving refuses it)
    query["kinds"] = ",".join(kinds or ["resident"])
    size = audience.get("sample_size")
    if query["kind"] == "sample":
        if not isinstance(size, int) or size < 1:
            return None
        query["sample_size"] = str(size)
    try:
        return ctx.api("audience_reach", query=query).body
    except InvalidInput:
        return None


def audience_map(
    ctx: PageContext,
    found: dict[str, Any],
    tree: list[dict[str, Any]],
    audience: dict[str, Any],
    *,
    draft: bool,
) -> Any:
    try:
        boundaries = ctx.api(
            "public_buurt_boundaries", params={"municipality_code": found["code"]}
        ).body
    except NotFound:  # no CBS areas imported: the list alone
        return None
    shapes = {f["properties"]["code"]: f["geometry"]["coordinates"] for f in boundaries["features"]}
    if not shapes:
        return None
    kind = audience.get("kind", "municipality")
    codes = audience.get("area_codes") or []
    if kind == "municipality" or (kind == "sample" and not codes):
        covered = set(shapes)
    else:
        covered = chosen_buurten(tree, codes)
    names = {b["code"]: b["name"] for w in tree for b in w["buurten"]}
    chosen_word, other_word = ctx._("in the audience"), ctx._("not in the audience")
    labels = {
        code: f"{names.get(code, code)}: {chosen_word if code in covered else other_word}"
        for code in shapes
    }
    return charts.audience_map(
        shapes,
        covered,
        labels,
        title=ctx._(
            "Map of the buurten: %(count)s of %(total)s in the audience",
            count=len(covered & set(shapes)),
            total=len(shapes),
        ),
        map_id="map-audience",
        groups=wijk_labels(ctx, tree, draft=draft),
    )


def short_wijk_name(name: str) -> str:
    """A wijk's name on the map: CBS's "Wijk 01 West" as "West" (other names as they are)."""
    return re.sub(r"^Wijk\s+\d+\s+", "", name).strip() or name


def wijk_labels(
    ctx: PageContext, tree: list[dict[str, Any]], *, draft: bool
) -> list[charts.MapGroup]:
    """The wijken named on the audience map; on a draft's map a click on a name ticks (or unticks)
    the whole wijk in the list (app.js), and its tooltip says so."""
    return [
        charts.MapGroup(
            code=wijk["code"],
            label=short_wijk_name(wijk["name"]),
            tooltip=(
                ctx._("%(name)s: click to tick or untick the whole wijk", name=wijk["name"])
                if draft
                else wijk["name"]
            ),
            members=[b["code"] for b in wijk["buurten"]],
        )
        for wijk in tree
    ]


def audience_values(
    ctx: PageContext,
    found: dict[str, Any],
    tree: list[dict[str, Any]],
    audience: dict[str, Any],
    *,
    draft: bool,
) -> dict[str, Any]:
    return {
        "audience": audience,
        "reach": reach_of(ctx, audience),
        "audience_map": audience_map(ctx, found, tree, audience, draft=draft),
        "audience_summary": audience_text(ctx, audience, area_names(tree)),
        "chosen_swatch": charts.swatch(charts.CHOSEN, "legend-chosen"),
        "other_swatch": charts.swatch(charts.NO_DATA, "legend-other"),
    }


def audience_from_query(ctx: PageContext) -> dict[str, Any] | None:
    """The audience in a GET's query (the htmx refresh sends the form's fields), or None."""
    if "audience_kind" not in ctx.request.args:
        return None
    return audience_from_form(ctx, ctx.request.args)


@staff_page(
    "GET,POST",
    "/peilingen/<poll_id>/doelgroep",
    resource="poll",
    role="editor",
    summary="Staff: choose a draft's audience on the buurt map or as wijken/buurten, or a "
    "sample, with the number of panel members it reaches",
)
def staff_audience(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    poll = get_poll(ctx)
    tree = area_tree(ctx)
    audience = poll["audience"]
    errors: list[dict[str, str]] = []
    counted = False
    if ctx.request.method == "POST" and poll["status"] == "draft":
        audience = audience_from_form(ctx)
        if ctx.form.get("action") == "save":
            original = ctx.request
            ctx.request = with_header(original, "If-Match", f'"{ctx.form.get("version", "")}"')
            try:
                ctx.api("update_poll", params={"poll_id": poll["id"]}, body={"audience": audience})
            except InvalidInput as exc:
                errors = [
                    {**e, "anchor": "f-kinds", "field": "kinds"}
                    if e["field"].startswith("audience.kinds")
                    else {**e, "anchor": "f-audience"}
                    for e in field_errors(exc)
                ]
            else:
                return ctx.redirect(f"/staff/peilingen/{poll['id']}?klaar=doelgroep")
            finally:
                ctx.request = original
        else:
            counted = True
    return show(
        ctx,
        "staff/audience.html",
        found,
        poll=poll,
        wijken=tree,
        errors=errors,
        counted=counted,
        status=422 if errors else 200,
        **audience_values(ctx, found, tree, audience, draft=poll["status"] == "draft"),
    )


@staff_page(
    "GET",
    "/peilingen/<poll_id>/doelgroep/bereik",
    resource="poll",
    summary="Staff: the map and reach of an audience given in the query (the fragment htmx "
    "refreshes on the audience page)",
)
def staff_audience_reach(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    poll = get_poll(ctx)
    tree = area_tree(ctx)
    audience = audience_from_query(ctx) or poll["audience"]
    values = audience_values(ctx, found, tree, audience, draft=poll["status"] == "draft")
    return show(ctx, "staff/_reach.html", found, poll=poll, **values)


# --- the panel's composition against CBS --------------------------------------------------------


@staff_page(
    "GET",
    "/panel",
    summary="Staff: the panel's composition per wijk by age band and sex against CBS, with gaps",
)
def staff_composition(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    try:
        doc = ctx.api("composition").body
    except (NotFound, RouteNotFound):
        doc = None
    areas = (doc or {}).get("by_wijk") or []
    choice = ctx.request.args.get("gebied", "")
    area = next((a for a in areas if a["code"] == choice), areas[0] if areas else None)
    overview = []
    gemeente = areas[0] if areas else None
    if gemeente:
        adults_whole = gemeente.get("population_15_plus") or 0
        for a in sorted(areas[1:], key=lambda a: (a.get("name") or "", a["code"])):
            share = None
            if not a["hidden"] and not gemeente["hidden"] and gemeente["members"]:
                share = round(100 * a["members"] / gemeente["members"], 1)
            cbs = None
            if a.get("population_15_plus") is not None and adults_whole:
                cbs = round(100 * a["population_15_plus"] / adults_whole, 1)
            gap = round(share - cbs, 1) if share is not None and cbs is not None else None
            overview.append({**a, "share": share, "cbs_share": cbs, "gap": gap})
    sex_names = {"man": ctx._("Men"), "vrouw": ctx._("Women"), "other": ctx._("Other or unknown")}
    group_names = {**AGE_NAMES, "unknown": ctx._("Age unknown"), **sex_names}
    return show(
        ctx,
        "staff/composition.html",
        found,
        doc=doc,
        areas=areas,
        area=area,
        overview=overview,
        group_names=group_names,
        k=(doc or {}).get("k"),
        **kinds_view(doc, area),
    )


def kinds_view(doc: dict[str, Any] | None, area: dict[str, Any] | None) -> dict[str, Any]:
    """Participants of each kind (issue 14): the gemeente and its wijken, and the buurten of
    the wijk chosen (``area``), as the composition's ``by_kind`` has them (small groups
    hidden)."""
    rows = (doc or {}).get("by_kind") or []
    for row in rows:
        row["by"] = {g["kind"]: g for g in row["kinds"]}
    top = [r for r in rows if r["level"] == "gemeente"]
    wijken = sorted(
        (r for r in rows if r["level"] == "wijk"), key=lambda r: (r.get("name") or "", r["code"])
    )
    chosen = area["code"] if area and area.get("level") == "wijk" else None
    buurten = sorted(
        (r for r in rows if r["level"] == "buurt" and r["parent_code"] == chosen),
        key=lambda r: (r.get("name") or "", r["code"]),
    )
    return {
        "kind_rows": top + wijken,
        "kind_buurten": buurten,
        "kind_wijk": area if chosen else None,
    }
