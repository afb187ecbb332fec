"""Sweeps: a grid of policy weights x seeds, on a local process pool or a Dask cluster.

Every grid point is a self-contained, picklable :class:`SweepTask` that carries the validated
:class:`~coupler.instance.Instance` it works on: the cases are read (or generated) once by the
caller, so a worker never reads a file and solves exactly the instance the caller loaded, however
it was read (``--sheet``, ``--ignore-columns``). :func:`run_task` builds the model, solves and
returns a flat row of KPIs. The rows do not depend on where a task ran, so a sweep on
``--scheduler tcp://host:port`` gives the same table as the local pool (times aside).

A *seed* draws a new generated batch (when no households are given) and seeds the solver.
:func:`pareto_front` marks the weight settings that no other setting beats on every objective,
by default jobs kept (higher is better) against the Gini of the municipalities' fill shares (lower
is better), both averaged over seeds.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import multiprocessing
import os
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from coupler.errors import InputError, Problem
from coupler.policy import Policy, Weights

if TYPE_CHECKING:
    from coupler.instance import Instance

#: KPI columns a sweep keeps per point.
SWEEP_KPIS: tuple[str, ...] = (
    "jobs",
    "jobs_kept",
    "jobs_kept_share",
    "broken_persons",
    "uncoupled_persons",
    "objective",
    "soft_score",
    "mean_score",
    "fill_gini_municipality",
    "fill_below_90_municipality",
    "fill_min_province",
    "gap",
)
WEIGHT_NAMES = tuple(f.name for f in fields(Weights))
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Grid:
    """Weight values to combine (a full product) and seeds."""

    weights: dict[str, tuple[float, ...]] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)

    def points(self) -> list[tuple[dict[str, float], int]]:
        names = sorted(self.weights)
        combos = list(itertools.product(*(self.weights[n] for n in names))) or [()]
        return [(dict(zip(names, c, strict=True)), s) for c in combos for s in self.seeds]

    @classmethod
    def parse(
        cls, weights: Sequence[str] = (), seeds: str | None = None, file: str | Path | None = None
    ) -> Grid:
        """From ``--weight NAME=V1,V2`` options, ``--seeds 0,1`` and/or a grid TOML file.

        The file holds ``seeds = [0, 1]`` and a ``[weights]`` table of lists; options override it.
        """
        problems: list[Problem] = []
        grid: dict[str, tuple[float, ...]] = {}
        seed_list: tuple[int, ...] = (0,)
        if file is not None:
            path = Path(file)
            try:
                raw = tomllib.loads(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise InputError(Problem(str(path), "file not found")) from None
            except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise InputError(Problem(path.name, f"is not valid TOML: {exc}")) from None
            for key in raw:
                if key not in ("weights", "seeds"):
                    problems.append(
                        Problem(path.name, f"unknown key '{key}'; known: weights, seeds")
                    )
            w = raw.get("weights", {})
            if not isinstance(w, dict):
                problems.append(Problem(path.name, "[weights] must be a table of lists"))
                w = {}
            for name, values in w.items():
                vals = values if isinstance(values, list) else [values]
                grid[name] = _floats(vals, f"[weights] {name}", path.name, problems)
            if "seeds" in raw:
                s = raw["seeds"]
                if (
                    not isinstance(s, list)
                    or not s
                    or not all(isinstance(x, int) and x >= 0 for x in s)
                ):
                    problems.append(
                        Problem(path.name, f"seeds must be a list of whole numbers >= 0; got {s!r}")
                    )
                else:
                    seed_list = tuple(s)
        for opt in weights:
            name, sep, values = opt.partition("=")
            if not sep:
                problems.append(Problem("--weight", f"expected NAME=V1,V2,...; got {opt!r}"))
                continue
            grid[name.strip()] = _floats(
                values.split(","), f"--weight {name.strip()}", "--weight", problems
            )
        for name in grid:
            if name not in WEIGHT_NAMES:
                problems.append(
                    Problem(
                        "--weight", f"unknown weight '{name}'; known: {', '.join(WEIGHT_NAMES)}"
                    )
                )
        if seeds is not None:
            try:
                seed_list = tuple(int(s) for s in seeds.split(","))
                if any(s < 0 for s in seed_list):
                    raise ValueError
            except ValueError:
                problems.append(
                    Problem("--seeds", f"expected whole numbers >= 0 like 0,1,2; got {seeds!r}")
                )
        if problems:
            raise InputError(problems)
        return cls(grid, seed_list)


def _floats(
    values: Sequence[Any], where: str, source: str, problems: list[Problem]
) -> tuple[float, ...]:
    out = []
    for v in values:
        try:
            x = float(v)
        except (TypeError, ValueError):
            problems.append(Problem(source, f"{where}: {v!r} is not a number"))
            continue
        if not (x >= 0 and math.isfinite(x)):
            problems.append(Problem(source, f"{where}: weights must be >= 0; got {x}"))
        out.append(x)
    return tuple(out)


@dataclass(frozen=True, eq=False)
class SweepTask:
    """One grid point, with everything a worker needs (it pickles): the instance to solve, the
    base policy as a dict, the weights that replace the policy's and the solver seed."""

    index: int
    weights: dict[str, float]
    seed: int
    policy: dict[str, Any]
    instance: Instance


def make_tasks(
    grid: Grid,
    cases: Instance | Callable[[int], Instance],
    policy: Policy | None = None,
) -> list[SweepTask]:
    """One task per (weights, seed) of ``grid`` on top of ``policy`` (solver settings included;
    each task's seed replaces the policy's solver seed).

    ``cases`` is the instance every task solves, or a function that gives the instance of a seed
    (e.g. a generated batch); it is called once per seed, in the grid's order, here in the
    caller's process, so its errors come before any work starts.
    """
    base = (policy or Policy()).to_dict()
    instances: dict[int, Instance] = {}
    tasks = []
    for i, (w, s) in enumerate(grid.points()):
        if s not in instances:
            instances[s] = cases(s) if callable(cases) else cases
        tasks.append(SweepTask(i, w, s, base, instances[s]))
    return tasks


def run_task(task: SweepTask) -> dict[str, Any]:
    """Solve one grid point and return its row (runs in a worker process)."""
    from coupler.analysis.kpi import compute_kpis
    from coupler.engine import solve
    from coupler.model import build_model

    raw = {k: dict(v) for k, v in task.policy.items()}
    raw["weights"].update(task.weights)
    policy = Policy.from_dict(raw)
    model = build_model(task.instance, policy)
    result = solve(model, dataclasses.replace(policy.solver, seed=task.seed))
    k = compute_kpis(result, model).values
    row: dict[str, Any] = {"index": task.index, "seed": task.seed}
    row |= {f"w_{n}": v for n, v in task.weights.items()}
    row |= {n: k.get(n, math.nan) for n in SWEEP_KPIS}
    row["status"] = str(result.status)
    row["solve_seconds"] = float(sum(result.seconds.values()))
    return row


def run_sweep(
    tasks: Sequence[SweepTask],
    *,
    scheduler: Any = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Run ``tasks`` on a local process pool, or on Dask when ``scheduler`` is given.

    ``scheduler`` is an address (``tcp://host:port``) or a ``distributed.Client``. Rows come back
    in task order whatever order the workers finish in.
    """
    progress = progress or (lambda done, total: None)
    rows: list[dict[str, Any]] = []
    total = len(tasks)
    if scheduler is not None:
        rows = _run_dask(tasks, scheduler, progress)
    else:
        n = workers or max(1, min(2, os.cpu_count() or 1, total))
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
            futures = [pool.submit(run_task, t) for t in tasks]
            for f in as_completed(futures):
                rows.append(f.result())
                progress(len(rows), total)
    return pd.DataFrame(rows).sort_values("index").reset_index(drop=True)


def _run_dask(
    tasks: Sequence[SweepTask], scheduler: Any, progress: Progress
) -> list[dict[str, Any]]:
    from distributed import Client
    from distributed import as_completed as dask_completed

    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, timeout="10s") if own else scheduler
    except (OSError, TimeoutError) as exc:
        raise InputError(
            Problem("--scheduler", f"cannot reach the Dask scheduler {scheduler}: {exc}")
        ) from None
    try:
        futures = client.map(run_task, list(tasks), pure=False)
        rows = []
        for f in dask_completed(futures):
            rows.append(f.result())
            progress(len(rows), len(tasks))
        return rows
    finally:
        if own:
            client.close()


def pareto_front(
    table: pd.DataFrame,
    maximize: Sequence[str] = ("jobs_kept_share",),
    minimize: Sequence[str] = ("fill_gini_municipality",),
) -> pd.DataFrame:
    """Weight settings (averaged over seeds) with ``on_front`` marking the non-dominated ones."""
    wcols = [c for c in table.columns if c.startswith("w_")]
    metrics = [*maximize, *minimize]
    agg = (
        table.groupby(wcols, sort=True)[metrics].mean().reset_index()
        if wcols
        else table[metrics].mean().to_frame().T
    )
    score = np.column_stack(
        [agg[c].to_numpy(float) for c in maximize] + [-agg[c].to_numpy(float) for c in minimize]
    )
    score = np.nan_to_num(score, nan=-np.inf)
    ge = (score[:, None, :] >= score[None, :, :]).all(axis=2)
    gt = (score[:, None, :] > score[None, :, :]).any(axis=2)
    dominated = (ge & gt).any(axis=0)
    agg["on_front"] = ~dominated
    return agg


__all__ = ["SWEEP_KPIS", "Grid", "SweepTask", "make_tasks", "pareto_front", "run_sweep", "run_task"]
