"""One self-contained HTML report of a comparison or a sweep.

:func:`render` turns the JSON of a comparison (:meth:`coupler.analysis.compare.Comparison.to_json`)
or of a sweep (:func:`sweep_json`) into a single HTML string. Everything is inline - CSS, a few
lines of JavaScript (table sorting), matplotlib plots as SVG and choropleth maps drawn from the
scenario's municipal borders (:mod:`coupler.analysis.maps`) - so the file opens without a network.

The parts: :mod:`.comparison` (conclusion, KPIs, plots, maps, impact, groups, floors),
:mod:`.conclusion` (the written conclusion), :mod:`.sweep` (Pareto front), :mod:`.plots`
(matplotlib) and :mod:`.markup` (page shell, tables, formatting).
"""

from __future__ import annotations

from typing import Any

from coupler.analysis.report.comparison import comparison
from coupler.analysis.report.markup import page
from coupler.analysis.report.sweep import sweep, sweep_json


def render(data: dict[str, Any], title: str | None = None) -> str:
    """The HTML report of a comparison or sweep JSON."""
    kind = data.get("kind")
    if kind == "comparison":
        body = comparison(data)
        title = title or "coupler: comparison of " + ", ".join(v["name"] for v in data["variants"])
    elif kind == "sweep":
        body = sweep(data)
        title = title or "coupler: weight sweep"
    else:
        raise ValueError(f"unknown report data kind {kind!r}")
    return page(title, body)


__all__ = ["render", "sweep_json"]
