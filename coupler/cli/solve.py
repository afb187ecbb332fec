"""``coupler solve``: load, build, solve and write a coupling plan."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from coupler import schema
from coupler.agreements import Agreement, build_variant, is_agreement_file
from coupler.engine import solve as solve_model
from coupler.errors import CouplerError, InputError, Problem
from coupler.generate import generate_cases
from coupler.policy import Policy
from coupler.rundir import FORMATS, check_out, write_result
from coupler.scenario import load_instance, load_scenario

# Input files are checked by coupler.io, which also reads 'book.xlsx#Sheet'.
_FILE = click.Path(dir_okay=False, path_type=Path)


class _Clock:
    """Progress lines on stderr with the elapsed time; never personal data."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.phases: dict[str, float] = {}

    def say(self, message: str) -> None:
        click.echo(f"[{time.perf_counter() - self.start:6.1f}s] {message}", err=True)

    def phase(self, name: str, fn: Callable[[], Any]) -> Any:
        t = time.perf_counter()
        out = fn()
        self.phases[name] = round(time.perf_counter() - t, 3)
        return out


def _positive(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be > 0; got {value}")
    return value


def _non_negative(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    if value is not None and value < 0:
        raise click.BadParameter(f"must be >= 0; got {value}")
    return value


def _gap(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not 0 <= value < 1:
        raise click.BadParameter(f"must be in [0, 1); got {value}")
    return value


@click.command()
@click.option(
    "--scenario",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Scenario folder with municipalities.csv (and optional demand.csv) "
    "[default: the embedded national scenario nl-2024].",
)
@click.option(
    "--households",
    type=_FILE,
    help="Households file (.csv, .xlsx, .parquet) [default: a generated batch].",
)
@click.option("--criteria", type=_FILE, help="Hard criteria file; needs --households.")
@click.option(
    "--scores", type=_FILE, help="Participation scores per household x municipality or region."
)
@click.option("--locks", type=_FILE, help="Pins and bans (household_id, municipality, action).")
@click.option("--distances", type=_FILE, help="Distance matrix (from, to, km), e.g. road km.")
@click.option("--demand", type=_FILE, help="Labour demand (labour_market_region, sector, demand).")
@click.option(
    "--sheet",
    help="Sheet to read in every .xlsx input with more than one sheet; or name it per file as "
    "FILE.xlsx#SHEET. Hidden sheets are only read when named.",
)
@click.option(
    "--ignore-columns",
    "ignore_columns",
    multiple=True,
    metavar="NAMES",
    help="Comma-separated columns to skip in every input file (repeatable). Any other column "
    "coupler does not know is an error (docs/inputs.md).",
)
@click.option(
    "--policy",
    "policy_file",
    type=_FILE,
    help="Policy TOML file [default: the documented defaults].",
)
@click.option(
    "--agreement",
    "agreement_files",
    type=_FILE,
    multiple=True,
    help="Agreement overlay TOML, applied as `coupler compare` tests it. Repeatable.",
)
@click.option(
    "--total",
    type=int,
    callback=_non_negative,
    help="National half-year total (persons) to divide by population [default: 28,000].",
)
@click.option(
    "--persons",
    type=int,
    default=4700,
    show_default=True,
    callback=_positive,
    help="Persons in the generated batch (only without --households).",
)
@click.option(
    "--seed",
    type=int,
    callback=_non_negative,
    help="Seed of the generated batch and of the solver [default: 0 / the policy's].",
)
@click.option(
    "--backend",
    type=click.Choice(schema.BACKEND_NAMES),
    help="MIP backend [default: the policy's, highs].",
)
@click.option(
    "--time-limit", type=float, callback=_positive, help="Seconds [default: the policy's, 60]."
)
@click.option(
    "--gap", type=float, callback=_gap, help="Relative gap target [default: the policy's, 0.001]."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Output folder; replaced as a whole, atomically (docs/outputs.md).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace --out even when it holds files coupler did not write.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="csv",
    show_default=True,
    help="Format of the plan tables.",
)
def solve(
    scenario: Path | None,
    households: Path | None,
    criteria: Path | None,
    scores: Path | None,
    locks: Path | None,
    distances: Path | None,
    demand: Path | None,
    sheet: str | None,
    ignore_columns: tuple[str, ...],
    policy_file: Path | None,
    agreement_files: tuple[Path, ...],
    total: int | None,
    persons: int,
    seed: int | None,
    backend: str | None,
    time_limit: float | None,
    gap: float | None,
    out: Path,
    force: bool,
    fmt: str,
) -> None:
    """Couple each household to one municipality and write the plan.

    Respects every quota and, where the places allow, every hard criterion (work, family,
    study, medical within 50 km); then maximises the weighted soft score. With no
    --households it solves the national scenario with a generated monthly batch.

    Writes to OUT: plan, plan_criteria, municipalities, provinces, regions, conflicts and
    broken tables, summary.json, policy.toml and the validated inputs (inputs/), so that
    `coupler explain` can answer later. Columns: docs/outputs.md.

    \b
    Examples:
      coupler solve                                      # national demo, 4,700 persons
      coupler solve --households hh.csv --criteria cr.csv --policy policy.toml --out plan
      coupler explain H000017 --why-not GM0363 --out plan
    """
    if criteria is not None and households is None:
        raise click.UsageError(
            "--criteria needs --households (criteria point to households in that file)"
        )
    inputs = (scenario, households, criteria, scores, locks, distances, demand, policy_file)
    check_out(out, inputs, force=force)
    clock = _Clock()
    extra: dict[str, Any] = {}
    agreements: list[Agreement] = []

    def load() -> Any:
        problems: list[Problem] = []
        policy = Policy()
        if policy_file is not None:
            try:
                policy = Policy.from_file(policy_file)
            except InputError as exc:
                hint = Problem(
                    policy_file.name, "is an agreement overlay; give it with --agreement"
                )
                try:
                    overlay = is_agreement_file(policy_file)
                except InputError:  # not TOML at all: the policy's own message says so
                    overlay = False
                problems.extend([hint] if overlay else exc.problems)
        for f in agreement_files:
            try:
                agreements.append(Agreement.from_file(f))
            except InputError as exc:
                problems.extend(exc.problems)
        overrides = {
            k: v
            for k, v in (
                ("backend", backend),
                ("time_limit", time_limit),
                ("gap", gap),
                ("seed", seed),
            )
            if v is not None
        }
        if overrides and not problems:
            policy = policy.with_(solver=overrides)
        ignored = [c.strip() for v in ignore_columns for c in v.split(",") if c.strip()]
        kwargs = dict(
            scenario=scenario,
            total=total,
            scores=scores,
            locks=locks,
            demand=demand,
            distances=distances,
            sheet=sheet,
            ignore_columns=ignored,
        )
        inst = None
        try:
            if households is None:
                municipalities, _ = load_scenario(
                    scenario, total, sheet=sheet, ignore_columns=ignored
                )
                gen_seed = 0 if seed is None else seed
                where = "embedded national" if scenario is None else "given"
                clock.say(
                    f"load: no --households; generating a batch of {persons:,} persons "
                    f"(seed {gen_seed}) for the {where} scenario"
                )
                hh, cr = generate_cases(municipalities, persons=persons, seed=gen_seed)
                extra["generated"] = {"persons": persons, "seed": gen_seed}
                inst = load_instance(hh, cr, **kwargs)  # type: ignore[arg-type]
            else:
                inst = load_instance(households, criteria, **kwargs)  # type: ignore[arg-type]
        except InputError as exc:
            problems.extend(exc.problems)
        if problems:
            raise InputError(problems)
        return inst, policy

    clock.say("load: reading and validating inputs")
    inst, policy = clock.phase("load", load)
    clock.say(
        f"load: {inst.n_municipalities} municipalities, {inst.n_households:,} households, "
        f"{int(inst.sizes.sum()):,} persons, {len(inst.criteria):,} criteria"
    )
    clock.say("build: model arrays")
    if agreements:
        extra["agreements"] = [{"name": a.name, "file": a.source} for a in agreements]
        clock.say("build: agreements " + ", ".join(a.name for a in agreements))
    model = clock.phase("build", lambda: build_variant(inst, policy, tuple(agreements)))
    clock.say(
        f"build: {int(model.has_hard.sum()):,} households with a hard criterion, "
        f"{model.hard.conflicts['household'].nunique():,} conflicts"
    )
    clock.say(
        f"solve: {policy.solver.backend}, limit {policy.solver.time_limit:g}s, "
        f"gap {policy.solver.gap:g}"
    )
    result = clock.phase(
        "solve", lambda: solve_model(model, progress=lambda s: clock.say(f"solve: {s}"))
    ).require_plan()
    clock.say(f"solve: {result.status}, gap {result.gap:.4%}")
    extra["phases"] = dict(clock.phases)
    clock.say(f"write: {out}")
    try:
        paths = clock.phase(
            "write",
            lambda: write_result(
                result, model, out, fmt=fmt, extra_summary=extra, inputs=inputs, force=force
            ),
        )
    except OSError as exc:
        raise CouplerError(
            f"cannot write to {out}: {exc.strerror or exc}; {out} was left as it was"
        ) from None
    clock.say(f"done in {time.perf_counter() - clock.start:.1f}s")
    click.echo(result.summary())
    click.echo(
        f"wrote {len(paths)} files to {out}/ (plan.{fmt}, summary.json, ...); "
        f"explain a household with: coupler explain HOUSEHOLD --out {out}"
    )


COMMANDS = [solve]
