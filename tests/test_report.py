"""The HTML report: self-contained, with summary, KPI tables, plots and maps."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from coupler import SolveParams, generate_cases, load_instance
from coupler.analysis.compare import compare
from coupler.analysis.report import render, sweep_json
from coupler.analysis.sweep import pareto_front
from coupler.cli import main


@pytest.fixture(scope="module")
def comparison_json(nl_municipalities):
    """Default policy against a 30 km radius on a 120-person batch (seed 6), as report JSON."""
    hh, cr = generate_cases(nl_municipalities, persons=120, seed=6)
    inst = load_instance(hh, cr)
    from coupler.analysis.compare import Variant
    from coupler.policy import Policy

    c = compare(
        inst,
        [Variant("default", Policy()), Variant("r30", Policy().with_(hard={"radius_km": 30.0}))],
        params=SolveParams(time_limit=20),
    )
    return json.loads(json.dumps(c.to_json()))


def test_report_is_self_contained(comparison_json) -> None:
    """No external resource is referenced: no src/href to http(s), no @import, no link tags."""
    page = render(comparison_json)
    assert not re.search(r'(src|href)\s*=\s*["\']?(https?:)?//', page)
    assert "@import" not in page and "<link" not in page
    assert page.startswith("<!DOCTYPE html>")


def test_report_has_every_section(comparison_json) -> None:
    """Summary, KPI table, plots, a map per variant and a difference map (a shape per
    municipality), impact, groups."""
    page = render(comparison_json)
    for ident in (
        'id="summary"',
        'id="kpi-table"',
        'id="plots"',
        'id="impact-table"',
        'id="groups-table"',
    ):
        assert ident in page
    # a fill-share map per variant and a difference map, each with every municipality's shape
    assert page.count('<svg class="map"') == 3
    n = len(comparison_json["variants"][0]["kpis"]["municipalities"])
    assert page.count('class="gm"') == 3 * n
    assert page.count("<svg") >= 3 + 2  # maps + at least two matplotlib plots


def test_sweep_report_draws_the_front() -> None:
    """A sweep report names how many settings are on the front and has the front table."""
    t = pd.DataFrame(
        {
            "index": [0, 1],
            "seed": [0, 0],
            "w_labour": [0.0, 1.0],
            "jobs_kept_share": [0.5, 0.8],
            "fill_gini_municipality": [0.2, 0.1],
        }
    )
    page = render(sweep_json(t, pareto_front(t)))
    assert "1 weight setting(s) on the Pareto front" in page and 'id="front-table"' in page


def test_cli_report_from_json_and_bad_input(comparison_json, tmp_path: Path) -> None:
    """`coupler report kpis.json` writes report.html next to it; a JSON of another kind exits 2
    and writes nothing."""
    data = tmp_path / "kpis.json"
    data.write_text(json.dumps(comparison_json), encoding="utf-8")
    r = CliRunner().invoke(main, ["report", str(data)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "report.html").read_text(encoding="utf-8").count('<svg class="map"') == 3
    bad = tmp_path / "bad" / "x.json"
    bad.parent.mkdir()
    bad.write_text('{"kind": "other"}', encoding="utf-8")
    r = CliRunner().invoke(main, ["report", str(bad)])
    assert r.exit_code == 2 and "is not a kpis.json or sweep.json" in r.output
    assert not (bad.parent / "report.html").exists()
