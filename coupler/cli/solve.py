"""``coupler solve``: load, build, solve and write a coupling plan."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from coupler.cli.options import (
    FILE,
    backend_option,
    cases_options,
    format_option,
    load_cases,
    non_negative,
    out_option,
    policy_option,
    require_households,
    solver_options,
)
from coupler.engine.solve import solve as solve_model
from coupler.errors import CouplerError, InputError, Problem
from coupler.model import build_model
from coupler.policy import Policy
from coupler.write import FORMATS, write_result


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


@click.command()
@cases_options
@click.option(
    "--scores", type=FILE, help="Participation scores per household x municipality or region."
)
@click.option("--locks", type=FILE, help="Pins and bans (household_id, municipality, action).")
@click.option("--distances", type=FILE, help="Distance matrix (from, to, km), e.g. road km.")
@click.option("--demand", type=FILE, help="Labour demand (labour_market_region, sector, demand).")
@policy_option("Policy TOML file [default: the documented defaults].")
@click.option(
    "--total",
    type=int,
    callback=non_negative,
    help="National half-year total (persons) to divide by population [default: 28,000].",
)
@click.option(
    "--seed",
    type=int,
    callback=non_negative,
    help="Seed of the generated batch and of the solver [default: 0 / the policy's].",
)
@backend_option
@solver_options
@out_option("results", "Output folder; written atomically.")
@format_option(FORMATS, "Format of the plan tables.")
def solve(
    scenario: Path | None,
    households: Path | None,
    criteria: Path | None,
    scores: Path | None,
    locks: Path | None,
    distances: Path | None,
    demand: Path | None,
    policy_file: Path | None,
    total: int | None,
    persons: int,
    seed: int | None,
    backend: str | None,
    time_limit: float | None,
    gap: float | None,
    out: Path,
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
    require_households(households, criteria)
    blocked = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise click.BadParameter(f"{blocked} is a file, not a folder", param_hint="'--out'")
    clock = _Clock()
    extra: dict[str, Any] = {}

    def load() -> Any:
        problems: list[Problem] = []
        policy = Policy()
        if policy_file is not None:
            try:
                policy = Policy.from_file(policy_file)
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
        inst = None
        try:
            inst, generated = load_cases(
                scenario,
                households,
                criteria,
                persons=persons,
                seed=0 if seed is None else seed,
                say=lambda message: clock.say(f"load: {message}"),
                total=total,
                scores=scores,
                locks=locks,
                demand=demand,
                distances=distances,
            )
            if generated is not None:
                extra["generated"] = generated
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
    model = clock.phase("build", lambda: build_model(inst, policy))
    clock.say(
        f"build: {int(model.has_hard.sum()):,} households with a hard criterion, "
        f"{len(model.hard.conflicts):,} conflicts"
    )
    clock.say(
        f"solve: {policy.solver.backend}, limit {policy.solver.time_limit:g}s, "
        f"gap {policy.solver.gap:g}"
    )
    result = clock.phase(
        "solve", lambda: solve_model(model, progress=lambda s: clock.say(f"solve: {s}"))
    )
    clock.say(f"solve: {result.status}, gap {result.gap:.4%}")
    extra["phases"] = dict(clock.phases)
    clock.say(f"write: {out}")
    try:
        paths = clock.phase(
            "write", lambda: write_result(result, model, out, fmt=fmt, extra_summary=extra)
        )
    except OSError as exc:
        raise CouplerError(
            f"cannot write to {out}: {exc.strerror or exc}; nothing was written"
        ) from None
    clock.say(f"done in {time.perf_counter() - clock.start:.1f}s")
    click.echo(result.summary())
    click.echo(
        f"wrote {len(paths)} files to {out}/ (plan.{fmt}, summary.json, ...); "
        f"explain a household with: coupler explain HOUSEHOLD --out {out}"
    )


COMMANDS = [solve]
