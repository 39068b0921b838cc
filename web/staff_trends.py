"""The trend over a series of polls (issue 13) under ``/staff/peilingen/<id>/verloop``: per
question and area the weighted share of one answer in each wave with its 95% interval, as an
SVG chart (web/charts.py ``trend_chart``) beside a table with the same figures, and the change
from the wave before with its interval and whether it is significant.

The figures are the trend route's (``poll_trend``: each wave's released, suppressed results
compared in responses); the page computes nothing. A hidden figure stays hidden, with the
reason the results give for it; a change is only there where the route gives one.
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

from services.common.errors import BeingComputed, Conflict, NotFound
from web import charts
from web.pages import PageContext
from web.staff import area_tree, get_poll, option_labels, show, signed_in, staff_page

LEVELS = {"GM": 0, "RG": 1, "WK": 2, "BU": 3}


def area_names(ctx: PageContext, found: dict[str, Any], poll: dict[str, Any]) -> dict[str, str]:
    """Area code → name: the gemeente, the poll's regions (as frozen in it, else the current
    ones), wijken and buurten."""
    names = {found["code"]: found.get("name") or found["code"]}
    for w in area_tree(ctx):
        names[w["code"]] = w["name"]
        for b in w["buurten"]:
            names[b["code"]] = f"{b['name']} ({w['name']})"
    try:
        for r in ctx.api("list_regions", query={"archived": "true"}).body:
            names[r["code"]] = ctx._("Region %(name)s", name=r["name"])
    except NotFound:
        pass
    for r in (poll.get("audience") or {}).get("regions") or []:
        names[r["code"]] = ctx._("Region %(name)s", name=r["name"])
    return names


def wave_rows(area: dict[str, Any], option: str, titles: dict[int, str]) -> list[dict[str, Any]]:
    """Per wave: the option's figures (or hidden) with the notes about their weights, and the
    change from the wave before."""
    rows = []
    changes = {c["to_wave"]: c for c in area.get("changes", [])}
    for w in area["waves"]:
        row: dict[str, Any] = {"wave": w["wave"], "title": titles.get(w["wave"], "")}
        chosen = next((o for o in w.get("options", []) if o["option"] == option), None)
        if w.get("suppressed") or chosen is None or chosen.get("weighted_percent") is None:
            row["state"] = "hidden"
        else:
            row.update(
                state="shown",
                value=chosen["weighted_percent"],
                low=chosen.get("ci_low"),
                high=chosen.get("ci_high"),
                effective_n=w.get("effective_n"),
                respondents=w.get("respondents"),
                notes=w.get("weighting_notes") or [],
            )
        step = changes.get(w["wave"])
        if step is None:
            row["change_state"] = "first"
        elif not step["comparable"]:
            row["change_state"] = "not_comparable"
        else:
            moved = next((o for o in step["options"] if o["option"] == option), None)
            if moved is None or moved.get("change") is None:
                row["change_state"] = "not_shown"
            else:
                row.update(
                    change_state="shown",
                    change=moved["change"],
                    change_low=moved["ci_low"],
                    change_high=moved["ci_high"],
                    significant=moved["significant"],
                )
        rows.append(row)
    return rows


@staff_page(
    "GET",
    "/peilingen/<poll_id>/verloop",
    resource="poll",
    summary="Staff: the trend over the waves of a series, per question and area, as charts "
    "with 95% intervals beside tables with the same figures and the changes",
)
def staff_trend(ctx: PageContext) -> Response:
    found = signed_in(ctx)
    poll = get_poll(ctx)
    args = ctx.request.args
    view = args.get("respondents", "all")
    if view not in ("all", "panel"):
        view = "all"
    values: dict[str, Any] = {"poll": poll, "view": view, "trend": None}
    try:
        trend = ctx.api("poll_trend", params={"poll_id": poll["id"]}, query={"respondents": view})
    except Conflict:  # not opened yet: nothing to compare
        return show(ctx, "staff/trend.html", found, **values)
    except BeingComputed:
        response = show(ctx, "staff/trend.html", found, computing=True, **values)
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response
    doc = trend.body
    asked = {q["id"]: q for q in poll["definition"]["questions"]}
    # A question without areas has no answers yet in any wave (a poll just opened): nothing
    # to chart, said as such rather than failing on the first area.
    questions = [q for q in doc["questions"] if q["options"] and q["areas"]]
    question = next((q for q in questions if q["id"] == args.get("vraag")), None) or (
        questions[0] if questions else None
    )
    values.update(trend=doc, questions=questions, question=question)
    if question is None:
        return show(ctx, "staff/trend.html", found, **values)
    labels = option_labels(asked.get(question["id"], {"type": question["type"]}), ctx.lang)
    option = args.get("optie") or ""
    if option not in question["options"]:
        option = question["options"][0]
    names = area_names(ctx, found, poll)
    codes = sorted(question["areas"], key=lambda c: (LEVELS.get(c[:2], 9), names.get(c, c), c))
    area = args.get("gebied") or ""
    if area not in question["areas"]:
        area = found["code"] if found["code"] in question["areas"] else codes[0]
    titles = {w["wave"]: w.get("title") or "" for w in doc["waves"]}
    rows = wave_rows(question["areas"][area], option, titles)
    option_label = labels.get(option, option)
    hidden_word = ctx._("hidden")
    chart = charts.trend_chart(
        [
            charts.Point(
                ctx._("Wave %(n)s", n=r["wave"]),
                r.get("value"),
                r.get("low"),
                r.get("high"),
                hidden=r["state"] == "hidden",
            )
            for r in rows
        ],
        title=ctx._(
            "“%(option)s” in %(area)s per wave: weighted percentage with 95%% interval",
            option=option_label,
            area=names.get(area, area),
        ),
        hidden_word=hidden_word,
        chart_id="chart-trend",
    )
    # Every area's latest step at a glance, to find where something changed.
    overview = []
    for code in codes:
        latest = wave_rows(question["areas"][code], option, titles)[-1]
        overview.append({"code": code, "name": names.get(code, code), **latest})
    try:
        k = ctx.api("get_settings").body.get("min_cell_size")
    except NotFound:
        k = None
    values.update(
        labels=labels,
        option=option,
        option_label=option_label,
        area=area,
        area_name=names.get(area, area),
        names=names,
        codes=codes,
        rows=rows,
        chart=chart,
        overview=overview,
        k=k,
    )
    return show(ctx, "staff/trend.html", found, **values)
