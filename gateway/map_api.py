"""The buurt polygons of a municipality as GeoJSON, for the resident app's map picker (public,
cacheable): the same generalised CBS boundaries panel locates with."""

from __future__ import annotations

from gateway.routing import Reply, RequestContext, route
from gateway.schemas import answers

TAG = "residents"


@route(
    "GET",
    "/api/v1/municipalities/<municipality_code>/buurten.geojson",
    tag=TAG,
    summary="The buurt boundaries as GeoJSON, for choosing a buurt on a map (public)",
    resource="municipality",
    tenant_scoped=False,
    media_type="application/geo+json",
    response=answers.BuurtenOut,
)
def public_buurt_boundaries(ctx: RequestContext) -> Reply:
    code = ctx.params["municipality_code"]
    boundaries = ctx.rpc("panel", "buurt_boundaries", code)["boundaries"]
    names = {a["code"]: a for a in ctx.rpc("panel", "list_areas", code, "buurt", None)}
    features = [
        {
            "type": "Feature",
            "properties": {
                "code": buurt,
                "name": names.get(buurt, {}).get("name", buurt),
                "wijk": names.get(buurt, {}).get("parent_code"),
            },
            "geometry": {"type": "MultiPolygon", "coordinates": polygons},
        }
        for buurt, polygons in sorted(boundaries.items())
    ]
    return Reply(
        {"type": "FeatureCollection", "features": features},
        headers={"Cache-Control": "public, max-age=3600"},
        content_type="application/geo+json",
    )
