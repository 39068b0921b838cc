"""Pages both apps share: static files (one route, content-hashed URLs), each municipality's
theme, and the HTML 404 for addresses under the apps that name nothing."""

from __future__ import annotations

from werkzeug.wrappers import Response

from gateway.errors import RouteNotFound
from web.pages import PageContext, municipality, page, theme_of
from web.static_files import send_asset


@page("GET", "/static/<digest>/<path:name>", app="public", summary="A static file, by content hash")
def static_file(ctx: PageContext) -> Response:
    response = ctx.web.static.serve(ctx.request, ctx.params["digest"], ctx.params["name"])
    if response is None:
        raise RouteNotFound("no such file")
    return response


@page(
    "GET",
    "/theme/<municipality_code>/<digest>.css",
    app="public",
    summary="A municipality's NL Design System theme, made from its branding",
)
def theme(ctx: PageContext) -> Response:
    found = municipality(ctx, ctx.params["municipality_code"])
    asset = theme_of(ctx.web, found["code"], found)
    if ctx.params["digest"] != asset.digest:  # the branding changed since the page was made
        return Response(
            status=307, headers={"Location": found["theme_url"], "Cache-Control": "no-cache"}
        )
    return send_asset(ctx.request, asset)


@page("GET,POST", "/app/<path:rest>", app="resident", summary="Nothing here: an HTML 404")
def app_not_found(ctx: PageContext) -> Response:
    raise RouteNotFound("no such page")
