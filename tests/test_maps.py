"""Tests of the maps (coupler.analysis.maps) and of the report parts that use them: the RD
projection, the simplification, the colour scales, the shipped borders, the written conclusion,
labelled Pareto points, scrolling tables, and the report's map rendered in headless Chromium
(342 municipal shapes and 12 province borders per map, screenshot saved to $COUPLER_ARTIFACTS,
default ./artifacts)."""

from __future__ import annotations

import html
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coupler import generate_cases, load_instance, load_scenario
from coupler.analysis import maps
from coupler.analysis.compare import Variant, compare
from coupler.analysis.report import render, sweep_json
from coupler.analysis.report.conclusion import conclusion
from coupler.analysis.sweep import pareto_front
from coupler.policy import Policy, SolveParams

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def test_projection_matches_rd_reference_points() -> None:
    """The RD New approximation puts Amersfoort's base point at (155000, 463000) and the
    Westertoren (Amsterdam) within a metre of its published RD coordinates."""
    x, y = maps.project(52.15517440, 5.38720621)
    assert abs(x - 155000) < 0.01 and abs(y - 463000) < 0.01
    x, y = maps.project(52.37453253, 4.88352559)
    assert math.hypot(x - 120700.723, y - 487525.501) < 1.0


@settings(derandomize=True, max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1000), st.floats(0, 1000)), min_size=2, max_size=60, unique=True
    ),
    st.floats(0.5, 100),
)
def test_simplify_keeps_ends_and_stays_within_tolerance(
    pts: list[tuple[float, float]], tol: float
) -> None:
    """Douglas-Peucker keeps both end points, keeps a subsequence of the input, and every
    dropped point lies within the tolerance of the simplified line."""
    a = np.asarray(pts)
    s = maps.simplify(a, tol)
    assert (s[0] == a[0]).all() and (s[-1] == a[-1]).all()
    idx = [int(np.flatnonzero((a == p).all(axis=1))[0]) for p in s]
    assert idx == sorted(idx)
    for k in range(len(idx) - 1):
        i, j = idx[k], idx[k + 1]
        p, q = a[i], a[j]
        d = q - p
        norm = math.hypot(*d)
        for m in range(i + 1, j):
            r = a[m]
            dist = (
                math.hypot(*(r - p))
                if norm == 0
                else abs(d[0] * (r[1] - p[1]) - d[1] * (r[0] - p[0])) / norm
            )
            assert dist <= tol + 1e-9


def test_borders_cover_every_municipality() -> None:
    """The shipped borders hold exactly the 342 codes of the scenario, 12 provinces and 35
    regions; the map is taller than wide (the Netherlands) and every city point falls inside."""
    b = maps.load_borders()
    municipalities, _ = load_scenario()
    assert set(b.municipalities) == set(municipalities["code"])
    assert len(b.provinces) == 12 and len(b.regions) == 35
    assert b.height > b.width
    for r in municipalities.itertuples():
        x, y = b.point(r.lat, r.lon)
        assert 0 < x < b.width and 0 < y < b.height
    for d in b.municipalities.values():
        assert re.fullmatch(r"(M[-0-9. ]+l[-0-9. ]+z)+", d)


def test_scales_classify_values() -> None:
    """Fill share is neutral near 1 and diverges red/blue; realised is sequential; the
    difference scale is symmetric around zero, neutral at 0; None is 'no data' grey."""
    s = maps.share_scale()
    assert s.colour(1.0) == s.colour(0.97) == s.colour(1.04)
    assert s.colour(0.3) != s.colour(1.0) != s.colour(2.0)
    r = maps.realised_scale()
    assert [r.colour(v) for v in (0.1, 0.5, 1.2)] == [r.colours[0], r.colours[2], r.colours[-1]]
    d = maps.difference_scale([-7, 3, 0])
    assert d.breaks == tuple(-b for b in reversed(d.breaks))
    assert d.colour(0) == d.colours[3] and d.colour(-7) != d.colour(7)
    assert s.colour(None) == s.colour(float("nan")) == "#d9d9d9"


def test_choropleth_draws_every_shape_legend_and_cities() -> None:
    """One path per municipality coloured by its class, 12 province borders on top (after the
    municipalities), the legend's classes and the labelled cities."""
    municipalities, _ = load_scenario()
    values = dict(zip(municipalities["code"], np.linspace(0, 2, len(municipalities)), strict=True))
    cities = maps.largest_cities(municipalities.to_dict("records"), n=5)
    assert [c[0] for c in cities][:2] == ["Amsterdam", "Rotterdam"]
    svg = maps.choropleth(values, maps.share_scale(), cities=cities)
    assert svg.count('class="gm"') == 342 and svg.count('class="pv"') == 12
    assert svg.rindex('class="gm"') < svg.index('class="pv"')
    for label in maps.share_scale().labels:
        assert f">{html.escape(label)}<" in svg
    assert svg.count('class="city"') == 5 and ">Amsterdam<" in svg
    gm0014 = re.search(r'data-code="GM0014" fill="([^"]+)"', svg)
    assert gm0014 and gm0014.group(1) == maps.share_scale().colour(values["GM0014"])


def _variant(name: str, assigned: dict[str, int], jobs_kept: int, broken: int, gini: float):
    rows = [
        {"code": c, "name": c.replace("GM", "M"), "assigned_persons": a}
        for c, a in assigned.items()
    ]
    values = {
        "jobs": 20,
        "jobs_kept": jobs_kept,
        "broken_persons": broken,
        "fill_gini_municipality": gini,
    }
    return {"name": name, "kpis": {"values": values, "municipalities": rows}}


def test_conclusion_is_computed_from_the_kpis() -> None:
    """Two to five sentences; they state the jobs and broken persons of both variants, the
    direction of the fill spread, and the municipalities with the largest gains and losses."""
    base = _variant("default", {"GM1": 5, "GM2": 5, "GM3": 5, "GM4": 0}, 15, 0, 0.20)
    other = _variant("regional", {"GM1": 1, "GM2": 6, "GM3": 5, "GM4": 3}, 18, 2, 0.25)
    s = conclusion([base, other])
    assert 2 <= len(s) <= 5
    text = " ".join(s)
    assert "3 more jobs within reach (15 -> 18)" in text
    assert "2 more persons with a broken hard criterion (0 -> 2)" in text
    assert "less even" in text
    assert "M4 (+3) and M2 (+1) absorb" in text and "M1 (-4) receive fewer" in text
    assert 2 <= len(conclusion([base])) <= 5
    many = conclusion([base, other, other, other])
    assert 2 <= len(many) <= 5 and "regional keeps the most jobs" in many[-1]


@pytest.fixture(scope="module")
def report_page() -> str:
    """A default-vs-30-km comparison of 200 persons (seed 6), rendered."""
    municipalities, _ = load_scenario()
    hh, cr = generate_cases(municipalities, persons=200, seed=6)
    c = compare(
        load_instance(hh, cr),
        [Variant("default", Policy()), Variant("r30", Policy().with_(hard={"radius_km": 30.0}))],
        params=SolveParams(time_limit=20),
    )
    return render(json.loads(json.dumps(c.to_json())))


def test_report_has_conclusion_maps_and_scrolling_tables(report_page: str) -> None:
    """The conclusion comes first; two fill-share maps and one difference map of 342 shapes
    each; the credit; wide tables sit in a scroll container with a sticky header."""
    assert report_page.index('id="conclusion"') < report_page.index('id="summary"')
    assert report_page.count('<svg class="map"') == 3
    assert report_page.count('class="gm"') == 3 * 342
    assert report_page.count('class="pv"') == 3 * 12
    assert "Bron: CBS, Kadaster (PDOK)" in report_page
    assert '<div class="scroll"><table id="kpi-table"' in report_page
    assert "position:sticky" in report_page


def test_sweep_report_labels_pareto_points_with_weights() -> None:
    """Each Pareto point of a sweep plot carries the weights that vary across the sweep."""
    t = pd.DataFrame(
        {
            "index": [0, 1, 2],
            "seed": [0, 0, 0],
            "w_labour": [0.0, 1.0, 2.0],
            "w_azc": [0.5, 0.5, 0.5],
            "jobs_kept_share": [0.5, 0.8, 0.7],
            "fill_gini_municipality": [0.1, 0.2, 0.3],
        }
    )
    front = pareto_front(t)
    page = render(sweep_json(t, front))
    for r in front[front["on_front"]].itertuples():
        assert f">labour {r.w_labour:g}<" in page
    assert ">azc 0.5<" not in page  # a weight that never varies is not repeated on every point


def _artifacts() -> Path:
    d = Path(os.environ.get("COUPLER_ARTIFACTS") or "artifacts")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs chromium at /usr/bin/chromium")
def test_report_map_renders_in_chromium(report_page: str, tmp_path: Path) -> None:
    """In headless Chromium (offline) each report map shows 342 visible municipal paths and 12
    province paths, the map is taller than wide, and a screenshot of the first map is saved."""
    sync_api = pytest.importorskip("playwright.sync_api")
    f = tmp_path / "report.html"
    f.write_text(report_page, encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.goto(f.as_uri())
            first = page.locator("#maps svg.map").first
            first.scroll_into_view_if_needed()
            assert page.locator("#maps svg.map").count() == 3
            assert first.locator("path.gm").count() == 342
            assert first.locator("path.pv").count() == 12
            box = first.bounding_box()
            assert box is not None and box["height"] > box["width"] > 200
            shown = page.evaluate(
                "Array.from(document.querySelectorAll('#maps svg.map')[0]"
                ".querySelectorAll('path.gm')).filter(p => {const b = p.getBBox();"
                " return b.width > 0 && b.height > 0}).length"
            )
            assert shown == 342
            shot = _artifacts() / "report-map.png"
            first.screenshot(path=str(shot))
            assert shot.stat().st_size > 20_000
            page.screenshot(path=str(_artifacts() / "report-maps.png"), full_page=True)
        finally:
            browser.close()
