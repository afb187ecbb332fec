"""``python -m benchmarks``: run tiers, or regenerate the table and plot (see README.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from benchmarks.report import README, render
from benchmarks.runner import BASELINES, RESULTS, run, worker_main
from benchmarks.workloads import WORKLOADS, get_workload


def _ints(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"must be comma-separated whole numbers; got {text!r}") from None


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--tier",
    "tiers",
    default="monthly",
    show_default=True,
    help=f"Comma-separated tiers: {', '.join(WORKLOADS)}.",
)
@click.option("--seeds", default="0,1", show_default=True, help="Comma-separated seeds.")
@click.option(
    "--baselines",
    default="pulp-cbc,highs-mip",
    show_default=True,
    help=f"Comma-separated baselines ({', '.join(BASELINES)}) or 'none'.",
)
@click.option(
    "--time-cap",
    type=float,
    default=600.0,
    show_default=True,
    help="Solver time cap of each baseline run (seconds).",
)
@click.option(
    "--memory-limit-gb",
    type=float,
    default=12.0,
    show_default=True,
    help="Address-space limit per worker process (0 = none).",
)
@click.option(
    "--results",
    type=click.Path(dir_okay=False, path_type=Path),
    default=RESULTS,
    show_default=True,
    help="JSON-lines file the runs are appended to.",
)
@click.pass_context
def main(
    ctx: click.Context,
    tiers: str,
    seeds: str,
    baselines: str,
    time_cap: float,
    memory_limit_gb: float,
    results: Path,
) -> None:
    """Run benchmark tiers with coupler and the plain baselines; `report` renders the table."""
    ctx.ensure_object(dict)
    ctx.obj["results"] = results
    if ctx.invoked_subcommand is not None:
        return
    try:
        workloads = [get_workload(t.strip()) for t in tiers.split(",") if t.strip()]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tier") from None
    chosen = (
        []
        if baselines.strip().lower() == "none"
        else [b.strip() for b in baselines.split(",") if b.strip()]
    )
    unknown = [b for b in chosen if b not in BASELINES]
    if unknown:
        raise click.BadParameter(
            f"unknown baseline(s) {', '.join(unknown)}; known: {', '.join(BASELINES)} or none",
            param_hint="--baselines",
        )
    if time_cap <= 0:
        raise click.BadParameter(f"must be > 0; got {time_cap}", param_hint="--time-cap")
    run(
        workloads,
        _ints(seeds),
        ["coupler", *chosen],
        time_cap=time_cap,
        results=results,
        memory_limit_gb=memory_limit_gb or None,
    )
    click.echo(f"appended to {results}; run `python -m benchmarks report` for the table", err=True)


@main.command()
@click.option(
    "--results",
    "results_opt",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON-lines file to read [default: the group's --results].",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for table.md and scaling.png [default: next to the results file].",
)
@click.option(
    "--readme",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"README whose table section is rewritten [default: {README.name} when the "
    "results are the default file; none otherwise].",
)
@click.pass_context
def report(
    ctx: click.Context, results_opt: Path | None, out: Path | None, readme: Path | None
) -> None:
    """Regenerate table.md, scaling.png and the README table from the JSON lines."""
    results = results_opt or ctx.obj["results"]
    if not results.is_file():
        raise click.ClickException(f"{results}: no results yet; run `python -m benchmarks` first")
    if readme is None and results.resolve() == RESULTS.resolve():
        readme = README
    try:
        written = render(results, out or results.parent, readme)
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{results}: cannot render ({exc})") from None
    for p in written:
        click.echo(f"wrote {p}", err=True)


@main.command()
@click.option(
    "--tier",
    "tiers",
    default="tiny,monthly",
    show_default=True,
    help="Comma-separated tiers to build and measure.",
)
def memory(tiers: str) -> None:
    """Measure which model arrays dominate memory and extrapolate to every tier."""
    from benchmarks.memory import report as memory_report

    names = [t.strip() for t in tiers.split(",") if t.strip()]
    try:
        for n in names:
            get_workload(n)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tier") from None
    click.echo(memory_report(names))


@main.command("_worker", hidden=True)
@click.argument("case_file", type=click.Path(path_type=Path))
@click.argument("method")
@click.argument("time_cap", type=float)
@click.argument("out_file", type=click.Path(path_type=Path))
def _worker(case_file: Path, method: str, time_cap: float, out_file: Path) -> None:
    sys.exit(worker_main(case_file, method, time_cap, out_file))


if __name__ == "__main__":
    main()
