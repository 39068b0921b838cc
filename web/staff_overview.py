"""The staff page of the safety overview (issue 13): per area the latest figures of the safety
polls with their 95% intervals, an arrow with a text only where the change from the previous
wave is significant, the open measures and when the area was last polled — the JSON route
``overview`` as an HTML table, and its CSV and XLSX downloads. No JavaScript: choosing an
area is a GET form.
"""

from __future__ import annotations

from werkzeug.wrappers import Response

from services.common.errors import BeingComputed
from web.pages import PageContext
from web.resident import when
from web.staff import show, signed_in, staff_page

LEVELS = ("gemeente", "wijk", "buurt", "regio")


def level_names(ctx: PageContext) -> dict[str, str]:
    return {
        "gemeente": ctx._("Municipality"),
        "wijk": ctx._("Wijk"),
        "buurt": ctx._("Buurt"),
        "regio": ctx._("Region"),
    }


def trend_texts(ctx: PageContext) -> dict[str, str]:
    return {"up": ctx._("risen (significant)"), "down": ctx._("fallen (significant)")}


def respondents_view(ctx: PageContext) -> str:
    view = ctx.request.args.get("respondents", "all")
    return view if view in ("all", "panel") else "all"


@staff_page(
    "GET",
    "/veiligheid",
    summary="Staff: the safety overview per area (latest figures, significant trends, open "
    "measures, last polled)",
)
def staff_overview(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    view = respondents_view(ctx)
    try:
        doc = ctx.api("overview", query={"respondents": view}).body
    except BeingComputed:
        # A poll's first (or final) release that takes a while: said as such, like results.
        response = show(ctx, "staff/overview.html", found, areas=None, computing=True)
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response
    areas = sorted(
        doc["areas"],
        key=lambda a: (LEVELS.index(a["level"]) if a["level"] in LEVELS else 9, a["name"] or ""),
    )
    choice = ctx.request.args.get("gebied", "")
    area = next((a for a in areas if a["code"] == choice), areas[0] if areas else None)
    return show(
        ctx,
        "staff/overview.html",
        found,
        areas=areas,
        area=area,
        view=view,
        level_names=level_names(ctx),
        trend_texts=trend_texts(ctx),
        polled={a["code"]: when(a.get("last_polled"), ctx.lang) for a in areas},
    )


def _download(ctx: PageContext, route: str) -> Response:
    signed_in(ctx)
    reply = ctx.api(route, query={"respondents": respondents_view(ctx)})
    return Response(reply.body, headers=reply.headers, content_type=reply.content_type)


@staff_page("GET", "/veiligheid.csv", summary="Staff: the safety overview as CSV")
def staff_overview_csv(ctx: PageContext) -> Response:
    return _download(ctx, "overview_csv")


@staff_page("GET", "/veiligheid.xlsx", summary="Staff: the safety overview as XLSX")
def staff_overview_xlsx(ctx: PageContext) -> Response:
    return _download(ctx, "overview_xlsx")
