"""One self-contained HTML report: summary, KPI tables, plots, a map, side-by-side panels.

:func:`render` turns the JSON of a comparison (:meth:`coupler.analysis.compare.Comparison.to_json`) or of a
sweep (:func:`sweep_json`) into a single HTML string. Everything is inline - CSS, a few lines of
JavaScript (table sorting), matplotlib plots as SVG, and the map as SVG drawn from the
municipalities' reference points - so the file opens without a network.
"""

from __future__ import annotations

import html
import io
import math
from typing import Any

import numpy as np
import pandas as pd

from coupler.analysis.kpi import KPI_LABELS
from coupler.jsonsafe import json_safe

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1400px}
h1{font-size:1.5rem}
h2{font-size:1.2rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.2rem .5rem;text-align:right}
th{background:#f3f3f3;cursor:pointer}
td.l,th.l{text-align:left}.better{color:#1a7f37}.worse{color:#b42318}
.panels{display:flex;flex-wrap:wrap;gap:1rem}
.panel{flex:1 1 380px;border:1px solid #ddd;padding:.5rem}
.panel h3{font-size:1rem;margin:.2rem 0}
svg{max-width:100%;height:auto}.note{color:#555;font-size:.85rem}
"""

_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th, i){
  th.addEventListener('click', function(){
    var t = th.closest('table'), b = t.tBodies[0], rows = Array.from(b.rows);
    var asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
    rows.sort(function(a, c){
      var x = a.cells[i].dataset.v || a.cells[i].textContent;
      var y = c.cells[i].dataset.v || c.cells[i].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var r = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
      return asc ? r : -r;
    });
    rows.forEach(function(r){ b.appendChild(r); });
  });
});
"""


def render(data: dict[str, Any], title: str | None = None) -> str:
    """The HTML report of a comparison or sweep JSON."""
    kind = data.get("kind")
    if kind == "comparison":
        body = _comparison(data)
        title = title or "coupler: comparison of " + ", ".join(v["name"] for v in data["variants"])
    elif kind == "sweep":
        body = _sweep(data)
        title = title or "coupler: weight sweep"
    else:
        raise ValueError(f"unknown report data kind {kind!r}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>{body}<script>{_JS}</script></body></html>\n"
    )


# -- comparison -----------------------------------------------------------------------------------
def _comparison(data: dict[str, Any]) -> str:
    variants = data["variants"]
    names = [v["name"] for v in variants]
    better = set(data.get("higher_is_better", []))
    parts = [
        '<section id="summary"><h2>Summary</h2>'
        f"<p>{len(names)} variant(s) solved on the same cases; "
        f"jobs count as kept within {data['reach_km']:g} km of the job. Deltas are against "
        f"<b>{_e(names[0])}</b>.</p><ul>"
    ]
    for v in variants:
        k = v["kpis"]["values"]
        agr = "; ".join(f"{a['name']}: {a['description']}" for a in v["agreements"])
        parts.append(
            f"<li><b>{_e(v['name'])}</b> ({_e(v['status'])}) - "
            f"jobs within reach {_n(k.get('jobs_kept'))} of "
            f"{_n(k.get('jobs'))}, broken persons {_n(k.get('broken_persons'))}, objective "
            f"{_n(k.get('objective'))}{(' - ' + _e(agr)) if agr else ''}</li>"
        )
    parts.append("</ul></section>")

    # KPI table with deltas
    rows = []
    for key, label in KPI_LABELS.items():
        vals = [v["kpis"]["values"].get(key) for v in variants]
        cells = [f'<td class="l">{_e(label)}</td>'] + [
            f'<td data-v="{_raw(x)}">{_n(x)}</td>' for x in vals
        ]
        for x in vals[1:]:
            d = None if x is None or vals[0] is None else x - vals[0]
            cls = ""
            if d and key not in ("solve_seconds", "persons"):
                good = (d > 0) == (key in better)
                cls = ' class="better"' if good else ' class="worse"'
            cells.append(f'<td{cls} data-v="{_raw(d)}">{_n(d, sign=True)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = (
        '<th class="l">KPI</th>'
        + "".join(f"<th>{_e(n)}</th>" for n in names)
        + "".join(f"<th>delta {_e(n)}</th>" for n in names[1:])
    )
    parts.append(
        f'<section id="kpis"><h2>KPIs</h2><table id="kpi-table" class="sortable"><thead><tr>{head}'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )

    # plots
    parts.append('<section id="plots"><h2>Plots</h2><div class="panels">')
    parts.append(f'<div class="panel plot">{_plot_bars(variants)}</div>')
    parts.append(f'<div class="panel plot">{_plot_fill(variants)}</div>')
    groups = _plot_groups(variants)
    if groups:
        parts.append(f'<div class="panel plot">{groups}</div>')
    parts.append("</div></section>")

    # maps side by side
    parts.append(
        '<section id="maps"><h2>Maps: quota and fill</h2><p class="note">Each circle is a '
        "municipality at its reference point, its area proportional to the quota; colour is the "
        "fill share of this batch (assigned / fair share): red under 90 %, yellow about right, "
        'blue over. Hover for details.</p><div class="panels">'
    )
    for v in variants:
        parts.append(
            f'<div class="panel"><h3>{_e(v["name"])}</h3>{_map(v["kpis"]["municipalities"])}</div>'
        )
    parts.append("</div></section>")

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
            table = _table(t, "impact") if len(t) else "<p>No municipality changes.</p>"
            parts.append(f'<div class="panel"><h3>{_e(v["name"])}</h3>{table}</div>')
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
            f'<section id="groups"><h2>Outcomes by group</h2>{_table(g[cols], "groups")}</section>'
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
            "without the floor.</p>" + _table(pd.DataFrame(floor_rows), "floors") + "</section>"
        )
    return "".join(parts)


# -- sweep ----------------------------------------------------------------------------------------
def sweep_json(
    table: pd.DataFrame,
    front: pd.DataFrame,
    x: str = "fill_gini_municipality",
    y: str = "jobs_kept_share",
) -> dict[str, Any]:
    """The JSON a sweep report is drawn from."""
    return {"kind": "sweep", "points": _records(table), "front": _records(front), "x": x, "y": y}


def _sweep(data: dict[str, Any]) -> str:
    pts = pd.DataFrame(data["points"])
    front = pd.DataFrame(data["front"])
    x, y = data["x"], data["y"]
    parts = [
        f'<section id="summary"><h2>Summary</h2><p>{len(pts)} runs; {int(front["on_front"].sum())} '
        f"weight setting(s) on the Pareto front of {_e(KPI_LABELS.get(y, y))} "
        "(higher is better) against "
        f"{_e(KPI_LABELS.get(x, x))} (lower is better), averaged over seeds.</p></section>"
    ]
    parts.append(
        '<section id="plots"><h2>Plots</h2><div class="panels"><div class="panel plot">'
        f"{_plot_front(front, x, y)}</div></div></section>"
    )
    parts.append(
        f'<section id="kpis"><h2>Pareto front</h2>{_table(front, "front")}'
        f"<h2>All runs</h2>{_table(pts, 'points')}</section>"
    )
    return "".join(parts)


# -- pieces ---------------------------------------------------------------------------------------
def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _figure(w: float = 5.0, h: float = 3.2) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"
    plt.rcParams["svg.hashsalt"] = "coupler"
    return plt.subplots(figsize=(w, h))


def _plot_bars(variants: list[dict[str, Any]]) -> str:
    fig, ax = _figure()
    names = [v["name"] for v in variants]
    kept = [v["kpis"]["values"].get("jobs_kept") or 0 for v in variants]
    jobs = [v["kpis"]["values"].get("jobs") or 0 for v in variants]
    broken = [v["kpis"]["values"].get("broken_persons") or 0 for v in variants]
    xs = np.arange(len(names))
    ax.bar(xs - 0.27, jobs, 0.27, label="jobs held", color="#bbb")
    ax.bar(xs, kept, 0.27, label="jobs within reach", color="#2b8a3e")
    ax.bar(xs + 0.27, broken, 0.27, label="persons broken", color="#c92a2a")
    ax.set_xticks(xs, names, rotation=15, ha="right", fontsize=8)
    ax.set_title("Jobs and broken hard criteria")
    ax.legend(fontsize=7)
    return _svg(fig)


def _plot_fill(variants: list[dict[str, Any]]) -> str:
    fig, ax = _figure()
    data = []
    for v in variants:
        s = np.array(
            [m["fill_share"] for m in v["kpis"]["municipalities"] if m["fill_share"] is not None],
            float,
        )
        data.append(s)
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(
        np.arange(1, len(variants) + 1),
        [v["name"] for v in variants],
        rotation=15,
        ha="right",
        fontsize=8,
    )
    ax.axhline(1.0, color="#888", lw=0.8, ls="--")
    ax.axhline(0.9, color="#c92a2a", lw=0.8, ls=":")
    ax.set_title("Fill share per municipality (1 = fair share)")
    return _svg(fig)


def _plot_groups(variants: list[dict[str, Any]]) -> str:
    frames = [
        pd.DataFrame(v["kpis"]["groups"]).assign(variant=v["name"])
        for v in variants
        if v["kpis"]["groups"]
    ]
    if not frames:
        return ""
    g = pd.concat(frames, ignore_index=True)
    g["label"] = g["column"] + "=" + g["group"]
    pivot = g.pivot_table(index="label", columns="variant", values="mean_score", sort=True)
    fig, ax = _figure(5.5, 3.6)
    width = 0.8 / max(1, len(pivot.columns))
    for i, col in enumerate([v["name"] for v in variants if v["name"] in pivot.columns]):
        ax.barh(np.arange(len(pivot)) + i * width, pivot[col].to_numpy(), width, label=col)
    ax.set_yticks(np.arange(len(pivot)) + 0.4 - width / 2, pivot.index, fontsize=7)
    ax.set_title("Mean soft score per household, by group")
    ax.legend(fontsize=7)
    return _svg(fig)


def _plot_front(front: pd.DataFrame, x: str, y: str) -> str:
    fig, ax = _figure()
    on = front["on_front"].astype(bool)
    ax.scatter(front.loc[~on, x], front.loc[~on, y], color="#aaa", label="dominated")
    f = front[on].sort_values(x)
    ax.plot(f[x], f[y], "o-", color="#1c7ed6", label="Pareto front")
    ax.set_xlabel(KPI_LABELS.get(x, x))
    ax.set_ylabel(KPI_LABELS.get(y, y))
    ax.legend(fontsize=7)
    ax.set_title("Weight settings")
    return _svg(fig)


def _map(municipalities: list[dict[str, Any]], width: int = 420) -> str:
    """SVG map of the Netherlands: a circle per municipality, sized by quota, coloured by fill."""
    m = pd.DataFrame(municipalities)
    lat, lon = m["lat"].to_numpy(float), m["lon"].to_numpy(float)
    k = math.cos(math.radians(52.2))
    lon0, lon1, lat0, lat1 = 3.3, 7.25, 50.7, 53.6
    height = int(width * (lat1 - lat0) / ((lon1 - lon0) * k))
    px = (lon - lon0) * k / ((lon1 - lon0) * k) * width
    py = (lat1 - lat) / (lat1 - lat0) * height
    q = m["quota"].to_numpy(float)
    r = 1.5 + 9.0 * np.sqrt(q / max(q.max(), 1.0))
    out = [
        f'<svg class="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="map of municipalities">'
        f'<rect width="{width}" height="{height}" fill="#eef4f8"/>'
    ]
    for i in np.argsort(-q):
        fill = m["fill_share"].iloc[i]
        colour = _colour(
            None if fill is None or (isinstance(fill, float) and math.isnan(fill)) else float(fill)
        )
        tip = (
            f"{m['name'].iloc[i]} ({m['province'].iloc[i]}): quota {int(q[i])}, assigned "
            f"{int(m['assigned_persons'].iloc[i])}, fill share {_n(fill)}"
        )
        out.append(
            f'<circle cx="{px[i]:.1f}" cy="{py[i]:.1f}" r="{r[i]:.1f}" fill="{colour}" '
            f'fill-opacity="0.8" stroke="#333" stroke-width="0.3"><title>{_e(tip)}</title></circle>'
        )
    legend = [(0.5, "< 90 %"), (1.0, "~100 %"), (1.6, "> 120 %")]
    for j, (v, label) in enumerate(legend):
        out.append(
            f'<circle cx="12" cy="{14 + 16 * j}" r="5" fill="{_colour(v)}"/>'
            f'<text x="22" y="{18 + 16 * j}" '
            f'font-size="10">{label}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _colour(fill: float | None) -> str:
    if fill is None:
        return "#cccccc"
    if fill < 0.9:
        t = max(0.0, fill / 0.9)
        return _mix((201, 42, 42), (250, 200, 60), t)
    if fill <= 1.2:
        return "#f5c842"
    t = min(1.0, (fill - 1.2) / 0.8)
    return _mix((120, 190, 230), (25, 90, 170), t)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> str:
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))


def _table(df: pd.DataFrame, ident: str) -> str:
    head = "".join(
        f'<th class="{"l" if df[c].dtype == object else ""}">{_e(str(c))}</th>' for c in df.columns
    )
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for x in rec:
            if isinstance(x, str):
                cells.append(f'<td class="l">{_e(x)}</td>')
            else:
                cells.append(f'<td data-v="{_raw(x)}">{_n(x)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table id="{ident}-table" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _n(x: Any, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    x = float(x)
    s = f"{x:+,.0f}" if sign else f"{x:,.0f}"
    if not float(x).is_integer():
        s = f"{x:+,.3f}" if sign else f"{x:,.3f}"
    return s


def _raw(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else str(x)


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json_safe(df.to_dict(orient="records"))
    return records


__all__ = ["render", "sweep_json"]
