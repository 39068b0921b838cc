"""The municipality's own regions under ``/staff/beheer/regios`` (issue 13): the list with each
region's version, buurten and inhabitants; a region made or changed by ticking buurten in the
list or clicking them on the buurt map (the audience page's map: the list is the form, the map
a way to use it); regions proposed from a GeoJSON file, shown for confirmation (which buurt
goes to which region) before they are made; and archiving.

Like every staff page (web/staff.py) each page gets its data through ``ctx.api`` — the region
routes' own roles, tenancy and checks. A region that would give a small group away is refused
by the create and update routes (422); the page only says so in Dutch, with the other area and
the buurten, and keeps what was filled in.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from gateway.auth import Principal, authorize
from services.common.errors import InvalidInput, NotFound
from web import charts
from web.pages import PageContext
from web.resident import field_errors
from web.staff import area_tree, signed_in, staff_page
from web.staff_admin import admin_show

REGIONS = "/staff/beheer/regios"


def require_admin(ctx: PageContext) -> None:
    """The form pages are the admin's (the routes they post to are): a lesser role's GET gets
    the 403 page too, not a form it cannot send."""
    principal = Principal(
        "staff", ctx.claims["sub"], ctx.claims["mun"], ctx.claims.get("role"), ctx.claims
    )
    authorize(principal, ctx.page.role or "admin")


def buurt_index(tree: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Buurt code → the buurt (name, population) with its wijk's name."""
    return {b["code"]: {**b, "wijk": w["name"]} for w in tree for b in w["buurten"]}


def inhabitants(buurten: dict[str, dict[str, Any]], codes: list[str]) -> int:
    return sum(buurten.get(c, {}).get("population") or 0 for c in codes)


def area_label(
    ctx: PageContext, code: str, found: dict[str, Any], tree: list[dict[str, Any]]
) -> str:
    """The other area a refusal names, as staff know it."""
    if code == found["code"]:
        return ctx._("the whole municipality")
    wijk = next((w for w in tree if w["code"] == code), None)
    if wijk:  # CBS names most wijken "Wijk 01 West" already
        named = wijk["name"].lower().startswith("wijk ")
        return wijk["name"] if named else ctx._("wijk %(name)s", name=wijk["name"])
    try:
        region = ctx.api("get_region", params={"region_code": code}).body
    except NotFound:
        return code
    return ctx._("region %(name)s", name=region["name"])


def region_errors(
    ctx: PageContext,
    exc: InvalidInput,
    found: dict[str, Any],
    tree: list[dict[str, Any]],
    prefix: str = "f-",
) -> list[dict[str, str]]:
    """What to fix, per refusal of the region routes, in the reader's language."""
    buurten = buurt_index(tree)
    out = []
    for e in field_errors(exc):
        field, code = e["field"], e.get("code", "")
        if field.startswith("name"):
            text = ctx._("Give the region a name of 2 to 200 characters.")
            anchor = prefix + "name"
        elif code == "small_difference":
            names = ", ".join(buurten.get(b, {}).get("name", b) for b in e.get("buurten", []))
            text = ctx._(
                "This region differs from %(area)s only by %(buurten)s (%(people)s "
                "inhabitants). Their answers could be worked out by subtracting one area's "
                "figures from the other's. Add or remove buurten so that the difference is "
                "larger, or choose exactly the same buurten.",
                area=area_label(ctx, e.get("area", ""), found, tree),
                buurten=names,
                people=e.get("inhabitants", "?"),
            )
            anchor = prefix + "buurt_codes"
        elif code == "unknown_buurt":
            text = ctx._("Choose buurten of your own municipality from the list.")
            anchor = prefix + "buurt_codes"
        elif field.startswith("buurt_codes"):
            text = ctx._("Choose at least one buurt.")
            anchor = prefix + "buurt_codes"
        else:
            text = ctx._("This is not filled in correctly.")
            anchor = prefix + "name"
        out.append({**e, "anchor": anchor, "text": text})
    return out


def region_map(
    ctx: PageContext,
    found: dict[str, Any],
    buurten: dict[str, dict[str, Any]],
    chosen: set[str],
    map_id: str = "map-region",
) -> Any:
    """The buurt map with the region's buurten filled (the audience page's map)."""
    try:
        boundaries = ctx.api(
            "public_buurt_boundaries", params={"municipality_code": found["code"]}
        ).body
    except NotFound:  # no CBS areas imported: the list alone
        return None
    shapes = {f["properties"]["code"]: f["geometry"]["coordinates"] for f in boundaries["features"]}
    if not shapes:
        return None
    inside, outside = ctx._("in the region"), ctx._("not in the region")
    labels = {
        code: f"{buurten.get(code, {}).get('name', code)}: {inside if code in chosen else outside}"
        for code in shapes
    }
    return charts.audience_map(
        shapes,
        chosen,
        labels,
        title=ctx._(
            "Map of the buurten: %(count)s of %(total)s in the region",
            count=len(chosen & set(shapes)),
            total=len(shapes),
        ),
        map_id=map_id,
    )


def form_values(ctx: PageContext, found: dict[str, Any], tree: list[dict[str, Any]], **v: Any):
    buurten = buurt_index(tree)
    chosen = set(v.get("chosen") or [])
    return {
        "wijken": tree,
        "region_map": region_map(ctx, found, buurten, chosen),
        "chosen_swatch": charts.swatch(charts.CHOSEN, "legend-chosen"),
        "other_swatch": charts.swatch(charts.NO_DATA, "legend-other"),
        "people": inhabitants(buurten, sorted(chosen)),
        **v,
    }


# --- the list -----------------------------------------------------------------------------------


@staff_page("GET", "/beheer/regios", summary="Staff: our regions (named sets of buurten)")
def staff_admin_regions(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    buurten = buurt_index(area_tree(ctx))
    listed = ctx.api("list_regions", query={"archived": "true"}).body
    rows = [
        {**r, "buurten": len(r["buurt_codes"]), "people": inhabitants(buurten, r["buurt_codes"])}
        for r in sorted(listed, key=lambda r: (r["name"].lower(), r["code"]))
    ]
    args = ctx.request.args
    return admin_show(
        ctx,
        "staff/regions.html",
        found,
        regions=[r for r in rows if not r["archived"]],
        archived=[r for r in rows if r["archived"]],
        regions_link=REGIONS,
        done={
            "saved": args.get("opgeslagen"),
            "archived": args.get("gearchiveerd"),
            "imported": args.get("geimporteerd"),
        },
    )


# --- make or change a region --------------------------------------------------------------------


@staff_page(
    "GET,POST",
    "/beheer/regios/nieuw",
    role="admin",
    summary="Staff: a new region, its buurten ticked in the list or clicked on the map",
)
def staff_admin_new_region(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    require_admin(ctx)
    tree = area_tree(ctx)
    name = ctx.form.get("name", "").strip()
    chosen = ctx.form.getlist("buurt_codes")
    errors: list[dict[str, str]] = []
    if ctx.request.method == "POST":
        try:
            made = ctx.api("create_region", body={"name": name, "buurt_codes": chosen}).body
        except InvalidInput as exc:
            errors = region_errors(ctx, exc, found, tree)
        else:
            return ctx.redirect(f"{REGIONS}?opgeslagen={made['code']}")
    return admin_show(
        ctx,
        "staff/region.html",
        found,
        region=None,
        errors=errors,
        status=422 if errors else 200,
        regions_link=REGIONS,
        **form_values(ctx, found, tree, name=name, chosen=chosen),
    )


@staff_page(
    "GET,POST",
    "/beheer/regios/<region_code>",
    resource="region",
    role="admin",
    summary="Staff: change a region's name or buurten (a new version; polls keep theirs)",
)
def staff_admin_region(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    require_admin(ctx)
    region = ctx.api("get_region", params={"region_code": ctx.params["region_code"]}).body
    tree = area_tree(ctx)
    name, chosen = region["name"], region["buurt_codes"]
    errors: list[dict[str, str]] = []
    if ctx.request.method == "POST" and not region["archived"]:
        name = ctx.form.get("name", "").strip()
        chosen = ctx.form.getlist("buurt_codes")
        try:
            ctx.api(
                "update_region",
                params={"region_code": region["code"]},
                body={"name": name, "buurt_codes": chosen},
            )
        except InvalidInput as exc:
            errors = region_errors(ctx, exc, found, tree)
        else:
            return ctx.redirect(f"{REGIONS}?opgeslagen={region['code']}")
    return admin_show(
        ctx,
        "staff/region.html",
        found,
        region=region,
        errors=errors,
        status=422 if errors else 200,
        regions_link=REGIONS,
        **form_values(ctx, found, tree, name=name, chosen=chosen),
    )


@staff_page(
    "GET,POST",
    "/beheer/regios/<region_code>/archiveren",
    resource="region",
    role="admin",
    summary="Staff: archive a region (after a confirmation): no new poll can use it",
)
def staff_admin_archive_region(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    require_admin(ctx)
    region = ctx.api("get_region", params={"region_code": ctx.params["region_code"]}).body
    if ctx.request.method == "POST" and not region["archived"]:
        ctx.api("archive_region", params={"region_code": region["code"]})
        return ctx.redirect(f"{REGIONS}?gearchiveerd={region['code']}")
    return admin_show(ctx, "staff/region_archive.html", found, region=region, regions_link=REGIONS)


# --- regions from GeoJSON -----------------------------------------------------------------------


def proposals_from_form(ctx: PageContext) -> list[dict[str, Any]]:
    """The proposals as the confirmation form sends them back: per region its name, the
    buurten offered (with their share inside the polygon) and those ticked."""
    out = []
    for i in range(min(int(ctx.form.get("count", "0") or 0), 200)):
        offered = []
        for value in ctx.form.getlist(f"offered-{i}"):
            code, _, share = value.partition(":")
            try:
                offered.append({"code": code, "share": float(share)})
            except ValueError:
                continue
        out.append(
            {
                "index": i,
                "name": ctx.form.get(f"name-{i}", "").strip(),
                "offered": offered,
                "chosen": ctx.form.getlist(f"buurten-{i}"),
                "include": bool(ctx.form.get(f"include-{i}")),
            }
        )
    return out


def proposals_from_api(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "index": i,
            "name": p["name"],
            "offered": sorted(
                p["buurten"] + p["mostly_outside"], key=lambda b: (-b["share"], b["code"])
            ),
            "chosen": p["buurt_codes"],
            "include": True,
        }
        for i, p in enumerate(found)
    ]


def file_error(ctx: PageContext, exc: InvalidInput | None = None) -> list[dict[str, str]]:
    errors = field_errors(exc) if exc else [{"field": "geojson", "code": "required"}]
    out = []
    for e in errors:
        field = e.get("field", "")
        if ".properties.name" in field:
            text = ctx._("Every shape in the file needs a name (properties.name).")
        elif "geometry" in field:
            text = ctx._(
                "A shape in the file is not a Polygon or MultiPolygon in longitude and "
                "latitude (WGS84)."
            )
        else:
            text = ctx._(
                "Choose a GeoJSON file: a FeatureCollection of named shapes (Polygon or "
                "MultiPolygon)."
            )
        out.append({**e, "anchor": "f-geojson", "text": text})
    return out


@staff_page(
    "GET,POST",
    "/beheer/regios/importeren",
    role="admin",
    large_body=True,
    summary="Staff: regions from a GeoJSON file: the buurten proposed per region shown for "
    "confirmation, then made",
)
def staff_admin_import_regions(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    require_admin(ctx)
    tree = area_tree(ctx)
    buurten = buurt_index(tree)
    errors: list[dict[str, str]] = []
    proposals: list[dict[str, Any]] = []
    made: list[str] = []
    action = ctx.form.get("action", "")
    if ctx.request.method == "POST" and action == "propose":
        upload = ctx.request.files.get("geojson")
        text = upload.read().decode("utf-8", errors="replace") if upload else ""
        if not text.strip():
            errors = file_error(ctx)
        else:
            try:
                proposals = proposals_from_api(
                    ctx.api("propose_regions", body={"geojson": text}).body
                )
            except InvalidInput as exc:
                errors = file_error(ctx, exc)
    elif ctx.request.method == "POST" and action == "confirm":
        # Each ticked proposal made in turn, checked by the create route as always; what was
        # refused stays on the page, with what to fix.
        for p in proposals_from_form(ctx):
            if not p["include"]:
                continue
            try:
                region = ctx.api(
                    "create_region", body={"name": p["name"], "buurt_codes": p["chosen"]}
                ).body
            except InvalidInput as exc:
                prefix = f"p{p['index']}-"
                errors += [
                    {**e, "text": f"{p['name'] or '?'}: {e['text']}"}
                    for e in region_errors(ctx, exc, found, tree, prefix=prefix)
                ]
                proposals.append(p)
            else:
                made.append(region["name"])
        if not errors:
            return ctx.redirect(f"{REGIONS}?geimporteerd={len(made)}")
    return admin_show(
        ctx,
        "staff/region_import.html",
        found,
        errors=errors,
        proposals=proposals,
        made=made,
        buurten=buurten,
        people=lambda codes: inhabitants(buurten, codes),
        regions_link=REGIONS,
        status=422 if errors else 200,
    )
