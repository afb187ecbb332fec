"""Smoke tests of the benchmark runner and report (timings themselves stay out of pytest)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import BEGIN, END, render
from benchmarks.runner import FIELDS, run
from benchmarks.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CLI run on the `tiny` tier (153 households, seed 0), coupler only, into a temp file."""
    results = tmp_path_factory.mktemp("bench") / "results.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--tier",
            "tiny",
            "--seeds",
            "0",
            "--baselines",
            "none",
            "--results",
            str(results),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return results


def test_tiny_run_records_every_field(tiny_results: Path) -> None:
    """One JSON line per run, with every documented field, the phases and a plan's figures."""
    lines = tiny_results.read_text().splitlines()
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert set(FIELDS) <= set(rec)
    assert rec["tier"] == "tiny" and rec["method"] == "coupler" and rec["error"] is None
    assert rec["persons"] == WORKLOADS["tiny"].persons
    assert {"load", "build", "solve", "write", "total"} <= set(rec["seconds"])
    assert rec["seconds"]["total"] >= rec["seconds"]["solve"] > 0
    assert rec["peak_rss_mb"] > 50
    assert rec["status"] in ("optimal", "feasible")
    assert rec["objective"] is not None and rec["broken_persons"] == 0
    assert rec["bound"] >= rec["objective"] - 1e-6
    m = rec["machine"]
    assert m["cores"] >= 1 and m["cpu"] and m["packages"]["coupler"]


def test_report_renders_table_png_and_readme(tiny_results: Path, tmp_path: Path) -> None:
    """The report writes a table naming the tier, a PNG, and replaces only the README section."""
    readme = tmp_path / "README.md"
    readme.write_text(f"# head\n\n{BEGIN}\nold table\n{END}\n\ntail\n", encoding="utf-8")
    written = render(tiny_results, tmp_path / "out", readme)
    table = (tmp_path / "out" / "table.md").read_text()
    assert "| tiny | coupler | 153 |" in table
    assert "monthly ≤ 2 s: not measured" in table
    assert (tmp_path / "out" / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = readme.read_text()
    assert "old table" not in text and "| tiny | coupler |" in text
    assert text.startswith("# head") and text.rstrip().endswith("tail")
    assert readme in written


def test_cli_rejects_unknown_tier() -> None:
    """An unknown tier is a usage error naming the known tiers, not a traceback."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tier", "nope", "--baselines", "none"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "unknown tier 'nope'" in proc.stderr and "monthly" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_baselines_run_on_a_micro_case(tmp_path: Path) -> None:
    """Both plain baselines solve a ~30-household case under a 20 s cap, in coupler's units.

    The full MIP has one column per (household, municipality) pair. Each plan's objective lies
    under the other baseline's bound (both are valid bounds), and the two agree on broken persons.
    """
    micro = WORKLOADS["tiny"].scaled(60, "micro")
    results = tmp_path / "r.jsonl"
    recs = run(
        [micro],
        [0],
        ["pulp-cbc", "highs-mip"],
        time_cap=20.0,
        results=results,
        say=lambda _: None,
    )
    assert len(results.read_text().splitlines()) == 2
    by = {r["method"]: r for r in recs}
    for method, other in (("pulp-cbc", "highs-mip"), ("highs-mip", "pulp-cbc")):
        r = by[method]
        assert r["error"] is None, r["error"]
        assert set(FIELDS) <= set(r)
        assert r["columns"] >= r["households"] * r["municipalities"] == 33 * 342
        assert r["time_cap"] == 20.0 and r["native"]["status"] in ("optimal", "feasible")
        assert r["bound"] >= r["objective"] - 1e-6
        assert r["objective"] <= by[other]["bound"] + 1e-6
        assert r["broken_persons"] == by[other]["broken_persons"] == 0


def test_tight_and_end_of_period_tiers(tmp_path: Path) -> None:
    """The tight tier has ids, sizes and participation scores only, fill balance off and a
    remaining quota of TIGHT_SLACK x persons; the end-of-period tier leaves less quota than a
    full half year but at least the batch can still be placed."""
    import math

    from benchmarks.workloads import TIGHT_SLACK

    inst, policy = WORKLOADS["tight"].scaled(200).prepare(0, tmp_path / "t").load()
    assert policy.quota.fill_balance == 0.0
    assert list(inst.households.columns[:2]) == ["household_id", "size"]
    assert len(inst.criteria) == 0 and inst.scores is not None and len(inst.scores)
    assert int(inst.remaining.sum()) == math.ceil(TIGHT_SLACK * int(inst.sizes.sum()))
    inst, _ = WORKLOADS["end-of-period"].prepare(0, tmp_path / "e").load()
    assert int(inst.sizes.sum()) <= int(inst.remaining.sum()) < 28_000


def test_tight_place_tier_scores_every_municipality_apart(tmp_path: Path) -> None:
    """The tight-place tier is the tight tier with a score per municipality: the same households
    and quota, and no two municipalities alike (the class model merges none)."""
    from coupler import build_model
    from coupler.engine.classes import count_classes

    tight, _ = WORKLOADS["tight"].scaled(200).prepare(0, tmp_path / "t").load()
    inst, policy = WORKLOADS["tight-place"].scaled(200).prepare(0, tmp_path / "p").load()
    assert policy.quota.fill_balance == 0.0
    assert inst.households["household_id"].tolist() == tight.households["household_id"].tolist()
    assert (inst.remaining == tight.remaining).all()
    assert inst.scores is not None and "municipality" in inst.scores.columns
    model = build_model(inst, policy)
    assert count_classes(model, allow_broken=False) == model.n_municipalities
    assert count_classes(build_model(tight, policy), allow_broken=False) < model.n_municipalities


def test_small_and_shortage_small_tiers(tmp_path: Path) -> None:
    """The small tier keeps ids, sizes and an azc only (no criteria); the shortage-small tier has
    ids and sizes, participation scores, fill balance off, qualifying jobs at the shortage
    centre only, and a quota of SHORTAGE_SMALL_SLACK x persons cut inside the centre's area so
    that hard criteria must break."""
    import math

    from benchmarks.workloads import SHORTAGE_SMALL_KEEP, SHORTAGE_SMALL_SLACK
    from coupler import build_model, load_scenario
    from coupler.geo import distance_matrix

    inst, policy = WORKLOADS["small"].scaled(200).prepare(0, tmp_path / "s").load()
    assert len(inst.criteria) == 0 and inst.households["azc"].notna().all()
    assert policy.quota.fill_balance > 0

    inst, policy = WORKLOADS["shortage-small"].scaled(300).prepare(0, tmp_path / "x").load()
    assert policy.quota.fill_balance == 0.0 and inst.scores is not None
    assert set(inst.criteria["kind"].astype(str)) == {"work"}
    assert inst.criteria["municipality"].nunique() == 1
    persons = int(inst.sizes.sum())
    m, _ = load_scenario()
    centre = int((m["name"].astype(str) == "Eindhoven").to_numpy().argmax())
    km = distance_matrix(m["lat"].to_numpy(float), m["lon"].to_numpy(float))[centre]
    area = km <= 50.0
    assert int(inst.remaining.sum()) < math.ceil(SHORTAGE_SMALL_SLACK * persons)
    assert int(inst.remaining[area].sum()) <= SHORTAGE_SMALL_KEEP * SHORTAGE_SMALL_SLACK * persons
    model = build_model(inst, policy)
    workers = model.has_hard
    assert int(model.size[workers].sum()) > int(inst.remaining[area].sum())  # some must break
