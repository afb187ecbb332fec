"""``coupler compare``, ``sweep`` and ``report``: analysis of policies and agreements."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import click
import pandas as pd

from coupler.errors import InputError, Problem
from coupler.policy import SolveParams
from coupler.rundir import check_out, write_atomically, write_file

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_DIR = click.Path(exists=True, file_okay=False, path_type=Path)


def _say(start: float):  # type: ignore[no-untyped-def]
    return lambda msg: click.echo(f"[{time.perf_counter() - start:6.1f}s] {msg}", err=True)


def _cases_options(f):  # type: ignore[no-untyped-def]
    for opt in reversed(
        [
            click.option(
                "--scenario", type=_DIR, help="Scenario folder [default: the embedded nl-2024]."
            ),
            click.option(
                "--households", type=_FILE, help="Households file [default: a generated batch]."
            ),
            click.option("--criteria", type=_FILE, help="Hard criteria file; needs --households."),
            click.option(
                "--persons",
                type=int,
                default=4700,
                show_default=True,
                help="Persons in the generated batch when no --households is given.",
            ),
            click.option(
                "--time-limit",
                type=float,
                default=None,
                help="Seconds per solve [default: the policy's].",
            ),
            click.option(
                "--gap",
                type=float,
                default=None,
                help="Relative gap target [default: the policy's].",
            ),
        ]
    ):
        f = opt(f)
    return f


def _instance(
    scenario: Path | None,
    households: Path | None,
    criteria: Path | None,
    persons: int,
    seed: int,
    say: Any,
) -> Any:
    from coupler.generate import generate_cases
    from coupler.scenario import load_instance, load_scenario

    if criteria is not None and households is None:
        raise InputError(Problem("--criteria", "needs --households"))
    if persons < 1:
        raise InputError(Problem("--persons", f"must be at least 1; got {persons}"))
    if households is None:
        municipalities, _ = load_scenario(scenario)
        say(f"no --households; generating a batch of {persons:,} persons (seed {seed})")
        hh, cr = generate_cases(municipalities, persons=persons, seed=seed)
        return load_instance(hh, cr, scenario=scenario)
    return load_instance(households, criteria, scenario=scenario)


def _solve_params(
    base: SolveParams, time_limit: float | None, gap: float | None
) -> SolveParams | None:
    """``base`` with the command line's --time-limit and --gap; None when neither is given."""
    if time_limit is not None and not time_limit > 0:
        raise InputError(Problem("--time-limit", f"must be > 0; got {time_limit}"))
    if gap is not None and not 0 <= gap < 1:
        raise InputError(Problem("--gap", f"must be in [0, 1); got {gap}"))
    if time_limit is None and gap is None:
        return None
    return dataclasses.replace(
        base,
        time_limit=base.time_limit if time_limit is None else time_limit,
        gap=base.gap if gap is None else gap,
    )


def _fmt(x: Any, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if float(x).is_integer():
        return f"{x:+,.0f}" if sign else f"{x:,.0f}"
    return f"{x:+,.3f}" if sign else f"{x:,.3f}"


@click.command()
@click.argument("variants", nargs=-1, required=True)
@_cases_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated batch.")
@click.option(
    "--reach-km",
    type=float,
    default=None,
    help="A job counts as kept within this distance [default: the first variant's radius].",
)
@click.option(
    "--floor",
    "floor_text",
    default=None,
    help="Fairness floor per group, e.g. 'gender:score>=0.95' (mean soft score >= 95 %% of the "
    "overall mean) or 'household_type:jobs_kept>=0.8'.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("comparison"),
    show_default=True,
    help="Output folder: kpis.csv, kpis.json, impact.csv, groups.csv, report.html.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace --out even when it holds files coupler did not write.",
)
def compare(
    variants: tuple[str, ...],
    scenario: Path | None,
    households: Path | None,
    criteria: Path | None,
    persons: int,
    time_limit: float | None,
    gap: float | None,
    seed: int,
    reach_km: float | None,
    floor_text: str | None,
    out: Path,
    force: bool,
) -> None:
    """Compare policies and coupling agreements on the same cases.

    VARIANTS are policy or agreement TOML files (or 'default'). An agreement applies on top of the
    policy given before it. Prints the KPI table with deltas against the first variant and writes
    it (CSV + JSON), the per-municipality impact and a self-contained HTML report.

    \b
    Example:
      coupler compare scenarios/nl-2024/policies/base.toml \\
          scenarios/nl-2024/agreements/eindhoven-jobs.toml \\
          scenarios/nl-2024/agreements/utrecht-pool.toml
    """
    from coupler.analysis.compare import Floor, load_variants
    from coupler.analysis.compare import compare as run_compare
    from coupler.analysis.report import render

    inputs = (scenario, households, criteria, *(v for v in variants if v != "default"))
    check_out(out, inputs, force=force)
    say = _say(time.perf_counter())
    floor = Floor.parse(floor_text) if floor_text else None
    vs = load_variants(variants)
    params = _solve_params(vs[0].policy.solver, time_limit, gap)
    inst = _instance(scenario, households, criteria, persons, seed, say)
    for v in vs:
        for a in v.agreements:
            a.check(inst.municipalities)
    if floor is not None and floor.column not in inst.households:
        raise InputError(Problem("--floor", f"the households have no '{floor.column}' column"))
    result = run_compare(inst, vs, reach_km=reach_km, floor=floor, params=params, say=say)
    table = result.table()
    data = result.to_json()
    html = render(data)
    paths = write_atomically(
        out,
        {
            "kpis.csv": table,
            "kpis.json": data,
            "impact.csv": result.impact(),
            "groups.csv": result.group_table(),
            "report.html": html,
        },
        inputs=inputs,
        force=force,
    )
    names = result.names
    width = max(len(lbl) for lbl in table["label"]) + 2
    click.echo(
        "KPI".ljust(width)
        + "".join(n[:22].rjust(24) for n in names)
        + "".join(f"delta {n}"[:22].rjust(24) for n in names[1:])
    )
    for _, row in table.iterrows():
        line = str(row["label"]).ljust(width) + "".join(_fmt(row[n]).rjust(24) for n in names)
        line += "".join(_fmt(row[f"delta {n}"], sign=True).rjust(24) for n in names[1:])
        click.echo(line)
    impact = result.impact()
    for n in names[1:]:
        d = impact[impact[f"delta {n}"] != 0]
        gain = d.nlargest(3, f"delta {n}")
        loss = d.nsmallest(3, f"delta {n}")
        click.echo(
            f"{n}: takes more "
            + (
                ", ".join(
                    f"{r['name']} {r[f'delta {n}']:+d}"
                    for _, r in gain.iterrows()
                    if r[f"delta {n}"] > 0
                )
                or "none"
            )
            + "; takes fewer "
            + (
                ", ".join(
                    f"{r['name']} {r[f'delta {n}']:+d}"
                    for _, r in loss.iterrows()
                    if r[f"delta {n}"] < 0
                )
                or "none"
            )
        )
    for r in result.runs:
        if r.floor is not None:
            f = r.floor
            click.echo(
                f"{r.variant.name}: floor {f.floor.label()} "
                f"{'reached' if f.reached else 'NOT reached'} "
                f"after {f.rounds} round(s); cost {f.cost:,.3f} "
                f"({f.cost_share:.2%} of the objective)"
            )
    for p in paths:
        click.echo(f"wrote {p}")


@click.command()
@click.option(
    "--weight",
    "weights",
    multiple=True,
    help="A weight and its values, e.g. labour=0,1,2 (repeatable).",
)
@click.option(
    "--seeds",
    default=None,
    help="Seeds, e.g. 0,1 [default: 0]. A seed draws a new generated batch.",
)
@click.option(
    "--grid", "grid_file", type=_FILE, help="Grid TOML: seeds = [..] and [weights] name = [..]."
)
@click.option("--policy", type=_FILE, help="Base policy TOML [default: the default policy].")
@_cases_options
@click.option(
    "--scheduler",
    default=None,
    help="Dask scheduler address tcp://HOST:PORT [default: local pool].",
)
@click.option(
    "--workers", type=int, default=None, help="Local worker processes [default: up to 2]."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("sweep"),
    show_default=True,
    help="Output folder: sweep.csv, front.csv, sweep.json, report.html.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace --out even when it holds files coupler did not write.",
)
def sweep(
    weights: tuple[str, ...],
    seeds: str | None,
    grid_file: Path | None,
    policy: Path | None,
    scenario: Path | None,
    households: Path | None,
    criteria: Path | None,
    persons: int,
    time_limit: float | None,
    gap: float | None,
    scheduler: str | None,
    workers: int | None,
    out: Path,
    force: bool,
) -> None:
    """Run a grid of policy weights x seeds and report the Pareto front.

    Runs on a local process pool, or on a Dask distributed cluster with --scheduler. The front is
    jobs within reach (higher is better) against the Gini of the municipalities' fill shares.

    \b
    Example:
      coupler sweep --weight labour=0,1,2 --weight azc=0,0.5 --seeds 0,1 --persons 1000
    """
    from coupler.analysis.report import render, sweep_json
    from coupler.analysis.sweep import Grid, make_tasks, pareto_front, run_sweep
    from coupler.io import load_criteria, load_households
    from coupler.policy import Policy
    from coupler.scenario import load_scenario

    inputs = (grid_file, policy, scenario, households, criteria)
    check_out(out, inputs, force=force)
    grid = Grid.parse(weights, seeds, grid_file)
    base = Policy.from_file(policy) if policy else Policy()
    params = _solve_params(base.solver, time_limit, gap)
    if params is not None:
        base = dataclasses.replace(base, solver=params)
    if workers is not None and workers < 1:
        raise InputError(Problem("--workers", f"must be at least 1; got {workers}"))
    if criteria is not None and households is None:
        raise InputError(Problem("--criteria", "needs --households"))
    hh = cr = None
    if households is not None:
        municipalities, _ = load_scenario(scenario)
        hh = load_households(households, municipalities)
        cr = load_criteria(criteria, hh, municipalities) if criteria is not None else None
    tasks = make_tasks(
        grid,
        base,
        households=hh,
        criteria=cr,
        persons=persons,
        scenario=scenario,
    )
    where = f"Dask at {scheduler}" if scheduler else "a local process pool"
    click.echo(f"sweep: {len(tasks)} runs on {where}", err=True)
    with click.progressbar(length=len(tasks), label="sweep", file=sys.stderr) as bar:
        last = [0]

        def progress(done: int, total: int) -> None:
            bar.update(done - last[0])
            last[0] = done

        table = run_sweep(tasks, scheduler=scheduler, workers=workers, progress=progress)
    front = pareto_front(table)
    data = sweep_json(table, front)
    paths = write_atomically(
        out,
        {"sweep.csv": table, "front.csv": front, "sweep.json": data, "report.html": render(data)},
        inputs=inputs,
        force=force,
    )
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        click.echo(front.to_string(index=False))
    for p in paths:
        click.echo(f"wrote {p}")


@click.command()
@click.argument("data", type=_FILE)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HTML file to write [default: report.html next to DATA].",
)
@click.option("--title", default=None, help="Report title.")
def report(data: Path, out: Path | None, title: str | None) -> None:
    """Write one self-contained HTML report from kpis.json (compare) or sweep.json (sweep).

    The file needs no network to view: styles, plots (SVG) and the map are inline.
    """
    from coupler.analysis.report import render

    try:
        raw = json.loads(data.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(Problem(data.name, f"is not valid JSON: {exc}")) from None
    if not isinstance(raw, dict) or raw.get("kind") not in ("comparison", "sweep"):
        raise InputError(
            Problem(data.name, "is not a kpis.json or sweep.json written by coupler compare/sweep")
        )
    try:
        html = render(raw, title=title)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            Problem(data.name, f"is incomplete or from another version ({exc})")
        ) from None
    target = out or data.with_name("report.html")
    click.echo(f"wrote {write_file(target, html, inputs=(data,))}")


COMMANDS = [compare, sweep, report]
