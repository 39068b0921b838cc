"""The municipality's own regions (issue 13) over real HTTP, with every service behind the
gateway: defining them (buurt codes, GeoJSON), refusing one that would leak, versions, polls
that target them and results per region."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy.orm import sessionmaker

from services.common.db import run_in_transaction
from services.common.outbox import add_events
from services.responses import intake
from tests.conftest import wait_for
from tests.support.answers import minimal_answers
from tests.support.panel import UTRECHT, utrecht_files

PROBLEM = "application/problem+json"
# Wijk 01 (West): Oog in Al and Halve Maan (4 buurten, ~9,200 inhabitants), and the business
# park Lageweide (150 inhabitants), the smallest buurt of the wijk.
OOG_IN_AL = ["BU03440111", "BU03440112", "BU03440113", "BU03440114"]
LAGEWEIDE = "BU03440133"
WEST = [
    *OOG_IN_AL,
    "BU03440121",
    "BU03440122",
    "BU03440123",
    "BU03440124",
    "BU03440131",
    "BU03440132",
    LAGEWEIDE,
]


@pytest.fixture
def utrecht(api, service_config):
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.import_areas(UTRECHT, utrecht_files())
    return {
        "admin": api.staff_token(UTRECHT, "admin"),
        "viewer": api.staff_token(UTRECHT, "viewer"),
    }


@pytest.mark.service
def test_a_region_that_would_give_a_small_buurt_away_is_refused_before_any_poll_uses_it(
    api, utrecht
):
    admin = utrecht["admin"]
    west = [b for b in WEST if b != LAGEWEIDE]
    refused = api.request(
        "POST", "/admin/v1/regions", token=admin, json={"name": "West", "buurt_codes": west}
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["Content-Type"] == PROBLEM
    problem = refused.json()
    error = problem["errors"][0]
    assert error["code"] == "small_difference" and error["area"] == "WK034401"
    assert "'West'" in error["message"] and LAGEWEIDE in error["message"]
    assert "150 inhabitants" in error["message"]

    created = api.request(
        "POST",
        "/admin/v1/regions",
        token=admin,
        json={"name": "Oog in Al en Halve Maan", "buurt_codes": OOG_IN_AL},
    )
    assert created.status_code == 201, created.text
    region = created.json()
    assert (region["code"], region["version"], region["buurt_codes"]) == (
        "RG03440001",
        1,
        OOG_IN_AL,
    )
    # The same plus Lageweide differs from the first region by 150 inhabitants only.
    second = api.request(
        "POST",
        "/admin/v1/regions",
        token=admin,
        json={"name": "Met Lageweide", "buurt_codes": [*OOG_IN_AL, LAGEWEIDE]},
    )
    assert second.status_code == 422, second.text
    assert second.json()["errors"][0]["area"] == "RG03440001"
    # A buurt of another municipality is refused too; a region of a whole wijk is fine.
    other = api.request(
        "POST",
        "/admin/v1/regions",
        token=admin,
        json={"name": "Elders", "buurt_codes": ["BU03070101"]},
    )
    assert other.status_code == 422, other.text
    assert other.json()["errors"][0]["code"] == "unknown_buurt", other.text
    whole = api.request(
        "POST", "/admin/v1/regions", token=admin, json={"name": "Heel West", "buurt_codes": WEST}
    )
    assert whole.status_code == 201, whole.text
    # Changing a region into a leaking one is refused the same way.
    patched = api.request(
        "PATCH",
        "/admin/v1/regions/RG03440002",
        token=admin,
        json={"buurt_codes": west},
    )
    assert patched.status_code == 422, patched.text
    listed = api.request("GET", "/admin/v1/regions", token=utrecht["viewer"]).json()
    assert [r["code"] for r in listed] == ["RG03440001", "RG03440002"]
    assert (
        api.request("POST", "/admin/v1/regions", token=utrecht["viewer"], json={}).status_code
        == 403
    )


@pytest.mark.service
def test_regions_are_versioned_and_archived(api, utrecht):
    admin = utrecht["admin"]
    body = {"name": "Oog in Al", "buurt_codes": OOG_IN_AL}
    code = api.request("POST", "/admin/v1/regions", token=admin, json=body).json()["code"]
    changed = api.request(
        "PATCH",
        f"/admin/v1/regions/{code}",
        token=admin,
        json={"name": "Oog in Al en Lombok", "buurt_codes": [*OOG_IN_AL, "BU03440121"]},
    ).json()
    assert (changed["version"], changed["current_version"]) == (2, 2)
    first = api.request("GET", f"/admin/v1/regions/{code}?version=1", token=admin).json()
    assert (first["name"], first["buurt_codes"], first["current_version"]) == (
        "Oog in Al",
        OOG_IN_AL,
        2,
    )
    other = api.staff_token("GM0307", "admin")
    assert api.request("GET", f"/admin/v1/regions/{code}", token=other).status_code == 404
    archived = api.request("DELETE", f"/admin/v1/regions/{code}", token=admin).json()
    assert archived["archived"] is True
    assert api.request("GET", "/admin/v1/regions", token=admin).json() == []


@pytest.mark.service
def test_geojson_polygons_propose_the_buurten_that_lie_mostly_inside(api, utrecht, service_config):
    with ClusterRpcProxy(service_config("panel")) as rpc:
        boundaries = rpc.panel.buurt_boundaries(UTRECHT)["boundaries"]
    # One polygon: the outline of Oog in Al (BU03440112) itself.
    outline = boundaries["BU03440112"][0][0]
    geojson = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"name": "Oog in Al"},
                "geometry": {"type": "Polygon", "coordinates": [outline]},
            }
        ],
    }
    response = api.request(
        "POST",
        "/admin/v1/regions/import",
        token=utrecht["admin"],
        json={"geojson": json.dumps(geojson)},
    )
    assert response.status_code == 200, response.text
    (proposal,) = response.json()
    assert proposal["name"] == "Oog in Al" and proposal["buurt_codes"] == ["BU03440112"]
    assert proposal["buurten"][0]["share"] > 0.95
    assert all(b["share"] <= 0.5 for b in proposal["mostly_outside"])
    bad = api.request(
        "POST",
        "/admin/v1/regions/import",
        token=utrecht["admin"],
        json={"geojson": json.dumps({"type": "FeatureCollection", "features": [{}]})},
    )
    assert bad.status_code == 422


@pytest.mark.service
def test_a_poll_keeps_the_region_version_it_was_published_with_and_shows_results_per_region(
    api, utrecht, engines
):
    admin = utrecht["admin"]
    code = api.request(
        "POST",
        "/admin/v1/regions",
        token=admin,
        json={"name": "Oog in Al", "buurt_codes": OOG_IN_AL},
    ).json()["code"]
    created = api.request(
        "POST",
        "/admin/v1/polls",
        token=admin,
        json={
            "template_id": "veiligheidsgevoel",
            "audience": {"kind": "areas", "region_codes": [code]},
        },
    )
    assert created.status_code == 201, created.text
    poll = created.json()
    published = api.request("POST", f"/admin/v1/polls/{poll['id']}/publish", token=admin)
    assert published.status_code == 200, published.text
    audience = published.json()["audience"]
    assert audience["regions"] == [
        {"code": code, "name": "Oog in Al", "version": 1, "buurt_codes": OOG_IN_AL}
    ]
    assert sorted(audience["area_codes"]) == OOG_IN_AL
    # A later version does not change the published poll.
    api.request(
        "PATCH",
        f"/admin/v1/regions/{code}",
        token=admin,
        json={"buurt_codes": [*OOG_IN_AL, "BU03440121"]},
    )

    def known() -> bool:
        with engines["responses"].connect() as conn:
            return bool(
                conn.execute(
                    sa.text("SELECT count(*) FROM polls WHERE id = :p"), {"p": poll["id"]}
                ).scalar()
            )

    wait_for(known, timeout=30, message="responses to know the poll")
    answers = minimal_answers(poll["definition"])
    rng = random.Random(13)
    batch = []
    for buurt, n in (*((b, 40) for b in OOG_IN_AL), ("BU03440121", 40)):
        for _ in range(n):
            batch.append(
                {
                    "receipt_id": str(uuid.uuid4()),
                    "poll_id": poll["id"],
                    "resident": {
                        "id": str(uuid.uuid4()),
                        "municipality_code": UTRECHT,
                        "wijk_code": f"WK{buurt[2:8]}",
                        "buurt_code": buurt,
                        "age_band": rng.choice(("25_44", "45_64", "65_plus")),
                        "sex": rng.choice(("man", "vrouw")),
                        "self_selected": False,
                    },
                    "answers": answers,
                    "submitted_at": datetime.now(UTC).isoformat(),
                }
            )
    sessions = sessionmaker(engines["responses"], expire_on_commit=False)
    run_in_transaction(
        sessions,
        lambda s: intake.record_batch(
            s, batch, secret=b"s", emit_many=add_events, today=lambda: datetime.now(UTC)
        ),
    )
    results = api.request("GET", f"/admin/v1/polls/{poll['id']}/results", token=admin)
    assert results.status_code == 200, results.text
    doc = results.json()
    region = next(a for a in doc["areas"] if a["code"] == code)
    assert (region["level"], region["name"], region["respondents"]) == ("regio", "Oog in Al", 160)
    first = next(q for q in doc["questions"] if q["type"] != "open_text")
    figures = first["areas"][code]
    assert figures["respondents"] == 160 and figures["effective_n"] > 100
    assert any(o["ci_low"] is not None for o in figures["options"])
    assert doc["weighting"][code]["converged"] is True
