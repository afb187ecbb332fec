"""Agreements (TOML overlays), variants, the comparison table and fairness floors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from factories import with_azc_jobs

from coupler import (
    Policy,
    SolveParams,
    build_model,
    generate_cases,
    load_instance,
    solve,
)
from coupler.agreements import Agreement
from coupler.analysis.compare import Floor, apply_floor, compare, load_variants
from coupler.analysis.kpi import compute_kpis
from coupler.cli import main
from coupler.criteria import soft_parts
from coupler.errors import InputError, PolicyError

# This checkout's shipped files (the embedded scenario of this version).
SCENARIO = Path(__file__).parents[1] / "scenarios" / "nl-2024"
AGREEMENTS = SCENARIO / "agreements"
POLICIES = SCENARIO / "policies"


@pytest.fixture(scope="module")
def cases(nl_municipalities):
    """A generated batch of 150 persons (seed 4) on the national scenario, plus three households
    moved to azc Eindhoven with a part-time job in Eindhoven (not hard: 4 hours a week)."""
    hh, cr = generate_cases(nl_municipalities, persons=150, seed=4)
    hh, cr, ids = with_azc_jobs(hh, cr, "GM0772")
    return load_instance(hh, cr), ids


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "a.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_examples_parse_and_resolve(nl_municipalities) -> None:
    """Every shipped agreement and policy file reads without error and names real places."""
    municipalities = nl_municipalities
    files = sorted(AGREEMENTS.glob("*.toml"))
    assert {f.stem for f in files} >= {
        "eindhoven-jobs",
        "utrecht-pool",
        "dordrecht-azc-work",
        "radius-30",
    }
    for f in files:
        Agreement.from_file(f).check(municipalities)
    for f in sorted(POLICIES.glob("*.toml")):
        Policy.from_file(f)
    assert Policy.from_file(POLICIES / "base.toml") == Policy()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[agreemnt]\nname='x'\n", "unknown table [agreemnt] (did you mean 'agreement'?)"),
        (
            "[[pool]]\nprovince='Utrecht'\nmembr_cap=2\n",
            "unknown key 'membr_cap' (did you mean 'member_cap'?)",
        ),
        (
            "[[pool]]\nmember_cap=2\n",
            "give exactly one of labour_market_region, province, municipalities",
        ),
        ("[[ban_outside]]\nprovince='Utrecht'\ncriterion='job'\n", "criterion must be one of"),
        (
            "[[weight_multiplier]]\nprovince='Utrecht'\nparts=['labor']\n",
            "unknown soft part(s) ['labor']",
        ),
        ("[policy.hard]\nradius_km=-5\n", "policy [hard] radius_km must be > 0; got -5"),
        (
            "[[pool]]\nprovince='Utrecht'\nmin_fill=1.2\nmax_fill=1.0\n",
            "max_fill must be >= min_fill",
        ),
    ],
)
def test_bad_agreement_files_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    """Each malformed agreement raises a PolicyError naming the file and the problem."""
    with pytest.raises(PolicyError) as err:
        Agreement.from_file(_write(tmp_path, text))
    assert message in str(err.value)
    assert "a.toml" in str(err.value)


def test_unknown_names_get_a_suggestion(tmp_path: Path, nl_municipalities) -> None:
    """A misspelt municipality or region is an InputError that suggests the closest real name."""
    municipalities = nl_municipalities
    a = Agreement.from_file(
        _write(
            tmp_path,
            "[[ban_outside]]\nazc=['Eindhovn']\ncriterion='work'\n"
            "labour_market_region='Zuidoost-Brabnt'\n",
        )
    )
    with pytest.raises(InputError) as err:
        a.check(municipalities)
    assert "did you mean 'Eindhoven'?" in str(err.value)
    assert "did you mean 'Zuidoost-Brabant'?" in str(err.value)


def test_ban_outside_keeps_job_holders_in_the_region(cases) -> None:
    """Under the Eindhoven agreement the three azc-Eindhoven job-holders are banned from every
    municipality outside Zuidoost-Brabant, the solved plan keeps them there, and nobody else gets
    a lock."""
    inst, ids = cases
    a = Agreement.from_file(AGREEMENTS / "eindhoven-jobs.toml")
    model = a.build(inst, Policy())
    region = (inst.municipalities["labour_market_region"] == "Zuidoost-Brabant").to_numpy()
    rows = [inst.household_index[i] for i in ids]
    assert model.forbidden[rows][:, ~region].all() and not model.forbidden[rows][:, region].any()
    assert model.forbidden.any(axis=1).sum() == 3
    plan = solve(model, SolveParams(time_limit=20)).plan.set_index("household_id")
    assert (plan.loc[ids, "labour_market_region"] == "Zuidoost-Brabant").all()


def test_pool_relaxes_caps_and_bands_the_total(cases) -> None:
    """The Utrecht pool doubles the members' caps, zeroes their own targets and adds one band on
    the members' total between the pooled fair share and 110 % of it; others are unchanged."""
    inst, _ = cases
    base = build_model(inst, Policy())
    model = Agreement.from_file(AGREEMENTS / "utrecht-pool.toml").apply_model(base)
    members = (inst.municipalities["province"] == "Utrecht").to_numpy()
    assert members.sum() == 26
    np.testing.assert_array_equal(model.cap[members], base.cap[members] * 2)
    np.testing.assert_array_equal(model.cap[~members], base.cap[~members])
    assert (model.target[members] == 0).all()
    band = model.bands[-1]
    share = base.target[members].sum()
    assert (
        band.members.sum() == 26 and band.lo == np.floor(share) and band.hi == np.ceil(1.1 * share)
    )
    plan = solve(model, SolveParams(time_limit=20)).plan
    total = plan.loc[plan["province"] == "Utrecht", "persons"].sum()
    assert band.lo <= total <= band.hi


def test_weight_multiplier_adds_exactly_the_extra_parts(cases, tmp_path) -> None:
    """Doubling the work parts adds weight x (labour, work_soft) once more in the named
    municipalities and changes no other column."""
    inst, _ = cases
    policy = Policy()
    base = build_model(inst, policy)
    path = _write(
        tmp_path,
        '[[weight_multiplier]]\nmunicipalities = ["Dordrecht", "Zwijndrecht", "Papendrecht", '
        '"Sliedrecht", "Hendrik-Ido-Ambacht", "Alblasserdam"]\n'
        'parts = ["labour", "work_soft"]\nfactor = 2.0\n',
    )
    model = Agreement.from_file(path).apply_model(base)
    parts = soft_parts(inst, policy)
    cols = (
        inst.municipalities["name"]
        .isin(
            [
                "Dordrecht",
                "Zwijndrecht",
                "Papendrecht",
                "Sliedrecht",
                "Hendrik-Ido-Ambacht",
                "Alblasserdam",
            ]
        )
        .to_numpy()
    )
    extra = policy.weights.labour * parts["labour"] + policy.weights.work_soft * parts["work_soft"]
    np.testing.assert_allclose(model.value[:, cols], base.value[:, cols] + extra[:, cols])
    np.testing.assert_array_equal(model.value[:, ~cols], base.value[:, ~cols])
    assert not base.value.flags.writeable or base.value is not model.value


def test_variants_compose_in_command_line_order() -> None:
    """A policy file starts a new base; an agreement applies on top of the policy before it."""
    vs = load_variants(
        [
            str(POLICIES / "labour-first.toml"),
            str(AGREEMENTS / "radius-30.toml"),
            "default",
            str(AGREEMENTS / "radius-30.toml"),
        ]
    )
    assert [v.name for v in vs] == [
        "labour-first",
        "labour-first+radius-30",
        "default",
        "default+radius-30",
    ]
    assert vs[1].agreements[0].apply_policy(vs[1].policy).weights.labour == 2.0
    assert vs[1].agreements[0].apply_policy(vs[1].policy).hard.radius_km == 30.0
    assert vs[3].agreements[0].apply_policy(vs[3].policy).weights.labour == 1.0


def test_comparison_table_deltas_and_impact(cases) -> None:
    """Delta columns equal variant minus first variant; the impact's deltas sum to zero when no
    one is left uncoupled, and jobs are judged by the first variant's 50 km in both."""
    inst, _ = cases
    vs = load_variants(["default", str(AGREEMENTS / "radius-30.toml")])
    c = compare(inst, vs, params=SolveParams(time_limit=20))
    assert c.reach_km == 50.0
    t = c.table().set_index("kpi")
    name = "default+radius-30"
    np.testing.assert_allclose(
        t[f"delta {name}"].astype(float), (t[name] - t["default"]).astype(float)
    )
    impact = c.impact()
    if all(r.result.uncoupled_persons == 0 for r in c.runs):
        assert impact[f"delta {name}"].sum() == 0
    assert c.runs[1].model.policy.hard.radius_km == 30.0


def test_floor_parse_rejects_bad_text() -> None:
    """A floor must read COLUMN:score>=X or COLUMN:jobs_kept>=X with a share in [0, 1] for jobs."""
    assert Floor.parse("gender:score>=0.9") == Floor("gender", "score", 0.9)
    for bad in ("gender>=0.9", "gender:wage>=1", "gender:jobs_kept>=1.5"):
        with pytest.raises(InputError):
            Floor.parse(bad)


def test_score_floor_lifts_the_lowest_group_and_reports_its_cost(cases) -> None:
    """A score floor at the lowest group's level plus a margin is met after re-solving (or
    reported as not reached), the plan is valued under the original model, and
    cost = without - with."""
    inst, _ = cases
    model = build_model(inst, Policy())
    result = solve(model, SolveParams(time_limit=20))
    groups = compute_kpis(result, model).groups
    g = groups[groups["column"] == "gender"]
    overall = compute_kpis(result, model).values["mean_score"]
    target = float(g["mean_score"].min() / overall) + 0.02
    floored, outcome = apply_floor(
        model,
        result,
        Floor("gender", "score", target),
        reach_km=50.0,
        params=SolveParams(time_limit=20),
    )
    assert outcome.before
    assert outcome.objective_with == pytest.approx(
        model.evaluate(
            np.array(
                [
                    inst.code_index.get(c, -1) if pd.notna(c) else -1
                    for c in floored.plan["municipality"]
                ]
            )
        ).objective
    )
    assert outcome.cost == pytest.approx(outcome.objective_without - outcome.objective_with)
    if outcome.reached:
        assert not Floor("gender", "score", target).shortfalls(compute_kpis(floored, model))


def test_cli_compare_writes_everything(tmp_path: Path) -> None:
    """`coupler compare` with a policy and two agreements prints the KPI table and writes the CSV,
    JSON and HTML report; a misspelt file exits 2 without writing."""
    out = tmp_path / "cmp"
    r = CliRunner().invoke(
        main,
        [
            "compare",
            str(POLICIES / "base.toml"),
            str(AGREEMENTS / "eindhoven-jobs.toml"),
            str(AGREEMENTS / "radius-30.toml"),
            "--persons",
            "120",
            "--time-limit",
            "15",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "share of jobs within reach" in r.output and "delta base+radius-30" in r.output
    assert {p.name for p in out.iterdir()} == {
        ".coupler-manifest.json",
        "kpis.csv",
        "kpis.json",
        "impact.csv",
        "groups.csv",
        "report.html",
    }
    bad = CliRunner().invoke(
        main, ["compare", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and "file not found" in bad.output
    assert not (tmp_path / "x").exists()
