"""``coupler solve``: load, build, solve and write a coupling plan."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from coupler.agreements import Agreement, build_variant, is_agreement_file
from coupler.cli.options import (
    FILE,
    Clock,
    backend_option,
    cases_options,
    format_option,
    input_options,
    load_cases,
    out_options,
    policy_option,
    read_options,
    require_households,
    seed_option,
    solver_changes,
    solver_options,
    total_option,
)
from coupler.engine import solve as solve_model
from coupler.errors import CouplerError, InputError, Problem
from coupler.policy import Policy
from coupler.rundir import FORMATS, check_out, write_result


@click.command()
@cases_options
@input_options
@read_options
@policy_option("Policy TOML file [default: the documented defaults].")
@click.option(
    "--agreement",
    "agreement_files",
    type=FILE,
    multiple=True,
    help="Agreement overlay TOML, applied as `coupler compare` tests it. Repeatable.",
)
@total_option
@seed_option("Seed of the generated batch and of the solver [default: 0 / the policy's].")
@backend_option
@solver_options
@out_options("Output folder; replaced as a whole, atomically (docs/outputs.md).", "results")
@format_option(FORMATS, "Format of the plan tables.")
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
    bound_rounds: int | None,
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
    require_households(households, criteria)
    inputs = (scenario, households, criteria, scores, locks, distances, demand, policy_file)
    check_out(out, inputs, force=force)
    clock = Clock()
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
        changes = solver_changes(
            backend=backend, time_limit=time_limit, gap=gap, bound_rounds=bound_rounds, seed=seed
        )
        if changes and not problems:
            policy = policy.with_(solver=changes)
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
                sheet=sheet,
                ignore_columns=ignore_columns,
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
