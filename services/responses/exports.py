"""Exports of a poll's results as one tidy table, as CSV (for Dutch Excel) and as XLSX.

Plain functions over the results document that ``results.compute`` returns, which is already
suppressed: an export shows nothing the results page does not (docs/suppression.md, "the same
rule applies to exports"). A hidden figure becomes an empty cell with ``suppressed`` true,
never a number; why it is hidden is not exported. Open answers are not part of the table.

One row per question × area × option, and per scale a row for the mean. Columns: ``COLUMNS``;
``weighting_note`` carries the notes about the weights behind a row's weighted figures (weights
that missed the CBS margins, a population estimated for a missing CBS figure).

``breakdown`` and ``group`` say whose figures a row holds: ``main``/``resident`` the area's
figures (residents, weighted), then the split per kind of participant (``kind``: resident,
ondernemer, organisatie, ``all`` participants) and per channel (``channel``: app, link,
paper), unweighted with a 95% Wilson interval, suppressed like every figure.

CSV: UTF-8 with a byte-order mark, ``;`` between fields, a decimal comma and CRLF line ends —
what Excel with Dutch regional settings opens correctly by double-click (with ``,`` it puts
everything in one column, and a decimal point makes 12.5 a date or 125). First a block of
``key;value`` lines about the figures (poll, municipality, k, method), then an empty line, then
the table with its header. Tools other than Excel: read from the line after the first empty
one, or use the XLSX, whose numbers are typed.

XLSX: sheet "Resultaten" (the table, numbers as numbers) and sheet "Over deze cijfers" (the
same metadata).

Texts (question and option texts, area names) come from staff and CBS; any that starts with a
character a spreadsheet reads as a formula (= + - @, tab, CR) is prefixed with ``'`` so that
it is shown as text, not run.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

COLUMNS: tuple[str, ...] = (
    "question_id",
    "question",
    "area_code",
    "area_level",
    "area_name",
    "breakdown",
    "group",
    "option",
    "option_label",
    "n",
    "percent",
    "weighted_percent",
    "ci_low",
    "ci_high",
    "mean",
    "respondents",
    "n_effective",
    "response_rate",
    "suppressed",
    "weighting_note",
)
NUMBERS = (
    "n",
    "percent",
    "weighted_percent",
    "ci_low",
    "ci_high",
    "mean",
    "respondents",
    "n_effective",
    "response_rate",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MEAN = "mean"
METHOD_NOTE = (
    "Percentages: share of the respondents to the question in the area. Weighted percentages: "
    "raking per wijk to CBS margins for age band (15+) and sex, weights trimmed to [0.2, 5]; "
    "95% Wilson interval on Kish's effective n. See docs/methods.md."
)


def neutralise(text: Any) -> Any:
    """A text that a spreadsheet would read as a formula, made plain text; others unchanged."""
    if isinstance(text, str) and text.startswith(FORMULA_START):
        return "'" + text
    return text


def option_labels(question: Mapping[str, Any]) -> dict[str, str]:
    """Option id → label, as the poll definition words them (scales: their value)."""
    kind = question.get("type")
    labels: dict[str, str] = {}
    if kind == "likert5":
        for value, label in enumerate(question.get("labels") or [], start=1):
            labels[str(value)] = f"{value} {label}"
    elif kind == "rating10":
        labels.update({str(v): str(v) for v in range(11)})
    for option in question.get("options") or []:
        labels[str(option["id"])] = option.get("label", option["id"])
    if question.get("dont_know"):
        dont_know = question["dont_know"]
        labels["dont_know"] = dont_know if isinstance(dont_know, str) else "Weet niet"
    return labels


def rows(results: Mapping[str, Any], definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The tidy table: a dict per row with the keys of ``COLUMNS``; None for an empty cell."""
    areas = {a["code"]: a for a in results["areas"]}
    asked = {q["id"]: q for q in definition.get("questions", [])}
    table = []
    for q in results["questions"]:
        if "options" not in q:  # open answers: listed on the results page, not a table
            continue
        labels = option_labels(asked.get(q["id"], {}))
        table += _question_rows(q, areas, q["areas"], labels, ("main", "resident"))
        for breakdown, key in (("kind", "by_kind"), ("channel", "by_channel")):
            for group, per_area in (q.get(key) or {}).items():
                table += _question_rows(q, areas, per_area, labels, (breakdown, group))
    return table


def _question_rows(
    q: Mapping[str, Any],
    areas: Mapping[str, Mapping[str, Any]],
    per_area: Mapping[str, Any],
    labels: Mapping[str, str],
    split: tuple[str, str],
) -> list[dict[str, Any]]:
    """One question's rows for one breakdown (``split``: breakdown, group)."""
    table = []
    scale = q["type"] in ("likert5", "rating10")
    main = split[0] == "main"
    for code, area in areas.items():
        if not main and code not in per_area:
            continue  # no split in that area (not per buurt)
        figures = per_area.get(code, {"suppressed": True})
        hidden_area = bool(figures.get("suppressed")) or bool(area.get("suppressed"))
        common = {
            "question_id": q["id"],
            "question": q["text"],
            "area_code": code,
            "area_level": area.get("level"),
            "area_name": area.get("name"),
            "breakdown": split[0],
            "group": split[1],
            "respondents": None if hidden_area else figures.get("respondents"),
            "n_effective": None if hidden_area else figures.get("effective_n"),
            "response_rate": None if hidden_area or not main else area.get("response_rate"),
            # Beside every figure it affects: weights that missed the CBS margins, a 15+
            # population estimated for a missing CBS figure (docs/methods.md).
            "weighting_note": None
            if hidden_area
            else " | ".join(figures.get("weighting_notes") or []) or None,
        }
        by_option = {o["option"]: o for o in figures.get("options", [])}
        for option in q["options"]:
            shown = by_option.get(option, {})
            hidden = hidden_area or shown.get("count") is None
            table.append(
                {
                    **common,
                    "option": option,
                    "option_label": labels.get(str(option), str(option)),
                    "n": None if hidden else shown["count"],
                    "percent": None if hidden else shown.get("percent"),
                    "weighted_percent": None if hidden else shown.get("weighted_percent"),
                    "ci_low": None if hidden else shown.get("ci_low"),
                    "ci_high": None if hidden else shown.get("ci_high"),
                    "mean": None,
                    "suppressed": hidden,
                }
            )
        if scale:
            # A mean is withheld where any of its counts is hidden (docs/suppression.md).
            hidden = hidden_area or any(
                o.get("count") is None for o in by_option.values() if o["option"] != "dont_know"
            )
            table.append(
                {
                    **common,
                    "option": MEAN,
                    "option_label": "Gemiddelde",
                    "n": None,
                    "percent": None,
                    "weighted_percent": None,
                    "ci_low": None,
                    "ci_high": None,
                    "mean": None if hidden else figures.get("mean"),
                    "suppressed": hidden,
                }
            )
    return table


def metadata(
    results: Mapping[str, Any],
    definition: Mapping[str, Any],
    *,
    municipality: str,
    generated_at: datetime,
) -> list[tuple[str, str]]:
    """(key, value) lines about the figures: what they are, where from, what is hidden."""
    weighting = results.get("weighting") or {}
    notes = sorted({n for w in weighting.values() for n in w.get("notes", [])})
    trimmed = sorted(code for code, w in weighting.items() if w.get("trimmed"))
    version = results.get("version") or {}
    respondents = results.get("respondents", "all")
    return [
        ("poll", str(definition.get("title") or "")),
        ("poll_id", str(results["poll_id"])),
        ("municipality", municipality),
        ("generated_at", generated_at.isoformat(timespec="seconds")),
        (
            "respondents",
            "all respondents (invited panel members, self-selected sign-ups, recently moved); "
            "the main figures (breakdown main) are residents', businesses and organisations "
            "are in the breakdown per kind"
            if respondents == "all"
            else "invited panel members who did not move recently (self-selected sign-ups and "
            "recently moved residents left out)",
        ),
        (
            "version",
            f"{version.get('seq', 1)}"
            + (" (final: the poll has closed)" if version.get("final") else " (the poll is open)"),
        ),
        ("k", str(results["k"])),
        (
            "suppression",
            f"Figures resting on fewer than {results['k']} respondents, and figures from which "
            "one could be worked out, are empty with suppressed = true. See docs/suppression.md.",
        ),
        ("method", METHOD_NOTE),
        (
            "weighting",
            f"{len(weighting)} wijken weighted"
            + (f"; trimmed in {', '.join(trimmed)}" if trimmed else "")
            + (f"; notes: {' | '.join(notes)}" if notes else ""),
        ),
        (
            "source",
            "Population margins: CBS Kerncijfers wijken en buurten"
            + (f" {results['margins_year']}" if results.get("margins_year") else "")
            + " (CC BY 4.0; CBS rounds to 5 and publishes '.' where a figure is unknown or "
            "secret).",
        ),
        (
            "caveat",
            "Respondents are a non-probability sample: panel members chose to join and to "
            "answer. Weighting to age and sex corrects for those, not for other differences.",
        ),
    ]


FORMATS = ("csv", "xlsx")


def render(
    results: Mapping[str, Any],
    definition: Mapping[str, Any],
    *,
    fmt: str,
    municipality: str,
    generated_at: datetime,
) -> bytes:
    """The results document as a file: ``fmt`` one of FORMATS."""
    if fmt not in FORMATS:
        raise ValueError(f"no export as {fmt!r}: one of {', '.join(FORMATS)}")
    table = rows(results, definition)
    meta = metadata(results, definition, municipality=municipality, generated_at=generated_at)
    return to_csv(table, meta) if fmt == "csv" else to_xlsx(table, meta)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value).replace(".", ",")
    if isinstance(value, int):
        return str(value)
    return str(neutralise(value))


def to_csv(
    table: Iterable[Mapping[str, Any]],
    meta: Iterable[tuple[str, str]],
    *,
    columns: tuple[str, ...] = COLUMNS,
) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    for key, value in meta:
        writer.writerow([key, neutralise(value)])
    writer.writerow([])
    writer.writerow(list(columns))
    for row in table:
        writer.writerow([_csv_value(row[name]) for name in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(
    table: Iterable[Mapping[str, Any]],
    meta: Iterable[tuple[str, str]],
    *,
    columns: tuple[str, ...] = COLUMNS,
    numbers: tuple[str, ...] = NUMBERS,
    title: str = "Resultaten",
) -> bytes:
    """``numbers`` (and booleans) are written typed; other columns as (neutralised) text."""
    from openpyxl import Workbook  # only the export needs it

    book = Workbook()
    sheet = book.active
    sheet.title = title
    sheet.append(list(columns))
    for row in table:
        sheet.append(
            [
                row[name]
                if name in numbers or isinstance(row[name], bool)
                else neutralise(row[name])
                for name in columns
            ]
        )
    sheet.freeze_panes = "A2"
    about = book.create_sheet("Over deze cijfers")
    for key, value in meta:
        about.append([key, neutralise(value)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
