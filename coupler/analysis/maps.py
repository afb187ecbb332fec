"""Choropleth maps of the Netherlands as inline SVG, from the scenario's municipal borders.

The borders are the CBS/Kadaster 2024 generalised boundaries shipped in
``scenarios/nl-2024/borders/`` (CC BY 4.0, "Bron: CBS, Kadaster (PDOK)"; see that scenario's
README). They are projected to the Dutch national grid (RD New, EPSG:28992, by the standard
polynomial approximation, about a metre off) and simplified for a national map (Douglas-Peucker,
:data:`TOLERANCE_M`), once per process.

:func:`choropleth` draws one map: a filled path per municipality, the province borders on top,
the largest cities labelled, a legend and a tooltip per municipality. The colour scale is one of

- :func:`share_scale`: a fill share (assigned / fair share, 1 = exactly proportional), diverging
  around 1 (red under, blue over);
- :func:`realised_scale`: a realised share (housed / target) in [0, 1], sequential;
- :func:`difference_scale`: a difference between two variants (persons), diverging around 0
  (purple: fewer, green: more), symmetric around zero.

Everything is plain SVG text without scripts or external references, so the same function serves
the HTML report and the web application.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from coupler.errors import InputError, Problem

#: Simplification tolerance in metres (the source is already rounded to about 100 m).
TOLERANCE_M = 350.0
#: SVG units per metre: one unit is 500 m.
_UNIT = 1 / 500.0
_NO_DATA = "#d9d9d9"


# --- projection -------------------------------------------------------------------------------

# RD New from WGS84: X = 155000 + sum R[p, q] dphi^p dlam^q, Y = 463000 + sum S[p, q] dphi^p dlam^q
# with dphi = 0.36 (phi - 52.15517440), dlam = 0.36 (lam - 5.38720621) (Schreutelkamp & Strang van
# Hees, "Benaderingsformules voor de transformatie tussen RD- en WGS84-kaartcoordinaten").
_R = (
    (0, 1, 190094.945),
    (1, 1, -11832.228),
    (2, 1, -114.221),
    (0, 3, -32.391),
    (1, 0, -0.705),
    (3, 1, -2.340),
    (1, 3, -0.608),
    (0, 2, -0.008),
    (2, 3, 0.148),
)
_S = (
    (1, 0, 309056.544),
    (0, 2, 3638.893),
    (2, 0, 73.077),
    (1, 2, -157.984),
    (3, 0, 59.788),
    (0, 1, 0.433),
    (2, 2, -6.439),
    (1, 1, -0.032),
    (0, 4, 0.092),
    (1, 4, -0.054),
)


def project(lat: Any, lon: Any) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 latitude/longitude (degrees) to RD New x/y (metres)."""
    dphi = 0.36 * (np.asarray(lat, dtype=float) - 52.15517440)
    dlam = 0.36 * (np.asarray(lon, dtype=float) - 5.38720621)
    x = 155000.0 + sum(c * dphi**p * dlam**q for p, q, c in _R)
    y = 463000.0 + sum(c * dphi**p * dlam**q for p, q, c in _S)
    return np.asarray(x), np.asarray(y)


def simplify(points: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker simplification of a polyline (n x 2); keeps the end points."""
    if len(points) < 3:
        return points
    keep = np.zeros(len(points), dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        a, b = points[i], points[j]
        seg = points[i + 1 : j]
        d = b - a
        norm = math.hypot(d[0], d[1])
        if norm == 0.0:
            dist = np.hypot(seg[:, 0] - a[0], seg[:, 1] - a[1])
        else:
            dist = np.abs(d[0] * (seg[:, 1] - a[1]) - d[1] * (seg[:, 0] - a[0])) / norm
        k = int(np.argmax(dist))
        if dist[k] > tolerance:
            m = i + 1 + k
            keep[m] = True
            stack += [(i, m), (m, j)]
    return points[keep]


# --- borders ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Borders:
    """Projected, simplified shapes as SVG path data, keyed by CBS code, in SVG units."""

    municipalities: Mapping[str, str]
    provinces: Mapping[str, str]
    regions: Mapping[str, str]
    names: Mapping[str, str]
    width: float
    height: float
    x0: float
    y1: float

    def point(self, lat: float, lon: float) -> tuple[float, float]:
        """SVG coordinates of a WGS84 point."""
        x, y = project(lat, lon)
        return float((x - self.x0) * _UNIT), float((self.y1 - y) * _UNIT)


def borders_folder(scenario: str | Path | None = None) -> Path:
    """The ``borders`` folder of a scenario, else of the embedded nl-2024."""
    if scenario is not None and (Path(scenario) / "borders").is_dir():
        return Path(scenario) / "borders"
    from coupler.scenario import embedded_scenario

    folder = embedded_scenario() / "borders"
    # A source checkout whose editable install maps coupler.scenarios to another checkout.
    checkout = Path(__file__).resolve().parents[2] / "scenarios" / "nl-2024" / "borders"
    return folder if folder.is_dir() or not checkout.is_dir() else checkout


@lru_cache(maxsize=4)
def load_borders(folder: str | Path | None = None) -> Borders:
    """Read ``municipalities``, ``provinces`` and ``labour_market_regions.geojson`` of a folder."""
    base = Path(folder) if folder is not None else borders_folder()
    if not (base / "municipalities.geojson").is_file():
        raise InputError(Problem(str(base), "has no municipalities.geojson (map borders)"))
    layers = {}
    for name in ("municipalities", "provinces", "labour_market_regions"):
        data = json.loads((base / f"{name}.geojson").read_text(encoding="utf-8"))
        layers[name] = [
            (str(f["properties"]["statcode"]), str(f["properties"]["statnaam"]), f["geometry"])
            for f in data["features"]
        ]
    # Project every vertex in one call, then cut the result back into rings.
    raw: list[tuple[str, str, list[list[Any]]]] = []
    for name, features in layers.items():
        for code, _, geometry in features:
            polygons = (
                [geometry["coordinates"]]
                if geometry["type"] == "Polygon"
                else geometry["coordinates"]
            )
            raw.append((name, code, [ring for polygon in polygons for ring in polygon]))
    flat = np.asarray([pt for _, _, rs in raw for ring in rs for pt in ring], dtype=float)
    x, y = project(flat[:, 1], flat[:, 0])
    xy = np.column_stack([x, y])
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    rings: dict[str, list[tuple[str, list[np.ndarray]]]] = {n: [] for n in layers}
    at = 0
    for name, code, rs in raw:
        shapes = []
        for ring in rs:
            shapes.append(xy[at : at + len(ring)])
            at += len(ring)
        rings[name].append((code, shapes))
    pad = 3000.0
    x0, y1 = lo[0] - pad, hi[1] + pad
    paths = {
        name: {code: _path(shapes, x0, y1) for code, shapes in items}
        for name, items in rings.items()
    }
    return Borders(
        municipalities=paths["municipalities"],
        provinces=paths["provinces"],
        regions=paths["labour_market_regions"],
        names={code: n for code, n, _ in layers["municipalities"]},
        width=round(float(hi[0] + pad - x0) * _UNIT, 1),
        height=round(float(y1 - (lo[1] - pad)) * _UNIT, 1),
        x0=float(x0),
        y1=float(y1),
    )


def _path(shapes: Sequence[np.ndarray], x0: float, y1: float) -> str:
    """SVG path data: absolute start, relative steps, one decimal, small rings dropped."""
    parts = []
    largest = max(range(len(shapes)), key=lambda i: len(shapes[i]))
    for i, ring in enumerate(shapes):
        s = simplify(ring, TOLERANCE_M)
        pts = np.round(np.column_stack([(s[:, 0] - x0) * _UNIT, (y1 - s[:, 1]) * _UNIT]), 1)
        pts = pts[np.r_[True, np.any(np.diff(pts, axis=0) != 0, axis=1)]]
        if len(pts) < 4 and i != largest:
            continue  # a speck at national scale
        steps = np.round(np.diff(pts, axis=0), 1)
        parts.append(
            f"M{_f(pts[0, 0])} {_f(pts[0, 1])}l"
            + " ".join(f"{_f(dx)} {_f(dy)}" for dx, dy in steps)
            + "z"
        )
    return "".join(parts)


def _f(v: float) -> str:
    text = f"{v:.1f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


# --- colour scales ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """Classes of values: ``colours[i]`` for values below ``breaks[i]`` (the last: the rest)."""

    breaks: tuple[float, ...]
    colours: tuple[str, ...]
    labels: tuple[str, ...]
    title: str

    def __post_init__(self) -> None:
        if len(self.colours) != len(self.breaks) + 1 or len(self.labels) != len(self.colours):
            raise ValueError("a scale needs one colour and one label per class")

    def colour(self, value: float | None) -> str:
        if value is None or not math.isfinite(value):
            return _NO_DATA
        return self.colours[int(np.searchsorted(self.breaks, value, side="right"))]


def share_scale(title: str = "fill share (1 = fair share)") -> Scale:
    """Fill share, diverging around 1: red under, neutral near 1, blue over."""
    breaks = (0.5, 0.8, 0.95, 1.05, 1.2, 1.5)
    colours = ("#b2182b", "#ef8a62", "#fddbc7", "#f7f7f7", "#d1e5f0", "#67a9cf", "#2166ac")
    labels = ("< 50 %", "50-80 %", "80-95 %", "95-105 %", "105-120 %", "120-150 %", ">= 150 %")
    return Scale(breaks, colours, labels, title)


def realised_scale(title: str = "realised share (housed / target)") -> Scale:
    """Realised share in [0, 1] and over, sequential from pale to dark green."""
    breaks = (0.2, 0.4, 0.6, 0.8, 1.0)
    colours = ("#edf8e9", "#c7e9c0", "#a1d99b", "#74c476", "#31a354", "#006d2c")
    labels = ("< 20 %", "20-40 %", "40-60 %", "60-80 %", "80-100 %", ">= 100 %")
    return Scale(breaks, colours, labels, title)


def difference_scale(values: Sequence[float | None], title: str = "difference") -> Scale:
    """A difference, diverging around 0 with symmetric classes: purple fewer, green more."""
    finite = [abs(v) for v in values if v is not None and math.isfinite(v)]
    top = max(finite, default=1.0) or 1.0
    step = _nice(top / 3)
    b = (-2.5 * step, -1.5 * step, -0.5 * step, 0.5 * step, 1.5 * step, 2.5 * step)
    colours = ("#762a83", "#af8dc3", "#e7d4e8", "#f7f7f7", "#d9f0d3", "#7fbf7b", "#1b7837")
    labels = (
        f"< {_g(b[0])}",
        f"{_g(b[0])} to {_g(b[1])}",
        f"{_g(b[1])} to {_g(b[2])}",
        f"about 0 (±{_g(b[3])})",
        f"{_g(b[3])} to {_g(b[4])}",
        f"{_g(b[4])} to {_g(b[5])}",
        f"> {_g(b[5])}",
    )
    return Scale(b, colours, labels, title)


def _nice(x: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``x``."""
    if x <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(x))
    return next(m * e for m in (1, 2, 5, 10) if m * e >= x)


def _g(x: float) -> str:
    return f"{x:+g}" if x else "0"


# --- the map ---------------------------------------------------------------------------------


def choropleth(
    values: Mapping[str, float | None],
    scale: Scale,
    *,
    tips: Mapping[str, str] | None = None,
    cities: Sequence[tuple[str, float, float]] = (),
    borders: Borders | None = None,
    width: int = 440,
    label: str = "map of municipalities",
) -> str:
    """An SVG choropleth of the municipalities.

    Parameters
    ----------
    values
        Municipality code -> value; a code missing or None is drawn grey ("no data").
    scale
        The colour classes (:func:`share_scale`, :func:`realised_scale`,
        :func:`difference_scale`).
    tips
        Municipality code -> tooltip text [default: name and value].
    cities
        (name, lat, lon) of the places to label, e.g. from :func:`largest_cities`.
    borders
        The shapes [default: the embedded nl-2024 borders].
    width
        Display width in pixels; the height follows the map's aspect.
    label
        The ``aria-label`` of the image.

    Returns
    -------
    str
        ``<svg class="map">`` with one ``<path class="gm">`` per municipality, one
        ``<path class="pv">`` per province (borders only) and a legend.
    """
    b = borders or load_borders()
    w, h = b.width, b.height
    height = int(round(width * h / w))
    out = [
        f'<svg class="map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_f(w)} {_f(h)}" '
        f'width="{width}" height="{height}" role="img" aria-label="{_e(label)}">'
        f'<rect width="{_f(w)}" height="{_f(h)}" fill="#eaf2f8"/>'
        '<g stroke="#a0a0a0" stroke-width="0.3" stroke-linejoin="round">'
    ]
    for code, d in b.municipalities.items():
        v = values.get(code)
        tip = (tips or {}).get(code) or f"{b.names.get(code, code)}: {_value(v)}"
        out.append(
            f'<path class="gm" data-code="{_e(code)}" fill="{scale.colour(v)}" d="{d}">'
            f"<title>{_e(tip)}</title></path>"
        )
    out.append('</g><g fill="none" stroke="#333333" stroke-width="0.9" stroke-linejoin="round">')
    for code, d in b.provinces.items():
        out.append(f'<path class="pv" data-code="{_e(code)}" d="{d}"/>')
    out.append("</g>")
    for name, lat, lon in cities:
        x, y = b.point(lat, lon)
        # West of the middle the label goes left (over the sea), so Amsterdam and Almere part.
        west = x < 0.47 * w
        out.append(
            f'<circle cx="{_f(x)}" cy="{_f(y)}" r="2.2" fill="#111"/>'
            f'<text class="city" x="{_f(x - 4 if west else x + 4)}" y="{_f(y + 3.5)}" '
            f'text-anchor="{"end" if west else "start"}" font-size="11" '
            'font-family="system-ui,sans-serif" fill="#111" stroke="#fff" stroke-width="2.5" '
            f'paint-order="stroke">{_e(name)}</text>'
        )
    out.append(_legend(scale))
    out.append("</svg>")
    return "".join(out)


def _legend(scale: Scale) -> str:
    """Legend boxes in the North Sea corner (top left)."""
    x, y, box = 8, 14, 11
    parts = [
        f'<g class="legend" font-size="10" font-family="system-ui,sans-serif" fill="#222">'
        f'<text x="{x}" y="{y}" font-weight="600">{_e(scale.title)}</text>'
    ]
    for i, (colour, text) in enumerate(zip(scale.colours, scale.labels, strict=True)):
        yy = y + 6 + i * (box + 3)
        parts.append(
            f'<rect x="{x}" y="{yy}" width="{box}" height="{box}" fill="{colour}" '
            f'stroke="#888" stroke-width="0.5"/><text x="{x + box + 5}" y="{yy + box - 2}">'
            f"{_e(text)}</text>"
        )
    yy = y + 6 + len(scale.colours) * (box + 3)
    parts.append(
        f'<rect x="{x}" y="{yy}" width="{box}" height="{box}" fill="{_NO_DATA}" stroke="#888" '
        f'stroke-width="0.5"/><text x="{x + box + 5}" y="{yy + box - 2}">no data</text></g>'
    )
    return "".join(parts)


def largest_cities(
    municipalities: Sequence[Mapping[str, Any]], n: int = 8
) -> list[tuple[str, float, float]]:
    """(name, lat, lon) of the ``n`` municipalities with the most inhabitants (else quota)."""
    key = "population" if all("population" in m for m in municipalities) else "quota"
    ranked = sorted(municipalities, key=lambda m: (-float(m.get(key) or 0), str(m.get("code"))))
    return [(str(m["name"]), float(m["lat"]), float(m["lon"])) for m in ranked[:n]]


def _value(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "no data"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


__all__ = [
    "TOLERANCE_M",
    "Borders",
    "Scale",
    "borders_folder",
    "choropleth",
    "difference_scale",
    "largest_cities",
    "load_borders",
    "project",
    "realised_scale",
    "share_scale",
    "simplify",
]
