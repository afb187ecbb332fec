"""Sweeps: grid parsing, the Pareto front, identical results on the local pool and Dask, and
workers that solve exactly the instance the command read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from coupler.analysis.sweep import Grid, make_tasks, pareto_front, run_sweep
from coupler.cli import main
from coupler.cli.options import load_cases
from coupler.errors import InputError
from coupler.instance import Instance
from coupler.policy import Policy
from coupler.scenario import embedded_scenario

DATA = Path(__file__).parent / "data" / "valid"


def test_grid_is_the_full_product_times_seeds(tmp_path: Path) -> None:
    """Options override the file; the grid is every weight combination times every seed."""
    f = tmp_path / "grid.toml"
    f.write_text("seeds = [3]\n[weights]\nlabour = [0, 1]\nazc = [0.5]\n", encoding="utf-8")
    g = Grid.parse(["labour=0,1,2"], "0,1", f)
    assert g.weights == {"labour": (0.0, 1.0, 2.0), "azc": (0.5,)}
    pts = g.points()
    assert len(pts) == 6 and pts[0] == ({"azc": 0.5, "labour": 0.0}, 0)


@pytest.mark.parametrize(
    ("weights", "seeds", "message"),
    [
        (["labor=1"], None, "unknown weight 'labor'"),
        (["labour"], None, "expected NAME=V1,V2"),
        (["labour=a"], None, "'a' is not a number"),
        (["labour=-1"], None, "must be >= 0"),
        ([], "0,x", "expected whole numbers"),
    ],
)
def test_bad_grids_are_rejected(weights: list[str], seeds: str | None, message: str) -> None:
    """Each malformed grid option raises an InputError naming it."""
    with pytest.raises(InputError, match=message):
        Grid.parse(weights, seeds)


def test_pareto_front_marks_the_non_dominated_settings() -> None:
    """A setting is on the front unless another is at least as good on both objectives and better
    on one; seeds are averaged first."""
    t = pd.DataFrame(
        {
            "w_labour": [0, 0, 1, 1, 2, 2],
            "seed": [0, 1, 0, 1, 0, 1],
            "jobs_kept_share": [0.5, 0.7, 0.9, 0.9, 0.6, 0.6],  # means 0.6, 0.9, 0.6
            "fill_gini_municipality": [0.1, 0.1, 0.3, 0.3, 0.2, 0.2],  # means 0.1, 0.3, 0.2
        }
    )
    f = pareto_front(t).set_index("w_labour")
    assert f["on_front"].to_dict() == {0: True, 1: True, 2: False}


def test_local_pool_and_dask_give_identical_results() -> None:
    """The same 2 x 2 grid (labour weight x seed, 100-person batches) gives the same table on the
    local process pool and on a Dask LocalCluster, times aside."""
    distributed = pytest.importorskip("distributed")
    tasks = make_tasks(
        Grid({"labour": (0.0, 2.0)}, (0, 1)),
        lambda seed: load_cases(None, None, None, persons=100, seed=seed)[0],
        Policy().with_(solver={"time_limit": 30.0}),
    )
    seen: list[int] = []
    local = run_sweep(tasks, workers=2, progress=lambda done, total: seen.append(done))
    assert seen[-1] == 4 and len(local) == 4
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = run_sweep(tasks, scheduler=client)
    cols = [c for c in local.columns if c != "solve_seconds"]
    pd.testing.assert_frame_equal(local[cols], remote[cols], check_dtype=False)
    assert list(local["index"]) == [0, 1, 2, 3]
    # Different weights must actually change something, or the comparison proves nothing.
    assert local.loc[0, "objective"] != local.loc[2, "objective"]


def test_make_tasks_reads_each_seed_once_and_hands_workers_the_instance() -> None:
    """The cases function is called once per seed, in grid order, and every task of a seed
    carries that very instance (a worker reads nothing); a single instance serves every seed."""
    asked: list[int] = []

    def cases(seed: int) -> Instance:
        asked.append(seed)
        return load_cases(None, None, None, persons=60, seed=seed)[0]

    grid = Grid({"labour": (0.0, 1.0, 2.0)}, (5, 3))
    tasks = make_tasks(grid, cases)
    assert asked == [5, 3]
    by_seed = {t.seed: t.instance for t in tasks}
    assert all(t.instance is by_seed[t.seed] for t in tasks)
    assert by_seed[5].checksum() != by_seed[3].checksum()
    one = by_seed[5]
    assert all(t.instance is one for t in make_tasks(grid, one))


def _sweep(out: Path, *args: str) -> Result:
    """``coupler sweep`` over a two-point labour grid on one worker, writing to ``out``."""
    return CliRunner().invoke(
        main,
        ["sweep", "--weight", "labour=0,2", "--time-limit", "30", "--workers", "1"]
        + list(args)
        + ["--out", str(out)],
    )


def _table(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "sweep.csv").drop(columns="solve_seconds")


def _workbook(path: Path, sheet: str, frame: pd.DataFrame) -> Path:
    """A workbook whose first sheet is a note and whose ``sheet`` holds ``frame`` plus an extra
    'opmerking' column."""
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"toelichting": ["zie tabblad " + sheet]}).to_excel(
            writer, sheet_name="Uitleg", index=False
        )
        frame.assign(opmerking="x").to_excel(writer, sheet_name=sheet, index=False)
    return path


def test_sweep_reads_a_named_sheet_and_ignores_columns_like_the_csv(tmp_path: Path) -> None:
    """A sweep over households in an .xlsx, on a named sheet that is not the first and with an
    extra column given to --ignore-columns, gives the same table as the same households as plain
    CSV (and the grid's weights change the result, so the comparison means something)."""
    cases = tmp_path / "cases"
    gen = CliRunner().invoke(
        main, ["generate", "--persons", "150", "--seed", "2", "--out", str(cases)]
    )
    assert gen.exit_code == 0, gen.output
    crit = str(cases / "criteria.csv")
    plain = pd.read_csv(cases / "households.csv", dtype=str, keep_default_na=False)
    book = _workbook(tmp_path / "cases.xlsx", "Huishoudens", plain)

    csv = _sweep(
        tmp_path / "csv", "--households", str(cases / "households.csv"), "--criteria", crit
    )
    assert csv.exit_code == 0, csv.output
    xlsx = _sweep(
        tmp_path / "xlsx",
        "--households",
        str(book),
        "--criteria",
        crit,
        "--sheet",
        "Huishoudens",
        "--ignore-columns",
        "opmerking",
    )
    assert xlsx.exit_code == 0, xlsx.output
    a, b = _table(tmp_path / "csv"), _table(tmp_path / "xlsx")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 2 and a.loc[0, "objective"] != a.loc[1, "objective"]


def test_sweep_workers_use_the_scenario_as_read(tmp_path: Path) -> None:
    """Generated batches on a scenario whose municipalities are an .xlsx (named sheet, extra
    column ignored) sweep to the same table as on the same scenario as CSV: the workers solve the
    instance the command read instead of reading the scenario again without the options."""
    source = embedded_scenario()
    as_csv, as_xlsx = tmp_path / "csv-scenario", tmp_path / "xlsx-scenario"
    as_csv.mkdir()
    as_xlsx.mkdir()
    for name in ("municipalities.csv", "demand.csv"):
        shutil.copy(source / name, as_csv / name)
    shutil.copy(source / "demand.csv", as_xlsx / "demand.csv")
    municipalities = pd.read_csv(source / "municipalities.csv", dtype=str, keep_default_na=False)
    _workbook(as_xlsx / "municipalities.xlsx", "Gemeenten", municipalities)

    csv = _sweep(tmp_path / "csv", "--scenario", str(as_csv), "--persons", "120")
    assert csv.exit_code == 0, csv.output
    xlsx = _sweep(
        tmp_path / "xlsx",
        "--scenario",
        str(as_xlsx),
        "--persons",
        "120",
        "--sheet",
        "Gemeenten",
        "--ignore-columns",
        "opmerking",
    )
    assert xlsx.exit_code == 0, xlsx.output
    pd.testing.assert_frame_equal(_table(tmp_path / "csv"), _table(tmp_path / "xlsx"))


def test_sweep_with_a_bad_sheet_fails_in_one_line(tmp_path: Path) -> None:
    """A sheet name the workbook does not have: exit 2, one error line naming the file and the
    sheet (no traceback, no personal value), and no output folder."""
    plain = pd.read_csv(DATA / "households.csv", dtype=str, keep_default_na=False)
    book = _workbook(tmp_path / "cases.xlsx", "Huishoudens", plain)
    out = tmp_path / "out"
    r = _sweep(out, "--households", str(book), "--sheet", "Nope", "--ignore-columns", "opmerking")
    assert r.exit_code == 2, r.output
    errors = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {book}: has no sheet 'Nope'; its sheets: 'Uitleg', 'Huishoudens'"], (
        r.output
    )
    assert "Traceback" not in r.output and "H001" not in r.output
    assert not out.exists()
