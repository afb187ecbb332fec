"""HTML pieces of the report: escaping, number formatting, the page shell and tables."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd

from coupler.jsonsafe import json_safe

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1400px}
h1{font-size:1.5rem}
h2{font-size:1.2rem;border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:0}
th,td{border:1px solid #ddd;padding:.2rem .5rem;text-align:right;white-space:nowrap}
th{background:#f3f3f3;cursor:pointer}
td.l,th.l{text-align:left}.better{color:#1a7f37}.worse{color:#b42318}
.scroll{max-height:32rem;overflow:auto;margin:.5rem 0;border:1px solid #ddd;max-width:100%}
.scroll thead th{position:sticky;top:0;z-index:1;box-shadow:0 1px 0 #ccc}
.scroll tbody td:first-child,.scroll thead th:first-child{position:sticky;left:0;background:#fff}
.scroll thead th:first-child{background:#f3f3f3;z-index:2}
.panels{display:flex;flex-wrap:wrap;gap:1rem}
.panel{flex:1 1 380px;border:1px solid #ddd;padding:.5rem;min-width:0}
.panel h3{font-size:1rem;margin:.2rem 0}
.conclusion{font-size:1rem;background:#f6f8fa;border-left:4px solid #1c7ed6;padding:.6rem 1rem}
svg{max-width:100%;height:auto}.note{color:#555;font-size:.85rem}
"""

JS = """
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


def page(title: str, body: str) -> str:
    """A whole HTML document with the report's CSS and table sorting."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{e(title)}</h1>{body}<script>{JS}</script></body></html>\n"
    )


def table(df: pd.DataFrame, ident: str) -> str:
    """A sortable table in a scroll container whose header (and first column) stay visible."""
    head = "".join(
        f'<th class="{"l" if df[c].dtype == object else ""}">{e(str(c))}</th>' for c in df.columns
    )
    rows = []
    for rec in df.itertuples(index=False):
        cells = []
        for x in rec:
            if isinstance(x, str):
                cells.append(f'<td class="l">{e(x)}</td>')
            else:
                cells.append(f'<td data-v="{raw(x)}">{n(x)}</td>')
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="scroll"><table id="{ident}-table" class="sortable"><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def n(x: Any, sign: bool = False) -> str:
    """A number as the report prints it: thousands separators, 3 decimals when fractional."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    x = float(x)
    s = f"{x:+,.0f}" if sign else f"{x:,.0f}"
    if not float(x).is_integer():
        s = f"{x:+,.3f}" if sign else f"{x:,.3f}"
    return s


def raw(x: Any) -> str:
    return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else str(x)


def e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-safe dicts (NaN and infinities become None, numpy scalars plain)."""
    rows: list[dict[str, Any]] = json_safe(df.to_dict(orient="records"))
    return rows
