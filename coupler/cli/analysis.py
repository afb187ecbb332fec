"""``coupler compare``, ``sweep`` and ``report``: analysis of policies and agreements."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pandas as pd

from coupler.cli.options import (
    Clock,
    cases_options,
    load_cases,
    out_options,
    policy_option,
    read_options,
    require_households,
    seed_option,
    solver_changes,
    solver_options,
)
from coupler.errors import InputError, Problem
from coupler.rundir import check_out, write_atomically, write_file

if TYPE_CHECKING:
    from coupler.instance import Instance

#: An input file that must exist (grid and report data are read here, not by coupler.io).
_EXISTING = click.Path(exists=True, dir_okay=False, path_type=Path)


def _fmt(x: Any, sign: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if float(x).is_integer():
        return f"{x:+,.0f}" if sign else f"{x:,.0f}"
    return f"{x:+,.3f}" if sign else f"{x:,.3f}"


@click.command()
@click.argument("variants", nargs=-1, required=True)
@cases_options
@read_options
@solver_options
@seed_option("Seed of the generated batch.", default=0)
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
    help="Fairness floor per group, e.g. 'gender:score>=0.95' (mean soft score >= 95 % of the "
    "overall mean) or 'household_type:jobs_kept>=0.8'.",
)
@out_options(
    "Output folder: kpis.csv, kpis.json, impact.csv, groups.csv, report.html.", "comparison"
)
def compare(
    variants: tuple[str, ...],
    scenario: Path | None,
    households: Path | None,
    criteria: Path | None,
    persons: int,
    sheet: str | None,
    ignore_columns: tuple[str, ...],
    time_limit: float | None,
    bound_rounds: int | None,
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

    require_households(households, criteria)
    inputs = (scenario, households, criteria, *(v for v in variants if v != "default"))
    check_out(out, inputs, force=force)
    say = Clock().say
    floor = Floor.parse(floor_text) if floor_text else None
    vs = load_variants(variants)
    changes = solver_changes(time_limit=time_limit, gap=gap, bound_rounds=bound_rounds)
    params = dataclasses.replace(vs[0].policy.solver, **changes) if changes else None
    inst, _ = load_cases(
        scenario,
        households,
        criteria,
        persons=persons,
        seed=seed,
        say=say,
        sheet=sheet,
        ignore_columns=ignore_columns,
    )
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
    "--grid",
    "grid_file",
    type=_EXISTING,
    help="Grid TOML: seeds = [..] and [weights] name = [..].",
)
@policy_option("Base policy TOML [default: the default policy].")
@cases_options
@read_options
@solver_options
@click.option(
    "--scheduler",
    default=None,
    help="Dask scheduler address tcp://HOST:PORT [default: local pool].",
)
@click.option(
    "--workers", type=int, default=None, help="Local worker processes [default: up to 2]."
)
@out_options("Output folder: sweep.csv, front.csv, sweep.json, report.html.", "sweep")
def sweep(
    weights: tuple[str, ...],
    seeds: str | None,
    grid_file: Path | None,
    policy_file: Path | None,
    scenario: Path | None,
    households: Path | None,
    criteria: Path | None,
    persons: int,
    sheet: str | None,
    ignore_columns: tuple[str, ...],
    time_limit: float | None,
    bound_rounds: int | None,
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
    from coupler.policy import Policy

    require_households(households, criteria)
    inputs = (grid_file, policy_file, scenario, households, criteria)
    check_out(out, inputs, force=force)
    grid = Grid.parse(weights, seeds, grid_file)
    base = Policy.from_file(policy_file) if policy_file else Policy()
    changes = solver_changes(time_limit=time_limit, gap=gap, bound_rounds=bound_rounds)
    if changes:
        base = dataclasses.replace(base, solver=dataclasses.replace(base.solver, **changes))
    if workers is not None and workers < 1:
        raise InputError(Problem("--workers", f"must be at least 1; got {workers}"))
    say = Clock().say

    def cases(seed: int) -> Instance:
        # Read (or, without --households, generated for each seed) here, once: the workers get
        # the validated instance and read no file themselves.
        inst, _ = load_cases(
            scenario,
            households,
            criteria,
            persons=persons,
            seed=seed,
            say=say,
            sheet=sheet,
            ignore_columns=ignore_columns,
        )
        return inst

    tasks = make_tasks(grid, cases(grid.seeds[0]) if households is not None else cases, base)
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
@click.argument("data", type=_EXISTING)
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
