"""The comparison report: conclusion, summary, KPI table, plots, maps, impact, groups, floors."""

from __future__ import annotations

from typing import Any

import pandas as pd

from coupler.analysis import maps
from coupler.analysis.kpi import KPI_LABELS
from coupler.analysis.report import plots
from coupler.analysis.report.conclusion import conclusion
from coupler.analysis.report.markup import e, n, raw, table


def comparison(data: dict[str, Any]) -> str:
    """The body of a comparison report."""
    variants = data["variants"]
    names = [v["name"] for v in variants]
    better = set(data.get("higher_is_better", []))
    sentences = conclusion(variants)
    parts = [
        '<section id="conclusion"><h2>Conclusion</h2><p class="conclusion">'
        + e(" ".join(sentences))
        + "</p></section>",
        '<section id="summary"><h2>Summary</h2>'
        f"<p>{len(names)} variant(s) solved on the same cases; "
        f"jobs count as kept within {data['reach_km']:g} km of the job. Deltas are against "
        f"<b>{e(names[0])}</b>.</p><ul>",
    ]
    for v in variants:
        k = v["kpis"]["values"]
        agr = "; ".join(f"{a['name']}: {a['description']}" for a in v["agreements"])
        parts.append(
            f"<li><b>{e(v['name'])}</b> ({e(v['status'])}) - "
            f"jobs within reach {n(k.get('jobs_kept'))} of "
            f"{n(k.get('jobs'))}, broken persons {n(k.get('broken_persons'))}, objective "
            f"{n(k.get('objective'))}{(' - ' + e(agr)) if agr else ''}</li>"
        )
    parts.append("</ul></section>")

    # KPI table with deltas
    rows = []
    for key, label in KPI_LABELS.items():
        vals = [v["kpis"]["values"].get(key) for v in variants]
        cells = [f'<td class="l">{e(label)}</td>'] + [
            f'<td data-v="{raw(x)}">{n(x)}</td>' for x in vals
        ]
        for x in vals[1:]:
            d = None if x is None or vals[0] is None else x - vals[0]
            cls = ""
            if d and key not in ("solve_seconds", "persons"):
                good = (d > 0) == (key in better)
                cls = ' class="better"' if good else ' class="worse"'
            cells.append(f'<td{cls} data-v="{raw(d)}">{n(d, sign=True)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = (
        '<th class="l">KPI</th>'
        + "".join(f"<th>{e(name)}</th>" for name in names)
        + "".join(f"<th>delta {e(name)}</th>" for name in names[1:])
    )
    parts.append(
        '<section id="kpis"><h2>KPIs</h2><div class="scroll"><table id="kpi-table" '
        f'class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
        "</div></section>"
    )

    # plots
    parts.append('<section id="plots"><h2>Plots</h2><div class="panels">')
    parts.append(f'<div class="panel plot">{plots.bars(variants)}</div>')
    parts.append(f'<div class="panel plot">{plots.fill(variants)}</div>')
    groups = plots.groups(variants)
    if groups:
        parts.append(f'<div class="panel plot">{groups}</div>')
    parts.append("</div></section>")

    parts.append(maps_section(variants))

    # impact per municipality
    if len(variants) > 1:
        parts.append(
            '<section id="impact"><h2>Impact per municipality</h2><p class="note">Assigned persons '
            "against the first variant: who gains (more persons) and who absorbs.</p>"
            '<div class="panels">'
        )
        base = pd.DataFrame(variants[0]["kpis"]["municipalities"])
        for v in variants[1:]:
            other = pd.DataFrame(v["kpis"]["municipalities"])
            delta = other["assigned_persons"] - base["assigned_persons"]
            t = pd.DataFrame(
                {
                    "municipality": base["name"],
                    "province": base["province"],
                    names[0]: base["assigned_persons"],
                    v["name"]: other["assigned_persons"],
                    "delta": delta,
                }
            )
            t = t[t["delta"] != 0].sort_values("delta", key=lambda s: -s.abs()).head(25)
            shown = table(t, "impact") if len(t) else "<p>No municipality changes.</p>"
            parts.append(f'<div class="panel"><h3>{e(v["name"])}</h3>{shown}</div>')
        parts.append("</div></section>")

    # groups
    gframes = [
        pd.DataFrame(v["kpis"]["groups"]).assign(variant=v["name"])
        for v in variants
        if v["kpis"]["groups"]
    ]
    if gframes:
        g = pd.concat(gframes, ignore_index=True)
        cols = [
            "variant",
            "column",
            "group",
            "households",
            "persons",
            "mean_score",
            "jobs",
            "jobs_kept_share",
            "broken_persons",
            "uncoupled_persons",
        ]
        parts.append(
            f'<section id="groups"><h2>Outcomes by group</h2>{table(g[cols], "groups")}</section>'
        )

    # fairness floors
    floors = [(v["name"], v["floor"]) for v in variants if v.get("floor")]
    if floors:
        floor_rows: list[dict[str, Any]] = []
        for name, f in floors:
            floor_rows.append(
                {
                    "variant": name,
                    "floor": f["floor"],
                    "reached": "yes" if f["reached"] else "NO",
                    "rounds": f["rounds"],
                    "objective without floor": f["objective_without"],
                    "objective with floor": f["objective_with"],
                    "cost": f["cost"],
                    "cost %": 100 * f["cost_share"],
                }
            )
        parts.append(
            '<section id="fairness"><h2>Fairness floors and their cost</h2>'
            '<p class="note">Floors are '
            "enforced by re-solving with a bonus on the values of groups below the floor, not as a "
            "constraint; the cost is the objective (valued without bonuses) lost against the plan "
            "without the floor.</p>" + table(pd.DataFrame(floor_rows), "floors") + "</section>"
        )
    return "".join(parts)


def maps_section(variants: list[dict[str, Any]]) -> str:
    """A fill-share map per variant and, per other variant, a map of its difference."""
    first = variants[0]["kpis"]["municipalities"]
    cities = maps.largest_cities(first)
    parts = [
        '<section id="maps"><h2>Maps: fill and difference</h2><p class="note">Municipal '
        "borders 2024 (Bron: CBS, Kadaster (PDOK), CC BY 4.0) with province borders on top. "
        "Colour: the fill share of this batch (assigned persons / fair share; 1 = exactly "
        "proportional), red under, blue over. The difference maps show assigned persons against "
        f"<b>{e(variants[0]['name'])}</b>: green more, purple fewer. Hover a municipality for "
        'its numbers.</p><div class="panels">'
    ]
    for v in variants:
        rows = v["kpis"]["municipalities"]
        values = {m["code"]: m["fill_share"] for m in rows}
        tips = {
            m["code"]: f"{m['name']} ({m['province']}): quota {n(m['quota'])}, fair share "
            f"{n(m['fair_share'])}, assigned {n(m['assigned_persons'])}, fill share "
            f"{n(m['fill_share'])}"
            for m in rows
        }
        svg = maps.choropleth(
            values,
            maps.share_scale(),
            tips=tips,
            cities=cities,
            label=f"fill share per municipality, {v['name']}",
        )
        parts.append(f'<div class="panel"><h3>{e(v["name"])}: fill share</h3>{svg}</div>')
    base = {m["code"]: m for m in first}
    for v in variants[1:]:
        diff: dict[str, float | None] = {}
        tips = {}
        for m in v["kpis"]["municipalities"]:
            b = base.get(m["code"])
            if b is None:
                continue
            d = float(m["assigned_persons"]) - float(b["assigned_persons"])
            diff[m["code"]] = d
            tips[m["code"]] = (
                f"{m['name']} ({m['province']}): {n(b['assigned_persons'])} -> "
                f"{n(m['assigned_persons'])} persons ({n(d, sign=True)})"
            )
        svg = maps.choropleth(
            diff,
            maps.difference_scale(list(diff.values()), title="persons, difference"),
            tips=tips,
            cities=cities,
            label=f"difference in assigned persons, {v['name']} against {variants[0]['name']}",
        )
        parts.append(
            f'<div class="panel"><h3>{e(v["name"])} against {e(variants[0]["name"])}</h3>'
            f"{svg}</div>"
        )
    parts.append("</div></section>")
    return "".join(parts)
