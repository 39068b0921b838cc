"""The staff pages for regions and trends (issue 13), over real HTTP with every service behind
the gateway, without JavaScript: a region made by ticking buurten in the list (the map beside
it), a leaking region refused with a Dutch error summary that names the other area and the
buurt and keeps what was filled in, a new version, archiving after a confirmation, regions
proposed from a GeoJSON file shown for confirmation and then made (a refused one kept on the
page with what to fix); and the trend of a series as a chart beside a table with the waves,
their intervals, n_eff and the significant change."""

from __future__ import annotations

import html
import json
import re

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy

from tests.service.test_regions import LAGEWEIDE, OOG_IN_AL, WEST
from tests.service.test_trends import published, record
from tests.support.panel import UTRECHT, utrecht_files

REGIONS = "/staff/beheer/regios"


@pytest.fixture
def town(api, service_config):
    with ClusterRpcProxy(service_config("panel")) as rpc:
        rpc.panel.create_municipality({"code": UTRECHT, "name": "Utrecht"})
        rpc.panel.import_areas(UTRECHT, utrecht_files())
    return {"admin": api.staff_token(UTRECHT, "admin")}


def browser(api, role="admin"):
    session = requests.Session()
    session.cookies.set("bp_staff_access", api.staff_token(UTRECHT, role))
    start = session.get(api.url("/staff/"), timeout=30)
    return session, re.search(r'data-csrf="([^"]+)"', start.text).group(1)


def post(session, api, path, data, csrf, **kwargs):
    return session.post(
        api.url(path),
        data={"csrf_token": csrf, **data},
        timeout=30,
        allow_redirects=False,
        **kwargs,
    )


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


@pytest.mark.service
def test_a_region_is_made_on_the_list_refused_when_it_leaks_changed_and_archived(api, town):
    session, csrf = browser(api)
    form = session.get(api.url(f"{REGIONS}/nieuw"), timeout=30)
    assert form.status_code == 200, form.text[:500]
    # The list is the form; the map beside it carries the codes the script ticks.
    assert f'id="a-{LAGEWEIDE}"' in form.text and f'data-code="{LAGEWEIDE}"' in form.text

    # West without Lageweide: refused, said in Dutch at the top, the form kept as filled in.
    west = [b for b in WEST if b != LAGEWEIDE]
    refused = post(
        session, api, f"{REGIONS}/nieuw", {"name": "West zonder", "buurt_codes": west}, csrf
    )
    assert refused.status_code == 422, refused.text[:500]
    summary = text_of(refused.text.split('class="bp-error-summary"', 1)[1].split("</div>", 1)[0])
    assert "Er is een probleem" in summary
    assert (
        "van Wijk 01 West alleen in" in summary
        and "Lageweide" in summary
        and "150 inwoners" in summary
    )
    assert 'href="#f-buurt_codes"' in refused.text and 'id="f-buurt_codes"' in refused.text
    assert 'value="West zonder"' in refused.text
    for code in west:
        assert re.search(rf'id="a-{code}" name="buurt_codes" value="{code}" checked', refused.text)
    assert not re.search(rf'id="a-{LAGEWEIDE}"[^>]* checked', refused.text)
    listed = api.request("GET", "/admin/v1/regions", token=town["admin"]).json()
    assert listed == []

    made = post(
        session, api, f"{REGIONS}/nieuw", {"name": "Oog in Al", "buurt_codes": OOG_IN_AL}, csrf
    )
    assert made.status_code == 303, made.text[:500]
    assert made.headers["Location"] == f"{REGIONS}?opgeslagen=RG03440001"
    page = session.get(api.url(made.headers["Location"]), timeout=30).text
    assert "Regio RG03440001 is opgeslagen" in text_of(page)
    assert f'href="{REGIONS}/RG03440001">Oog in Al</a>' in page
    region = api.request("GET", "/admin/v1/regions/RG03440001", token=town["admin"]).json()
    assert region["buurt_codes"] == OOG_IN_AL and region["version"] == 1
    cells = re.findall(
        r'<td class="utrecht-table__cell utrecht-table__cell--numeric">([^<]*)</td>',
        page.split('id="regions-caption"', 1)[1],
    )
    assert cells[:2] == ["1", "4"]  # version, buurten
    assert int(cells[2].replace(".", "")) > 0  # inhabitants, CBS

    # Changed into West without Lageweide: refused the same way, nothing saved.
    edit = f"{REGIONS}/RG03440001"
    again = post(session, api, edit, {"name": "Oog in Al", "buurt_codes": west}, csrf)
    assert again.status_code == 422
    assert "Lageweide" in text_of(again.text) and 'value="Oog in Al"' in again.text
    changed = post(
        session,
        api,
        edit,
        {"name": "Oog in Al en Lombok", "buurt_codes": [*OOG_IN_AL, "BU03440121"]},
        csrf,
    )
    assert changed.status_code == 303, changed.text[:500]
    region = api.request("GET", "/admin/v1/regions/RG03440001", token=town["admin"]).json()
    assert (region["version"], region["name"]) == (2, "Oog in Al en Lombok")

    # Archiving asks first; then the region is listed as archived.
    confirm = session.get(api.url(f"{edit}/archiveren"), timeout=30)
    assert confirm.status_code == 200 and "Regio archiveren" in confirm.text
    assert api.request("GET", "/admin/v1/regions", token=town["admin"]).json()
    archived = post(session, api, f"{edit}/archiveren", {}, csrf)
    assert archived.status_code == 303
    assert api.request("GET", "/admin/v1/regions", token=town["admin"]).json() == []
    listing = session.get(api.url(archived.headers["Location"]), timeout=30).text
    assert "Gearchiveerde regio" in listing and "Oog in Al en Lombok" in listing


@pytest.mark.service
def test_a_viewer_sees_the_regions_but_gets_no_form(api, town):
    api.request(
        "POST",
        "/admin/v1/regions",
        token=town["admin"],
        json={"name": "Oog in Al", "buurt_codes": OOG_IN_AL},
    )
    viewer, _ = browser(api, "viewer")
    listing = viewer.get(api.url(REGIONS), timeout=30)
    assert listing.status_code == 200 and "Oog in Al" in listing.text
    assert f"{REGIONS}/nieuw" not in listing.text
    for path in (f"{REGIONS}/nieuw", f"{REGIONS}/RG03440001", f"{REGIONS}/importeren"):
        refused = viewer.get(api.url(path), timeout=30)
        assert refused.status_code == 403, path
        assert refused.headers["Content-Type"].startswith("text/html")


@pytest.mark.service
def test_regions_from_a_geojson_file_are_shown_for_confirmation_then_made(
    api, town, service_config
):
    with ClusterRpcProxy(service_config("panel")) as rpc:
        boundaries = rpc.panel.buurt_boundaries(UTRECHT)["boundaries"]
    shape = {"type": "Polygon", "coordinates": [boundaries["BU03440112"][0][0]]}
    geojson = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {"name": "Oog in Al"}, "geometry": shape}],
    }
    session, csrf = browser(api)
    path = f"{REGIONS}/importeren"
    # No file: a Dutch error summary, nothing asked of the service.
    empty = post(session, api, path, {"action": "propose"}, csrf)
    assert empty.status_code == 422 and "Kies een GeoJSON-bestand" in text_of(empty.text)
    bad = post(
        session,
        api,
        path,
        {"action": "propose"},
        csrf,
        files={"geojson": ("r.geojson", b'{"type": "FeatureCollection", "features": [{}]}')},
    )
    assert bad.status_code == 422 and "properties.name" in text_of(bad.text)

    shown = post(
        session,
        api,
        path,
        {"action": "propose"},
        csrf,
        files={"geojson": ("regios.geojson", json.dumps(geojson).encode())},
    )
    assert shown.status_code == 200, shown.text[:500]
    # The proposal as the import route makes it: the buurt mostly inside ticked with its
    # share, those that only touch the shape listed unticked.
    (proposal,) = api.request(
        "POST",
        "/admin/v1/regions/import",
        token=town["admin"],
        json={"geojson": json.dumps(geojson)},
    ).json()
    assert re.search(r'id="p0-BU03440112" name="buurten-0" value="BU03440112" checked', shown.text)
    assert "Oog in Al (Wijk 01 West): 100%" in text_of(shown.text)
    unticked = re.findall(r'id="p0-(BU\d+)" name="buurten-0" value="\1">', shown.text)
    assert unticked == [b["code"] for b in proposal["mostly_outside"]]
    assert api.request("GET", "/admin/v1/regions", token=town["admin"]).json() == []

    # Confirming sends the form as shown back: the region is made. A second proposal (as if
    # the file had another shape) that would leak is refused with what to fix and stays on the
    # page, as filled in; the first is made all the same.
    fields: list[tuple[str, str]] = [("csrf_token", csrf)]
    for name, value in re.findall(
        r'<input type="hidden" name="([^"]+)" value="([^"]*)"', shown.text
    ):
        if name not in ("csrf_token", "count"):
            fields.append((name, html.unescape(value)))
    fields += [("count", "2"), ("include-0", "ja"), ("name-0", "Oog in Al")]
    fields += [("buurten-0", "BU03440112"), ("include-1", "ja"), ("name-1", "West zonder")]
    west = [b for b in WEST if b != LAGEWEIDE]
    fields += [("offered-1", f"{b}:1.0") for b in WEST]
    fields += [("buurten-1", b) for b in west]
    partly = session.post(api.url(path), data=fields, timeout=30, allow_redirects=False)
    assert partly.status_code == 422, partly.text[:800]
    said = text_of(partly.text)
    assert "Gemaakt: Oog in Al" in said and "West zonder: Deze regio verschilt van" in said
    assert 'href="#p1-buurt_codes"' in partly.text and 'value="West zonder"' in partly.text
    assert 'name="name-0"' not in partly.text  # made: no longer on the form
    assert re.search(r'id="p1-BU03440111" name="buurten-1" value="BU03440111" checked', partly.text)
    assert re.search(rf'id="p1-{LAGEWEIDE}" name="buurten-1" value="{LAGEWEIDE}">', partly.text)
    assert 'name="count" value="2"' in partly.text
    (region,) = api.request("GET", "/admin/v1/regions", token=town["admin"]).json()
    assert (region["name"], region["buurt_codes"]) == ("Oog in Al", ["BU03440112"])


@pytest.mark.service
def test_the_trend_page_shows_each_wave_with_its_interval_and_the_significant_change(
    api, town, engines
):
    admin = town["admin"]
    first = published(api, admin, engines, {"template_id": "veiligheidsgevoel"})
    record(engines, first, 0.3, 1)
    second = published(api, admin, engines, {"previous_poll_id": first["id"]})
    record(engines, second, 0.1, 2)
    session, _ = browser(api, "viewer")

    results = session.get(api.url(f"/staff/peilingen/{second['id']}/resultaten"), timeout=30)
    assert f"/staff/peilingen/{second['id']}/verloop" in results.text
    alone = session.get(api.url(f"/staff/peilingen/{first['id']}/resultaten"), timeout=30)
    assert "/verloop" not in alone.text  # the first wave is no series of its own

    trend = api.request("GET", f"/admin/v1/polls/{second['id']}/trend", token=admin).json()
    west = next(q for q in trend["questions"] if q["id"] == "vaak_onveilig")["areas"]["WK034401"]
    step = next(o for o in west["changes"][0]["options"] if o["option"] == "vaak")

    page = session.get(
        api.url(f"/staff/peilingen/{second['id']}/verloop"),
        params={"vraag": "vaak_onveilig", "optie": "vaak", "gebied": "WK034401"},
        timeout=30,
    )
    assert page.status_code == 200, page.text[:500]
    chart = page.text.split('<svg class="bp-chart"', 1)[1].split("</svg>", 1)[0]
    assert chart.count("<circle") == 2  # one value per wave, each with its whisker
    table_html = page.text.split('class="bp-figure__table"', 1)[1].split("</table>", 1)[0]
    table = text_of(table_html)
    for wave in west["waves"]:
        vaak = next(o for o in wave["options"] if o["option"] == "vaak")
        assert f"{vaak['weighted_percent']:.1f}".replace(".", ",") + "%" in table
        assert f"{vaak['ci_low']:.1f}".replace(".", ",") in table
        assert str(wave["effective_n"]).replace(".", ",") in table
    assert f"{step['change']:+.1f}".replace(".", ",").replace("-", "−") in table
    first_row, second_row = [
        [text_of(cell).strip() for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        for row in table_html.split("<tbody", 1)[1].split("<tr")[1:]
    ]
    assert "eerste meting" in first_row
    # The change's "significant" cell; the row's weighting note stands after it.
    assert second_row[-2] == "ja" and "gewogen" in second_row[-1]
    # A wijk where nobody answered: hidden, with the reason, and no change shown.
    north = session.get(
        api.url(f"/staff/peilingen/{second['id']}/verloop"),
        params={"vraag": "vaak_onveilig", "optie": "vaak", "gebied": "WK034402"},
        timeout=30,
    )
    north_table = text_of(north.text.split('class="bp-figure__table"', 1)[1].split("</table>")[0])
    assert "verborgen (minder dan 10 deelnemers" in north_table
    assert "niet getoond" in north_table
