"""Sweeps: grid parsing, the Pareto front, and identical results on the local pool and Dask."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from coupler.analysis.sweep import Grid, make_tasks, pareto_front, run_sweep
from coupler.errors import InputError
from coupler.policy import Policy


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
        Policy().with_(solver={"time_limit": 30.0}),
        persons=100,
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
