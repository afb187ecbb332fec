"""The sweep report: the Pareto front of two KPIs over weight settings, labelled by weights."""

from __future__ import annotations

from typing import Any

import pandas as pd

from coupler.analysis.kpi import KPI_LABELS
from coupler.analysis.report import markup, plots
from coupler.analysis.report.markup import e, records


def sweep_json(
    table: pd.DataFrame,
    front: pd.DataFrame,
    x: str = "fill_gini_municipality",
    y: str = "jobs_kept_share",
) -> dict[str, Any]:
    """The JSON a sweep report is drawn from."""
    return {"kind": "sweep", "points": records(table), "front": records(front), "x": x, "y": y}


def sweep(data: dict[str, Any]) -> str:
    """The body of a sweep report."""
    pts = pd.DataFrame(data["points"])
    front = pd.DataFrame(data["front"])
    x, y = data["x"], data["y"]
    parts = [
        f'<section id="summary"><h2>Summary</h2><p>{len(pts)} runs; {int(front["on_front"].sum())} '
        f"weight setting(s) on the Pareto front of {e(KPI_LABELS.get(y, y))} "
        "(higher is better) against "
        f"{e(KPI_LABELS.get(x, x))} (lower is better), averaged over seeds.</p></section>"
    ]
    parts.append(
        '<section id="plots"><h2>Plots</h2><div class="panels"><div class="panel plot">'
        f"{plots.front(front, x, y)}</div></div></section>"
    )
    parts.append(
        f'<section id="kpis"><h2>Pareto front</h2>{markup.table(front, "front")}'
        f"<h2>All runs</h2>{markup.table(pts, 'points')}</section>"
    )
    return "".join(parts)
