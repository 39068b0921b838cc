"""The web apps' foundation without a browser: vendored files, catalogues, themes, static files,
CSRF and sessions' cookie rules, and the poll form."""

from __future__ import annotations

import gettext
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.common.errors import InvalidInput
from services.polls.library import library
from web import pollform
from web.i18n import LOCALE_DIR
from web.session import CSRF_COOKIE, Csrf, secure_cookies
from web.static_files import StaticFiles
from web.theme import AA_TEXT, basis_tokens, contrast, manifest, theme_css

ROOT = Path(__file__).resolve().parents[2]


def request(path="/", headers=None, cookies=None, form=None, host="127.0.0.1:8000"):
    builder = EnvironBuilder(
        path=path,
        headers=headers or {},
        method="POST" if form else "GET",
        data=form,
        base_url=f"http://{host}",
    )
    for name, value in (cookies or {}).items():
        builder.headers.add("Cookie", f"{name}={value}")
    return Request(builder.get_environ())


# --- vendored front-end files ------------------------------------------------------------------


def test_every_vendored_file_matches_its_manifest_entry_and_licence():
    manifest_data = json.loads((ROOT / "web" / "vendor.json").read_text())
    names = {p["name"]: p for p in manifest_data["packages"]}
    assert {n: p["license"] for n, p in names.items()} == {
        "htmx.org": "0BSD",
        "@utrecht/component-library-css": "EUPL-1.2",
        "@nl-design-system-unstable/voorbeeld-design-tokens": "EUPL-1.2",
        "leaflet": "BSD-2-Clause",
        "axe-core": "MPL-2.0",
    }
    assert names["leaflet"]["version"] == "1.9.4"
    for package in manifest_data["packages"]:
        assert package["integrity"].startswith("sha512-")
        licence_files = [f for f in package["files"] if "LICENSE" in f["path"]]
        assert licence_files, f"{package['name']} ships without its licence"
        for entry in package["files"]:
            data = (ROOT / entry["path"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]


def test_the_proprietary_utrecht_design_tokens_are_not_shipped():
    text = (ROOT / "web" / "vendor.json").read_text()
    assert "@utrecht/design-tokens" not in text
    served = [p for p in (ROOT / "web" / "static").rglob("*") if p.is_file()]
    assert not [p for p in served if "design-tokens" in str(p)]


def test_nothing_is_loaded_from_another_origin():
    for template in (ROOT / "web" / "templates").rglob("*.html"):
        text = template.read_text()
        assert "https://" not in text.replace("municipality.privacy_url", ""), template
        assert "<script>" not in text and " style=" not in text and "<style" not in text, template


# --- catalogues --------------------------------------------------------------------------------


def catalogue(lang):
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=lang)


def test_every_text_of_the_web_apps_is_in_the_catalogues(tmp_path):
    """Catches a text added without `make messages`."""
    out = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "web/babel.cfg",
            "-k",
            "N_",
            "-k",
            "_",
            "-k",
            "ngettext:1,2",
            "--no-location",
            "-o",
            str(out),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with out.open("rb") as f:
        extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    for lang in ("nl", "en"):
        known = {m.id if isinstance(m.id, str) else m.id[0] for m in catalogue(lang) if m.id}
        assert extracted - known == set(), f"{lang}: run make messages"


def test_the_dutch_catalogue_translates_every_text():
    untranslated = [
        m.id
        for m in catalogue("nl")
        if m.id and (m.fuzzy or not (m.string if isinstance(m.string, str) else all(m.string)))
    ]
    assert untranslated == []


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_the_compiled_catalogues_match_their_sources(lang):
    compiled = gettext.GNUTranslations(
        (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.mo").open("rb")
    )
    for message in catalogue(lang):
        if not message.id or message.fuzzy:
            continue
        if isinstance(message.id, str):
            assert compiled.gettext(message.id) == (message.string or message.id), message.id
        else:
            expected = message.string[1] or message.id[1]
            assert compiled.ngettext(message.id[0], message.id[1], 5) == expected


# --- themes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "primary,text",
    [
        ("#CC0000", "#FFFFFF"),
        ("#00594F", "#FFFFFF"),
        ("#F2A900", "#000000"),
        ("#FFE600", "#000000"),
        ("#1F4E79", "#FFFFFF"),
        ("#7FD4FF", "#000000"),
    ],
)
def test_a_theme_keeps_every_brand_colour_legible(primary, text):
    tokens = basis_tokens({"primary_color": primary, "text_on_primary": text})
    for state in ("default", "hover", "active"):
        bg = tokens[f"--basis-color-action-1-inverse-bg-{state}"]
        fg = tokens[f"--basis-color-action-1-inverse-color-{state}"]
        assert contrast(bg, fg) >= AA_TEXT, (state, bg, fg)
        assert contrast(tokens[f"--basis-color-action-1-color-{state}"], "#FFFFFF") >= AA_TEXT
    assert contrast(tokens["--basis-color-action-2-color-default"], "#FFFFFF") >= AA_TEXT
    # Focus colours are never the brand's.
    assert not [k for k in tokens if "focus" in k]


def test_theme_and_manifest_are_the_municipalitys():
    branding = {"primary_color": "#00594F", "text_on_primary": "#FFFFFF", "app_name": "Peil"}
    css = theme_css("GM0307", branding)
    assert ".bp-theme {" in css and "--basis-color-action-1-inverse-bg-default: #00594F;" in css
    app = json.loads(manifest("GM0307", branding, "Amersfoort", "/app/GM0307/icon.svg", "nl"))
    assert app["scope"] == app["start_url"] == "/app/GM0307/"
    assert app["theme_color"] == "#00594F" and app["name"] == "Peil"


# --- static files ------------------------------------------------------------------------------


def test_static_files_have_content_hashed_urls_etags_and_gzip():
    files = StaticFiles()
    url = files.url("js/app.js")
    digest = url.split("/")[2]
    response = files.serve(request(url, {"Accept-Encoding": "gzip"}), digest, "js/app.js")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["ETag"] == f'"{digest}"'
    assert response.headers["Content-Encoding"] == "gzip"
    again = files.serve(request(url, {"If-None-Match": f'"{digest}"'}), digest, "js/app.js")
    assert again.status_code == 304
    stale = files.serve(request("/static/0/js/app.js"), "0000000000000000", "js/app.js")
    assert stale.status_code == 307 and stale.headers["Location"] == url
    assert files.serve(request("/x"), digest, "js/nothing.js") is None


# --- sessions and CSRF -------------------------------------------------------------------------


def test_session_cookies_are_secure_except_on_loopback():
    assert secure_cookies(request(host="127.0.0.1:8000"), "auto") is False
    assert secure_cookies(request(host="localhost:8000"), "auto") is False
    assert secure_cookies(request(host="[::1]:8000"), "auto") is False
    assert secure_cookies(request(host="panel.utrecht.nl"), "auto") is True
    assert secure_cookies(request(host="127.0.0.1:8000"), "true") is True


def test_a_csrf_token_is_bound_to_the_browsers_cookie():
    csrf = Csrf("secret")
    cookie = "c" * 43
    token = csrf.token_for(cookie)
    assert csrf.valid(request(form={"csrf_token": token}, cookies={CSRF_COOKIE: cookie}))
    assert not csrf.valid(request(form={"csrf_token": token}, cookies={CSRF_COOKIE: "d" * 43}))
    assert not csrf.valid(request(form={"x": "1"}, cookies={CSRF_COOKIE: cookie}))
    assert not csrf.valid(request(form={"csrf_token": token}))
    assert Csrf("other").token_for(cookie) != token


# --- the poll form -----------------------------------------------------------------------------


def veiligheid():
    return library()["veiligheidsgevoel"]["definition"]


def test_a_form_becomes_answers_of_every_question_type():
    form = MultiDict(
        [
            ("q.veilig_buurt", "4"),
            ("q.cijfer_veiligheid", "dont_know"),
            ("q.vaak_onveilig", "soms"),
            ("q.oorzaken", "donker"),
            ("q.oorzaken", "verkeer"),
            ("q.vermijden", "vaak"),
            ("q.ontwikkeling", "gelijk"),
            ("q.onveilige_plek.lat", "52,0907"),
            ("q.onveilige_plek.lon", "5.1214"),
            ("q.waarom_plek", "  Donker pad  "),
            ("q.inzet_gemeente", "2"),
            ("q.maatregelen.camera", "2"),
            ("q.maatregelen.verlichting", "1"),
            ("q.maatregelen.drugs", "3"),
            ("q.tips", ""),
        ]
    )
    answers = pollform.answers_from_form(veiligheid(), form)
    assert answers == {
        "veilig_buurt": 4,
        "cijfer_veiligheid": "dont_know",
        "vaak_onveilig": "soms",
        "oorzaken": ["donker", "verkeer"],
        "vermijden": "vaak",
        "ontwikkeling": "gelijk",
        "onveilige_plek": {"lat": 52.0907, "lon": 5.1214},
        "waarom_plek": "  Donker pad  ",
        "inzet_gemeente": 2,
        "maatregelen": ["verlichting", "camera", "drugs"],
    }


def test_an_answer_to_a_question_whose_condition_is_not_met_is_dropped():
    form = MultiDict([("q.vaak_onveilig", "bijna_nooit"), ("q.oorzaken", "donker")])
    assert pollform.answers_from_form(veiligheid(), form) == {"vaak_onveilig": "bijna_nooit"}


def test_a_place_given_twice_in_a_ranking_is_refused_naming_the_question():
    form = MultiDict([("q.maatregelen.camera", "1"), ("q.maatregelen.drugs", "1")])
    with pytest.raises(InvalidInput) as refused:
        pollform.answers_from_form(veiligheid(), form)
    assert refused.value.errors[0]["field"] == "answers.maatregelen"


def test_a_conditional_question_says_its_condition_in_words():
    view = {q["id"]: q for q in pollform.questions_view(veiligheid(), "nl")}
    condition = view["oorzaken"]["condition"]
    assert condition["number"] == 3 and condition["labels"] == ["Vaak", "Soms"]
    assert [s[1] for s in view["veilig_buurt"]["steps"]][0] == "Zeer onveilig"
    assert view["maatregelen"]["places"] == [1, 2, 3]


def test_every_page_has_its_own_name_and_a_second_one_is_refused():
    """A page's name is its gateway entrypoint: the staff dashboard's ``polls`` page once took
    the name of the resident app's, and /app/<code>/peilingen answered 404."""
    from web.pages import PAGES, entrypoints, page

    mounted = entrypoints()
    assert len(mounted) == len(PAGES) == len({p.name for p in PAGES})
    assert {"page_polls", "page_staff_polls", "page_sign_out", "page_staff_sign_out"} <= set(
        mounted
    )
    with pytest.raises(ValueError, match="two pages named page_polls"):

        @page("GET", "/elsewhere", app="public", summary="a second page_polls")
        def polls(ctx):  # noqa: ARG001
            return None

    assert len(PAGES) == len(mounted)


def test_the_bar_chart_and_the_map_escape_their_texts_and_hatch_hidden_areas():
    from web import charts

    svg = charts.bar_chart(
        [charts.Bar("<script>", 40.0, 30.0, 50.0), charts.Bar("B", None, hidden=True)],
        title="T & <b>",
        hidden_word="verborgen",
        none_word="geen",
        chart_id="c",
    )
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "T &amp; &lt;b&gt;" in svg
    assert 'fill="url(#c-hatch)"' in svg and "verborgen" in svg
    square = [[[[5.0, 52.0], [5.1, 52.0], [5.1, 52.1], [5.0, 52.1], [5.0, 52.0]]]]
    shapes = {"BU1": square, "BU2": square, "BU3": square}
    drawn = charts.buurt_map(
        shapes,
        {
            "BU1": {"state": "shown", "value": 90.0, "label": "Een: 90%"},
            "BU2": {"state": "hidden", "label": "Twee <x>"},
        },
        title="Kaart",
        map_id="m",
    )
    assert drawn.count("<path") == 3 and 'role="img"' in drawn
    assert f'fill="{charts.CLASSES[-1][2]}"' in drawn  # 90%
    assert 'fill="url(#m-hatch)"' in drawn and "Twee &lt;x&gt;" in drawn
    assert f'fill="{charts.NO_DATA}"' in drawn  # BU3: no figure


def test_the_audience_map_names_each_wijk_over_its_buurten_as_a_target_to_click():
    import re

    from web import charts

    def square(x: float, y: float) -> list[list[list[list[float]]]]:
        ring = [[x, y], [x + 0.1, y], [x + 0.1, y + 0.1], [x, y + 0.1], [x, y]]
        return [[ring]]

    shapes = {"BU1": square(5.0, 52.0), "BU2": square(5.1, 52.0), "BU3": square(5.2, 52.0)}
    drawn = charts.audience_map(
        shapes,
        {"BU1"},
        {},
        title="Kaart",
        groups=[
            charts.MapGroup("WK1", "West <&>", "Wijk 01 West: klik", ["BU1", "BU2"]),
            charts.MapGroup("WK2", "Oost", "Wijk 02 Oost: klik", ["BU3", "BU9"]),  # BU9: no shape
            charts.MapGroup("WK3", "Leeg", "Zonder buurten", []),  # nothing to name
        ],
    )
    labels = re.findall(
        r'<text class="bp-map-label" data-wijk-code="(\w+)" x="([\d.]+)" y="([\d.]+)"'
        r"[^>]*><title>([^<]*)</title>([^<]*)</text>",
        drawn,
    )
    assert [(c, t, name) for c, _, _, t, name in labels] == [
        ("WK1", "Wijk 01 West: klik", "West &lt;&amp;&gt;"),
        ("WK2", "Wijk 02 Oost: klik", "Oost"),
    ]
    width = float(re.search(r'viewBox="0 0 ([\d.]+)', drawn).group(1))
    (_, x1, y1, _, _), (_, x2, y2, _, _) = labels
    # Each over its own buurten: West on the line between its two, Oost over the third.
    assert width / 3 - 2 < float(x1) < width / 3 + 2 and float(x2) > 2 * width / 3
    assert y1 == y2
    assert drawn.index("<text") > drawn.rindex("<path")  # on top, where a click lands


def test_a_label_goes_inside_a_wijk_whose_centre_lies_outside_it():
    from web import charts

    u_shape = [(0, 0), (3, 0), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)]
    x, y = charts.label_point([[u_shape]])
    assert (x, round(y, 3)) == (0.5, 1.357)  # the centroid's height, in the left arm
    assert charts.label_point([[[(0, 0), (2, 0), (2, 2), (0, 2)]]]) == (1.0, 1.0)
    assert charts.label_point([]) is None


def test_the_trend_chart_draws_each_shown_wave_with_its_interval_and_hatches_a_hidden_one():
    from web import charts

    svg = charts.trend_chart(
        [
            charts.Point("Meting 1", 30.0, 24.5, 35.5),
            charts.Point("<Meting 2>", None, hidden=True),
            charts.Point("Meting 3", 12.0, 8.0, 16.0),
        ],
        title="T & <b>",
        hidden_word="verborgen",
        chart_id="t",
    )
    assert 'role="img"' in svg and "T &amp; &lt;b&gt;" in svg and "&lt;Meting 2&gt;" in svg
    assert svg.count("<circle") == 2 and "30,0%" in svg and "12,0%" in svg
    assert 'fill="url(#t-hatch)"' in svg and "verborgen" in svg
    # No line joins waves across a hidden one (its value is not known).
    assert "stroke-dasharray" not in svg
    # The axis runs to the next 10 above the highest interval: 35.5 → 40%.
    assert ">40%</text>" in svg and ">100%</text>" not in svg
