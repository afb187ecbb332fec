"""Tests of coupler.agreements: every shipped overlay runs through `coupler solve --agreement`
and `coupler batch propose --agreement`, and the Dordrecht overlay binds only working residents
of azc Dordrecht, to the labour-market region of their job."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from coupler import Policy, load_instance, schema
from coupler.agreements import Agreement, build_variant
from coupler.cli import main
from coupler.generate import generate_cases
from coupler.ledger import Ledger
from coupler.ledger.context import BatchContext
from coupler.scenario import load_scenario

# The repository's own scenario folder (an editable install may map coupler.scenarios elsewhere).
AGREEMENTS = Path(__file__).resolve().parents[1] / "scenarios" / "nl-2024" / "agreements"
SHIPPED = sorted(AGREEMENTS.glob("*.toml"))


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A generated batch of 300 persons written as households.csv and criteria.csv."""
    folder = tmp_path_factory.mktemp("cases")
    municipalities, _ = load_scenario()
    hh, cr = generate_cases(municipalities, persons=300, seed=5)
    hh.to_csv(folder / "households.csv", index=False)
    cr.to_csv(folder / "criteria.csv", index=False)
    return folder / "households.csv", folder / "criteria.csv"


def test_every_overlay_is_shipped() -> None:
    """The four shipped overlays are there and the old national Drechtsteden weight is gone."""
    names = {f.stem for f in SHIPPED}
    assert names == {"dordrecht-azc-work", "eindhoven-jobs", "radius-30", "utrecht-pool"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_solve_with_each_shipped_agreement(path: Path, batch, tmp_path: Path) -> None:
    """`coupler solve --agreement FILE` solves with the overlay and records it in summary.json;
    the policy written is the base policy with the overlay's [policy] keys merged in."""
    hh, cr = batch
    out = tmp_path / "run"
    args = ["solve", "--households", str(hh), "--criteria", str(cr), "--out", str(out)]
    r = CliRunner().invoke(main, [*args, "--agreement", str(path), "--time-limit", "20"])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert [a["file"] for a in summary["agreements"]] == [path.name]
    expected = Agreement.from_file(path).apply_policy(Policy())
    assert summary["policy"]["hard"]["radius_km"] == expected.hard.radius_km


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_batch_propose_with_each_shipped_agreement(path: Path, batch, tmp_path: Path) -> None:
    """`coupler batch propose --agreement FILE` proposes under the overlay and the batch stores
    the agreement's text, so approval judges with it; approval then succeeds."""
    hh, cr = batch
    db = ["--db", str(tmp_path / "l.sqlite")]
    run = CliRunner().invoke
    assert run(main, ["period", "open", "2025-H1", "--total", "5000", *db]).exit_code == 0
    r = run(
        main,
        [
            "batch",
            "propose",
            "--households",
            str(hh),
            "--criteria",
            str(cr),
            "--no-pacing",
            "--agreement",
            str(path),
            *db,
        ],
    )
    assert r.exit_code == 0, r.output
    ledger = Ledger.open(tmp_path / "l.sqlite")
    with ledger.read() as conn:
        ctx = BatchContext.load(conn, 1)
    assert [a.text for a in ctx.agreements] == [path.read_text(encoding="utf-8")]
    expected = Agreement.from_file(path).apply_policy(Policy())
    assert ctx.effective_policy == expected
    r = run(main, ["batch", "approve", "--reason", "reviewed", *db])
    assert r.exit_code == 0, r.output


def _dordrecht_instance():
    """Four single persons: H1 lives in azc Dordrecht and works 4 h in Hardinxveld-Giessendam,
    H2 lives in azc Dordrecht and works 24 h in Rotterdam, H3 lives in azc Dordrecht without
    work, H4 works in Hardinxveld-Giessendam but lives in azc Utrecht."""
    from factories import frame

    dordrecht, hardinxveld, rotterdam, utrecht = "GM0505", "GM0523", "GM0599", "GM0344"
    hh = frame(
        [
            {"household_id": "H1", "size": 1, "azc": dordrecht},
            {"household_id": "H2", "size": 1, "azc": dordrecht},
            {"household_id": "H3", "size": 1, "azc": dordrecht},
            {"household_id": "H4", "size": 1, "azc": utrecht},
        ],
        schema.HOUSEHOLD_DTYPES,
    )
    job = {"kind": "work", "contract_signed": True, "payslip_seen": True}
    cr = frame(
        [
            {"household_id": "H1", "municipality": hardinxveld, "hours_per_week": 4.0, **job},
            {"household_id": "H2", "municipality": rotterdam, "hours_per_week": 24.0, **job},
            {"household_id": "H4", "municipality": hardinxveld, "hours_per_week": 4.0, **job},
        ],
        schema.CRITERIA_DTYPES,
    )
    return load_instance(hh, cr)


def test_dordrecht_binds_working_azc_residents_to_their_job_region() -> None:
    """Under the Dordrecht overlay a working resident of azc Dordrecht may only go to the
    labour-market region of the job (Drechtsteden: exactly its seven municipalities, with
    Hardinxveld-Giessendam; Rijnmond for a Rotterdam job); a resident without work and a worker
    from another azc are not bound, and no soft weight changes anywhere."""
    inst = _dordrecht_instance()
    agreement = Agreement.from_file(AGREEMENTS / "dordrecht-azc-work.toml")
    base = build_variant(inst, Policy())
    model = build_variant(inst, Policy(), (agreement,))
    region = inst.municipalities["labour_market_region"].astype(str).to_numpy()
    names = inst.municipalities["name"].astype(str).to_numpy()
    free = ~model.forbidden
    h = inst.household_index
    assert set(names[free[h["H1"]]]) == {
        "Alblasserdam",
        "Dordrecht",
        "Hardinxveld-Giessendam",
        "Hendrik-Ido-Ambacht",
        "Papendrecht",
        "Sliedrecht",
        "Zwijndrecht",
    }
    assert set(region[free[h["H2"]]]) == {region[inst.code_index["GM0599"]]}
    assert free[h["H3"]].all() and free[h["H4"]].all()
    np.testing.assert_array_equal(model.value, base.value)
