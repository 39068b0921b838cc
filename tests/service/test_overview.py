"""The safety overview over real HTTP (issue 13): two waves of the veiligheidsgevoel poll with
a significant fall in one wijk, published feedback with open and finished measures, and what
the overview, its CSV and XLSX, and the refusals say — against the real broker and databases."""

from __future__ import annotations

import csv
import io

import pytest
import requests

from tests.conftest import wait_for
from tests.service.test_trends import admin as admin  # the fixture
from tests.service.test_trends import published, record
from tests.support.feedback import add_measure, close, draft, publish, save_draft
from tests.support.panel import UTRECHT

WEST, NORTH, BUURT = "WK034401", "WK034402", "BU03440111"
# A region of West: the four buurten the waves' respondents live in (tests/service/test_trends).
OOG_IN_AL = ["BU03440111", "BU03440112", "BU03440113", "BU03440114"]


def area(overview, code):
    return next(a for a in overview["areas"] if a["code"] == code)


def question(a, key):
    return next(q for q in a["questions"] if q["key"] == key)


@pytest.fixture
def region(api, admin):
    created = api.request(
        "POST",
        "/admin/v1/regions",
        token=admin,
        json={"name": "Oog in Al", "buurt_codes": OOG_IN_AL},
    )
    assert created.status_code == 201, created.text
    return created.json()["code"]


@pytest.fixture
def two_waves(api, admin, engines, region):
    # For the whole municipality, with results for the region too.
    audience = {"kind": "municipality", "region_codes": [region]}
    first = published(
        api, admin, engines, {"template_id": "veiligheidsgevoel", "audience": audience}
    )
    record(engines, first, 0.3, 1)
    close(api, admin, first["id"])
    # Feedback on the first wave: open measures in a buurt of West, in West and in North;
    # one in West done.
    save_draft(api, admin, first["id"], draft("Wat we hoorden over veiligheid"))
    add_measure(api, admin, first["id"], "Extra verlichting", area_codes=[BUURT])
    add_measure(api, admin, first["id"], "Meer handhaving", area_codes=[WEST])
    add_measure(api, admin, first["id"], "Verkeersdrempels", area_codes=[NORTH])
    done = add_measure(api, admin, first["id"], "Gesprek wijkagent", area_codes=[WEST])
    publish(api, admin, first["id"])
    finished = api.request(
        "POST",
        f"/admin/v1/measures/{done.get('measure_id') or done['id']}/status",
        token=admin,
        json={"status": "done", "note": "Gesprek gevoerd"},
    )
    assert finished.status_code == 200, finished.text
    second = published(api, admin, engines, {"previous_poll_id": first["id"], "audience": audience})
    record(engines, second, 0.1, 2)
    return first, second


@pytest.mark.service
def test_the_overview_shows_each_areas_latest_figures_trend_and_open_measures(
    api,
    admin,
    region,
    two_waves,
):
    first, second = two_waves

    # The waves' first releases may take longer than a read waits: 503 (being computed, with
    # Retry-After) until they are done.
    def overview():
        response = api.request("GET", "/admin/v1/overview", token=admin)
        assert response.status_code in (200, 503), response.text
        if response.status_code == 503:
            assert response.headers["Retry-After"]
            return None
        found = response.json()
        west = next((a for a in found["areas"] if a["code"] == WEST), None)
        return found if west and west["last_poll_id"] == second["id"] else None

    found = wait_for(overview, timeout=60, message="the second wave in the overview")
    trend = api.request("GET", f"/admin/v1/polls/{second['id']}/trend", token=admin).json()
    west = area(found, WEST)
    often = question(west, "veiligheidsgevoel.vaak_onveilig")
    assert (often["poll_id"], often["wave"], often["measure"]) == (second["id"], 2, "share")
    vaak = next(v for v in often["values"] if v["option"] == "vaak")
    assert vaak["value"] < 15 and vaak["ci_low"] <= vaak["value"] <= vaak["ci_high"]
    assert vaak["significant"] is True and vaak["trend"] == "down"
    # The same figures as the trend of the poll (made from the same released documents).
    in_trend = next(q for q in trend["questions"] if q["id"] == "vaak_onveilig")
    (step,) = in_trend["areas"][WEST]["changes"]
    assert vaak["change"] == next(o for o in step["options"] if o["option"] == "vaak")["change"]
    # A scale question: its weighted mean with an interval, in the trend too.
    safe = question(west, "veiligheidsgevoel.veilig_buurt")
    (mean,) = safe["values"]
    assert safe["measure"] == "mean" and mean["ci_low"] <= mean["value"] <= mean["ci_high"]
    scale = next(q for q in trend["questions"] if q["id"] == "veilig_buurt")
    assert scale["areas"][WEST]["waves"][-1]["mean"]["mean"] == mean["value"]
    # Open measures: the buurt's counts for the buurt, West and the gemeente, West's for West
    # and the gemeente, North's for North and the gemeente; the done one for nothing.
    assert (west["open_measures"], area(found, BUURT)["open_measures"]) == (2, 1)
    assert area(found, NORTH)["open_measures"] == 1
    assert area(found, UTRECHT)["open_measures"] == 3
    # The region counts those that reach into it: the one in its buurt, and West's (West
    # holds its buurten); not North's.
    oog_in_al = area(found, region)
    assert (oog_in_al["level"], oog_in_al["name"]) == ("regio", "Oog in Al")
    assert oog_in_al["open_measures"] == 2
    # Nobody in North answered: no figure, and the reason why.
    north = question(area(found, NORTH), "veiligheidsgevoel.vaak_onveilig")
    assert north["values"] == [] and north["reason"] in ("no_respondents", "suppressed")
    assert west["last_polled"] and west["last_polled"] >= first["opens_at"][:10]

    csv_file = api.request("GET", "/admin/v1/overview.csv", token=admin)
    assert csv_file.status_code == 200, csv_file.text
    assert csv_file.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in csv_file.headers["Content-Disposition"]
    text = csv_file.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.split("\r\n\r\n", 1)[1]), delimiter=";"))
    west_vaak = next(
        r
        for r in rows
        if r["area_code"] == WEST and r["question_id"] == "vaak_onveilig" and r["option"] == "vaak"
    )
    assert west_vaak["trend"] == "gedaald (significant)" and west_vaak["open_measures"] == "2"
    assert {r["open_measures"] for r in rows if r["area_code"] == region} == {"2"}
    assert west_vaak["value"] == str(vaak["value"]).replace(".", ",")
    xlsx = api.request("GET", "/admin/v1/overview.xlsx", token=admin)
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"

    # The staff page: the same figures as a table, the arrow with its text, the downloads.
    browser = requests.Session()
    browser.cookies.set("bp_staff_access", api.staff_token(UTRECHT, "viewer"))
    page = browser.get(api.url(f"/staff/veiligheid?gebied={WEST}"), timeout=30)
    assert page.status_code == 200, page.text
    assert "Veiligheid per gebied" in page.text and 'aria-current="page"' in page.text
    assert "gedaald (significant)" in page.text
    assert f"{vaak['value']:.1f}%".replace(".", ",") in page.text
    download = browser.get(api.url("/staff/veiligheid.csv"), timeout=30)
    assert download.status_code == 200
    assert download.content.decode("utf-8").split("\r\n\r\n", 1)[1] == text.split("\r\n\r\n", 1)[1]


@pytest.mark.service
def test_the_overview_is_for_staff_of_the_municipality_and_refuses_bad_input(api, admin):
    viewer = api.staff_token(UTRECHT, "viewer")
    assert api.request("GET", "/admin/v1/overview", token=viewer).status_code == 200
    assert api.request("GET", "/admin/v1/overview").status_code == 401
    platform = api.staff_token(None, "platform_admin")
    refused = api.request("GET", "/admin/v1/overview", token=platform)
    assert refused.status_code == 403, refused.text
    assert refused.headers["Content-Type"] == "application/problem+json"
    # Another municipality sees none of Utrecht's areas.
    elsewhere = api.staff_token("GM0307", "admin")
    theirs = api.request("GET", "/admin/v1/overview", token=elsewhere)
    assert theirs.status_code == 200 and theirs.json()["areas"] == []
    bad = api.request("GET", "/admin/v1/overview", token=admin, params={"respondents": "x"})
    assert bad.status_code == 422, bad.text
    unknown = api.request("GET", "/admin/v1/overview.pdf", token=admin)
    assert unknown.status_code == 404, unknown.text
