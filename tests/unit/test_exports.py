"""Exports (services/responses/exports.py): the results table as CSV and XLSX shows exactly the
figures of the (suppressed) results document, never a hidden one, and no text runs as a formula."""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime
from types import SimpleNamespace

import openpyxl
import pytest

from services.responses import exports, results

AGES = ("15_24", "25_44", "45_64", "65_plus")
SEXES = ("man", "vrouw")
DEFINITION = {
    "title": "=Veilig in de buurt",
    "questions": [
        {
            "id": "veilig",
            "type": "likert5",
            "text": '=HYPERLINK("http://example.invalid","klik")',
            "labels": ["Zeer onveilig", "Onveilig", "Neutraal", "Veilig", "Zeer veilig"],
        },
        {
            "id": "vaak",
            "type": "single_choice",
            "text": "Hoe vaak voelt u zich onveilig?",
            "options": [
                {"id": "vaak", "label": "+Vaak"},
                {"id": "soms", "label": "-Soms"},
                {"id": "nooit", "label": "@Nooit"},
            ],
        },
        {
            "id": "oorzaken",
            "type": "multiple_choice",
            "text": "Waardoor?",
            "options": [{"id": "donker", "label": "Donker"}, {"id": "verkeer", "label": "Verkeer"}],
        },
        {"id": "tips", "type": "open_text", "text": "Tips?", "required": False},
    ],
}
# buurt → respondents: one small buurt (hidden, and its sibling with it), the rest large.
BUURTEN = {"BU03440111": 40, "BU03440112": 3, "BU03440211": 30, "BU03440212": 26}
MARGINS = {
    code: {
        "name": "=Wijk " + code[-2:] if code.startswith("WK") else f"Buurt {code[-4:]}",
        "age": {"0_14": 100, "15_24": 150, "25_44": 300, "45_64": 250, "65_plus": 200},
        "sex": {"man": 480, "vrouw": 520},
    }
    for code in ("GM0344", "WK034401", "WK034402", *BUURTEN)
}


def results_document(seed: int = 1, *, mixed: bool = False) -> dict:
    """A results document of the poll above; ``mixed``: every fifth respondent a business,
    every third one answered by e-mail link or on paper (issue 14)."""
    rng = random.Random(seed)
    base: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    chosen: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for buurt, n in BUURTEN.items():
        for i in range(n):
            cell: tuple = (AGES[i % 4], SEXES[i % 2], "panel")
            if mixed:
                kind = "ondernemer" if i % 5 == 4 else "panel"
                cell = (AGES[i % 4], SEXES[i % 2], kind, ("app", "link", "paper")[i % 3])
            answers = {
                "veilig": [str(rng.choice((2, 3, 4, 4, 5)))],
                "vaak": [rng.choice(("soms", "nooit", "nooit"))],
                "oorzaken": rng.sample(("donker", "verkeer"), rng.randint(1, 2)),
            }
            for area in ("GM0344", f"WK{buurt[2:8]}", buurt):
                base["*"][area][cell] += 1
                for qid, options in answers.items():
                    base[qid][area][cell] += 1
                    for option in options:
                        chosen[qid][area][(cell, option)] += 1
    data = results.Aggregates(
        base=base,
        chosen=chosen,
        invited={b: 100 for b in BUURTEN},
        margins=MARGINS,
        texts={},
    )
    poll = SimpleNamespace(
        id=uuid.uuid4(), definition=DEFINITION, municipality_code="GM0344", audience={}
    )
    return results.build(poll, data, 10)


def figures_of(question: dict, row: dict) -> dict:
    """The figures of the document a row of the table was made from."""
    if row["breakdown"] == "main":
        return question["areas"][row["area_code"]]
    split = question["by_kind" if row["breakdown"] == "kind" else "by_channel"]
    return split[row["group"]][row["area_code"]]


@pytest.mark.parametrize("mixed", [False, True], ids=["residents", "kinds_and_channels"])
def test_rows_carry_exactly_the_shown_figures_and_nothing_hidden(mixed):
    doc = results_document(mixed=mixed)
    table = exports.rows(doc, DEFINITION)
    assert any(r["suppressed"] for r in table) and any(not r["suppressed"] for r in table)
    hidden_areas = {a["code"] for a in doc["areas"] if a["suppressed"]}
    assert hidden_areas == {"BU03440111", "BU03440112"} or mixed
    by_question = {q["id"]: q for q in doc["questions"]}
    assert {r["question_id"] for r in table} == {"veilig", "vaak", "oorzaken"}
    for row in table:
        figures = figures_of(by_question[row["question_id"]], row)
        if row["suppressed"]:
            assert all(row[c] is None for c in ("n", "percent", "weighted_percent", "mean"))
            assert all(row[c] is None for c in ("ci_low", "ci_high"))
            if row["area_code"] in hidden_areas:
                assert row["respondents"] is None and row["n_effective"] is None
            continue
        assert row["area_code"] not in hidden_areas
        assert row["respondents"] == figures["respondents"]
        assert row["n_effective"] == figures.get("effective_n")
        if row["option"] == exports.MEAN:
            assert row["mean"] == figures["mean"]
            assert row["mean"] is not None or figures["respondents"] == 0
            continue
        option = next(o for o in figures["options"] if o["option"] == row["option"])
        assert row["n"] == option["count"] is not None
        for column in ("percent", "weighted_percent", "ci_low", "ci_high"):
            assert row[column] == option.get(column)
    # Every shown option figure of the document is in the table.
    splits = [("main", "resident", lambda q: q["areas"])]
    for breakdown, key in (("kind", "by_kind"), ("channel", "by_channel")):
        for group in results.KIND_SETS if breakdown == "kind" else results.CHANNELS:
            splits.append((breakdown, group, lambda q, k=key, g=group: q[k].get(g, {})))
    shown = {
        (q["id"], breakdown, group, code, o["option"])
        for q in doc["questions"]
        if "options" in q
        for breakdown, group, per_area in splits
        for code, a in per_area(q).items()
        for o in a.get("options", [])
        if o["count"] is not None
    }
    assert shown == {
        (r["question_id"], r["breakdown"], r["group"], r["area_code"], r["option"])
        for r in table
        if not r["suppressed"] and r["option"] != exports.MEAN
    }
    groups = {(r["breakdown"], r["group"]) for r in table}
    # Residents in the app: no split (it would repeat the main rows).
    assert (("channel", "paper") in groups and ("kind", "ondernemer") in groups) == mixed
    if mixed:  # businesses are counted in their own rows, never in the residents' figures
        gm = by_question["vaak"]["areas"]["GM0344"]
        business = by_question["vaak"]["by_kind"]["ondernemer"]["GM0344"]
        everyone = by_question["vaak"]["by_kind"]["all"]["GM0344"]
        assert gm["respondents"] + business["respondents"] == everyone["respondents"]
        assert business["respondents"] > 0


def parse_csv(body: bytes) -> tuple[dict[str, str], list[dict[str, str]]]:
    assert body.startswith(b"\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    head, _, table = text.partition("\r\n\r\n")
    meta = dict(csv.reader(io.StringIO(head), delimiter=";"))
    return meta, list(csv.DictReader(io.StringIO(table), delimiter=";"))


def test_csv_is_for_dutch_excel_and_hides_what_the_results_hide():
    doc = results_document()
    table = exports.rows(doc, DEFINITION)
    meta = exports.metadata(
        doc, DEFINITION, municipality="Utrecht", generated_at=datetime(2026, 11, 25, tzinfo=UTC)
    )
    head, rows = parse_csv(exports.to_csv(table, meta))
    assert head["k"] == "10" and head["municipality"] == "Utrecht"
    assert head["poll"] == "'=Veilig in de buurt"
    assert len(rows) == len(table) and list(rows[0]) == list(exports.COLUMNS)
    for parsed, row in zip(rows, table, strict=True):
        assert parsed["suppressed"] == ("true" if row["suppressed"] else "false")
        for column in exports.NUMBERS:
            if row[column] is None:
                assert parsed[column] == ""
            else:
                assert float(parsed[column].replace(",", ".")) == row[column]
                assert "." not in parsed[column]  # decimal comma


def test_xlsx_has_typed_numbers_and_no_hidden_figure():
    doc = results_document()
    table = exports.rows(doc, DEFINITION)
    meta = exports.metadata(
        doc, DEFINITION, municipality="Utrecht", generated_at=datetime(2026, 11, 25, tzinfo=UTC)
    )
    book = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(table, meta)))
    sheet = book["Resultaten"]
    header, *values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header == list(exports.COLUMNS)
    assert len(values) == len(table)
    for cells, row in zip(values, table, strict=True):
        parsed = dict(zip(header, cells, strict=True))
        assert parsed["suppressed"] is row["suppressed"]
        for column in exports.NUMBERS:
            assert parsed[column] == row[column]
    about = dict(book["Over deze cijfers"].iter_rows(values_only=True))
    assert about["k"] == "10" and about["poll"] == "'=Veilig in de buurt"


def test_texts_that_start_a_formula_are_neutralised():
    doc = results_document()
    table = exports.rows(doc, DEFINITION)
    meta = exports.metadata(
        doc, DEFINITION, municipality="@Utrecht", generated_at=datetime(2026, 11, 25, tzinfo=UTC)
    )
    _, rows = parse_csv(exports.to_csv(table, meta))
    book = openpyxl.load_workbook(io.BytesIO(exports.to_xlsx(table, meta)))
    cells = [c for row in book["Resultaten"].iter_rows() for c in row] + [
        c for row in book["Over deze cijfers"].iter_rows() for c in row
    ]
    assert all(c.data_type != "f" for c in cells)  # no formula anywhere
    texts = [v for r in rows for v in r.values()] + [
        c.value for c in cells if isinstance(c.value, str)
    ]
    assert texts and not [t for t in texts if t and t.startswith(("=", "+", "-", "@", "\t"))]
    assert '\'=HYPERLINK("http://example.invalid","klik")' in texts
    assert {"'+Vaak", "'-Soms", "'@Nooit", "'=Wijk 01", "'@Utrecht"} <= set(texts)
    assert exports.neutralise(-1.5) == -1.5 and exports.neutralise("Veilig") == "Veilig"


def test_the_weighting_note_stands_beside_every_figure_it_affects():
    """Regression (issue 15, 1d): non-convergence and estimated populations were noted only in
    the weighting summary, not beside the figures they affect; each export row now carries
    them, and the metadata names the respondents, the margins' year and the caveat."""
    saved = MARGINS["WK034402"]["age"]["15_24"]
    MARGINS["WK034402"]["age"]["15_24"] = None  # CBS "."
    try:
        doc = results_document()
    finally:
        MARGINS["WK034402"]["age"]["15_24"] = saved
    table = exports.rows(doc, DEFINITION)
    gemeente = [
        r
        for r in table
        if r["area_code"] == "GM0344" and not r["suppressed"] and r["breakdown"] == "main"
    ]
    assert gemeente and all("estimated" in (r["weighting_note"] or "") for r in gemeente)
    meta = dict(
        exports.metadata(doc, DEFINITION, municipality="Utrecht", generated_at=datetime.now(UTC))
    )
    assert "non-probability" in meta["caveat"] and meta["respondents"].startswith("all")


UNMET = "WK034402"  # the wijk of ``unmet_margins_document`` whose CBS margins cannot be met


def unmet_margins_document(seed: int = 1) -> dict:
    """``results_document`` with wijk ``UNMET``'s age margins out of reach: nearly everyone
    there 15–24 by CBS, a quarter of its respondents, so weights far outside the bounds would
    be needed. WK034401 keeps margins it meets."""
    saved = dict(MARGINS[UNMET]["age"])
    MARGINS[UNMET]["age"].update({"15_24": 5000, "25_44": 10, "45_64": 10, "65_plus": 10})
    try:
        return results_document(seed)
    finally:
        MARGINS[UNMET]["age"].update(saved)


def test_a_wijk_whose_margins_cannot_be_met_says_so_beside_its_figures():
    """Regression (issue 15, 1d): when raking cannot meet a wijk's CBS margins within the
    weight bounds (realistic skew in a small panel), the note stood only in the weighting
    summary. Now it stands beside each of that wijk's figures, in the document and in every
    export row — and not beside another wijk's."""
    doc = unmet_margins_document()
    question = next(q for q in doc["questions"] if q["id"] == "vaak")
    noted = question["areas"]["WK034402"].get("weighting_notes") or []
    assert any("cannot be met" in note for note in noted), noted
    assert not any(
        "cannot be met" in note
        for note in question["areas"]["WK034401"].get("weighting_notes") or []
    )
    table = exports.rows(doc, DEFINITION)
    shown = [
        r
        for r in table
        if r["area_code"] == "WK034402" and not r["suppressed"] and r["breakdown"] == "main"
    ]
    assert shown and all("cannot be met" in (r["weighting_note"] or "") for r in shown)
    others = [
        r
        for r in table
        if r["area_code"] == "WK034401" and not r["suppressed"] and r["breakdown"] == "main"
    ]
    assert others and not any("cannot be met" in (r["weighting_note"] or "") for r in others)
