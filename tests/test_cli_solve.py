"""``coupler solve`` and ``coupler explain`` end to end through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from coupler.cli import main

DATA = Path(__file__).parent / "data"
OUTPUTS = (
    "plan.csv",
    "plan_criteria.csv",
    "municipalities.csv",
    "provinces.csv",
    "regions.csv",
    "conflicts.csv",
    "broken.csv",
    "summary.json",
    "policy.toml",
    "inputs/municipalities.parquet",
    "inputs/households.parquet",
    "inputs/criteria.parquet",
    "inputs/assignment.parquet",
)


def _run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The no-arguments path in reduced form: national scenario, generated 800 persons, seed 0."""
    out = tmp_path_factory.mktemp("demo") / "out"
    result = _run("solve", "--persons", "800", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


def test_demo_writes_every_output(demo):
    """Without --households, solve writes every table, the summary, the policy and the inputs."""
    for name in OUTPUTS:
        assert (demo / name).is_file(), name
    plan = pd.read_csv(demo / "plan.csv")
    summary = json.loads((demo / "summary.json").read_text())
    assert len(plan) == summary["households"] == summary["counts"]["households"]
    assert plan["persons"].sum() == 800
    assert plan["coupled"].all()
    munis = pd.read_csv(demo / "municipalities.csv")
    assert len(munis) == 342
    assert (munis["assigned_persons"] <= munis["capacity"]).all()
    assert munis["assigned_persons"].sum() == 800
    assert pd.read_csv(demo / "provinces.csv")["assigned_persons"].sum() == 800
    assert len(pd.read_csv(demo / "regions.csv")) == 35
    assert summary["generated"] == {"persons": 800, "seed": 0}


def test_demo_progress_and_summary_output(tmp_path):
    """Progress lines go to stderr; the summary and the output folder to stdout."""
    out = str(tmp_path / "out")
    result = CliRunner().invoke(main, ["solve", "--persons", "300", "--out", out])
    assert result.exit_code == 0
    assert "no --households; generating a batch of 300 persons" in result.stderr
    for phase in ("load:", "build:", "solve:", "write:"):
        assert phase in result.stderr
    assert "status" in result.stdout and "gap" in result.stdout
    assert "wrote" in result.stdout and "coupler explain" in result.stdout


def test_summary_json_has_required_keys(demo):
    """summary.json records status, objective, bound, gap, checksums, versions, seed and policy."""
    summary = json.loads((demo / "summary.json").read_text())
    for key in ("status", "objective", "bound", "gap", "checksums", "versions", "seed", "policy"):
        assert key in summary, key
    assert summary["status"] in ("optimal", "feasible")
    assert summary["seed"] == 0
    for pkg in ("python", "coupler", "numpy", "pandas", "highspy", "ortools", "pulp"):
        assert summary["versions"][pkg]
    assert set(summary["checksums"]) >= {"municipalities", "households", "criteria"}
    assert set(summary["phases"]) == {"load", "build", "solve"}
    assert summary["policy"]["hard"]["radius_km"] == 50.0


def test_same_seed_same_plan_bytes(demo, tmp_path):
    """Determinism: the same seed gives byte-identical plan.csv and municipalities.csv, however
    busy the machine: work limits, not the clock, stopped every step of both runs (their
    summaries report no ``time_limit_hit``)."""
    out = tmp_path / "again"
    assert _run("solve", "--persons", "800", "--out", str(out)).exit_code == 0
    for name in ("plan.csv", "municipalities.csv", "broken.csv"):
        assert (out / name).read_bytes() == (demo / name).read_bytes(), name
    for run in (demo, out):
        assert "time_limit_hit" not in json.loads((run / "summary.json").read_text())


def test_malformed_households_writes_nothing(tmp_path):
    """A malformed households file: exit != 0, file/row/column in the message, no out dir."""
    out = tmp_path / "never"
    bad = DATA / "malformed" / "households_three_errors.csv"
    result = CliRunner().invoke(main, ["solve", "--households", str(bad), "--out", str(out)])
    assert result.exit_code != 0
    assert "households_three_errors.csv, row 2, column 'size'" in result.stderr
    assert "row 3, column 'azc'" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()
    assert not any(tmp_path.iterdir())  # no staging folder left either


def test_error_leaves_existing_out_dir_unchanged(tmp_path):
    """A user error leaves an existing output folder exactly as it was."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.csv").write_text("previous plan\n")
    bad = DATA / "malformed" / "households_size_zero.csv"
    result = CliRunner().invoke(main, ["solve", "--households", str(bad), "--out", str(out)])
    assert result.exit_code != 0
    assert sorted(p.name for p in out.iterdir()) == ["plan.csv"]
    assert (out / "plan.csv").read_text() == "previous plan\n"


def test_policy_and_input_problems_reported_together(tmp_path):
    """A bad policy and a bad households file are reported in one message."""
    policy = tmp_path / "policy.toml"
    policy.write_text("[hard]\nradius_km = -5\n")
    bad = DATA / "malformed" / "households_three_errors.csv"
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["solve", "--households", str(bad), "--policy", str(policy), "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "policy [hard] radius_km must be > 0" in result.stderr
    assert "households_three_errors.csv, row 2" in result.stderr
    assert not out.exists()


def test_criteria_without_households_is_an_error(tmp_path):
    """--criteria without --households is a usage error and writes nothing."""
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["solve", "--criteria", str(DATA / "valid" / "criteria.csv"), "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "--criteria needs --households" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--persons", "0"], "--persons"),
        (["--gap", "1.5"], "--gap"),
        (["--time-limit", "-1"], "--time-limit"),
        (["--backend", "gurobi"], "--backend"),
    ],
)
def test_bad_options(tmp_path, args, message):
    """Out-of-range options are rejected by name before anything runs."""
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["solve", *args, "--out", str(out)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert not out.exists()


def test_out_below_a_file_is_rejected_before_solving(tmp_path):
    """--out below an existing file is a usage error raised before any work."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["solve", "--out", str(blocker / "out")])
    assert result.exit_code == 2
    assert "is a file, not a folder" in result.stderr
    assert "load:" not in result.stderr


def test_explain_damaged_inputs(demo, tmp_path):
    """A damaged saved input gives a clear error naming the file, not a traceback."""
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(demo, copy)
    (copy / "inputs" / "households.parquet").write_bytes(b"junk")
    result = CliRunner().invoke(main, ["explain", "H000001", "--out", str(copy)])
    assert result.exit_code == 2
    assert "households.parquet: cannot be read" in result.stderr


def test_households_and_criteria_files(tmp_path):
    """A user's households and criteria files solve; the summary names their sources."""
    out = tmp_path / "out"
    result = _run(
        "solve",
        "--households", str(DATA / "valid" / "households.csv"),
        "--criteria", str(DATA / "valid" / "criteria.csv"),
        "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sources"]["households"].endswith("households.csv")
    assert "generated" not in summary
    plan = pd.read_csv(out / "plan.csv")
    assert len(plan) == len(pd.read_csv(DATA / "valid" / "households.csv"))


def test_xlsx_format(tmp_path):
    """--format xlsx writes the tables as .xlsx workbooks that read back."""
    out = tmp_path / "out"
    assert _run("solve", "--persons", "300", "--format", "xlsx", "--out", str(out)).exit_code == 0
    for name in ("plan", "plan_criteria", "municipalities", "provinces", "regions", "broken"):
        assert (out / f"{name}.xlsx").is_file(), name
        assert not (out / f"{name}.csv").exists()
    plan = pd.read_excel(out / "plan.xlsx")
    assert plan["persons"].sum() == 300
    assert json.loads((out / "summary.json").read_text())["format"] == "xlsx"


def test_solver_options_land_in_the_saved_policy(tmp_path):
    """--backend/--time-limit/--gap/--seed override the policy and are recorded."""
    out = tmp_path / "out"
    args = ["--persons", "200", "--seed", "3", "--time-limit", "30", "--gap", "0.01"]
    assert _run("solve", *args, "--out", str(out)).exit_code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["generated"]["seed"] == 3
    assert summary["policy"]["solver"]["time_limit"] == 30.0
    assert summary["policy"]["solver"]["gap"] == 0.01
    assert "time_limit = 30.0" in (out / "policy.toml").read_text()


def test_explain_from_output_folder(demo):
    """coupler explain rebuilds the run and explains a household, with --why-not."""
    plan = pd.read_csv(demo / "plan.csv")
    row = plan.iloc[0]
    result = _run("explain", row["household_id"], "--out", str(demo), "--why-not", "GM0363")
    assert result.exit_code == 0, result.output
    assert f"coupled to {row['municipality']}" in result.stdout
    assert "why not GM0363 Amsterdam?" in result.stdout
    assert "best alternative" in result.stdout
    as_json = json.loads(_run("explain", row["household_id"], "--out", str(demo), "--json").stdout)
    assert as_json["municipality"]["code"] == row["municipality"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["H4"], "did you mean H000004"),
        (["H000004", "--why-not", "Amsterdm"], "did you mean Amsterdam (GM0363)"),
        (["H000004", "--why-not", "GM9999"], "unknown municipality 'GM9999'"),
    ],
)
def test_explain_unknown_ids(demo, args, message):
    """Unknown household or municipality: exit 2, a suggestion, no traceback."""
    result = CliRunner().invoke(main, ["explain", *args, "--out", str(demo)])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_explain_without_a_run(tmp_path):
    """explain on a folder without a solve says so and exits 2."""
    result = CliRunner().invoke(main, ["explain", "H000001", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a coupler output folder" in result.stderr
