"""Geometry of the small household map: points and 50 km circles in SVG user units.

The template ``_map.html`` draws them (inline SVG, so the page needs no script and no external
file, and every label is escaped by the template engine). The projection is equirectangular
around latitude 52 degrees, which is accurate to a few percent across the Netherlands; a circle
of ``r`` km is drawn with the same scale as the points.
"""

from __future__ import annotations

import math
from typing import Any

#: The map's extent (degrees) and scale (user units per degree of latitude).
LON0, LON1, LAT0, LAT1 = 3.2, 7.3, 50.7, 53.6
SCALE = 100.0
_COS = math.cos(math.radians(52.0))
KM_PER_DEGREE_LAT = 111.2


def project(lat: float, lon: float) -> tuple[float, float]:
    """SVG coordinates of a point."""
    return (round((lon - LON0) * _COS * SCALE, 1), round((LAT1 - lat) * SCALE, 1))


def household_map(view: dict[str, Any]) -> dict[str, Any]:
    """Points (all municipalities, azc, chosen, alternatives, criteria) and circles of a view.

    ``view`` is :func:`coupler.ledger.review.household_view`'s answer.
    """
    nm = view["names"]
    c = view["coupling"]
    detail = view["detail"]
    radius = float(detail.get("radius_km", 50.0))
    r = round(radius / KM_PER_DEGREE_LAT * SCALE, 1)
    background = [project(float(a), float(b)) for a, b in zip(nm["lat"], nm["lon"], strict=True)]
    circles = []
    for crit in detail.get("criteria", []):
        if crit.get("lat") is None or not crit.get("hard"):
            continue
        x, y = project(crit["lat"], crit["lon"])
        circles.append(
            {
                "x": x,
                "y": y,
                "r": r,
                "label": f"{crit['kind']}: {crit.get('criterion_municipality_name')}",
                "state": crit.get("state"),
            }
        )
    points = []
    if c.get("azc") in nm.index:
        x, y = project(float(nm.at[c["azc"], "lat"]), float(nm.at[c["azc"], "lon"]))
        points.append({"x": x, "y": y, "kind": "azc", "label": f"azc {c.get('azc_name')}"})
    for alt in detail.get("alternatives", []):
        if alt.get("lat") is None:
            continue
        x, y = project(alt["lat"], alt["lon"])
        points.append({"x": x, "y": y, "kind": "alternative", "label": str(alt.get("name"))})
    if c.get("lat") is not None:
        x, y = project(c["lat"], c["lon"])
        points.append({"x": x, "y": y, "kind": "chosen", "label": str(c.get("current_name"))})
    width = round((LON1 - LON0) * _COS * SCALE, 1)
    height = round((LAT1 - LAT0) * SCALE, 1)
    return {
        "width": width,
        "height": height,
        "background": background,
        "circles": circles,
        "points": points,
        "radius_km": radius,
    }


__all__ = ["household_map", "project"]
