"""Options shared by several commands, and the one way to load or generate the cases.

Every command that works on a batch of cases (``solve``, ``compare``, ``sweep``, ``generate``)
takes its options from here, so an option means the same and is checked the same everywhere:
:func:`cases_options` adds ``--scenario``, ``--households``, ``--criteria`` and ``--persons``;
:func:`solver_options` adds ``--time-limit`` and ``--gap``; the others are one decorator each.
:func:`load_cases` reads the user's files or, without ``--households``, generates a seeded batch
on the scenario. This module has no ``COMMANDS``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from coupler import schema
from coupler.instance import Instance

F = TypeVar("F", bound=Callable[..., Any])

#: An input file that must exist.
FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
#: An input folder that must exist.
FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)
#: Persons in a generated batch: a peak month (about 28,000 persons per half year / 6).
DEFAULT_PERSONS = 4700


def positive(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Click callback: the value, if given, is > 0."""
    if value is not None and value <= 0:
        raise click.BadParameter(f"must be > 0; got {value}")
    return value


def non_negative(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Click callback: the value, if given, is >= 0."""
    if value is not None and value < 0:
        raise click.BadParameter(f"must be >= 0; got {value}")
    return value


def relative_gap(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """Click callback: a relative gap, if given, lies in [0, 1)."""
    if value is not None and not 0 <= value < 1:
        raise click.BadParameter(f"must be in [0, 1); got {value}")
    return value


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Apply ``decorators`` so that the options show in the order given."""

    def apply(f: F) -> F:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


def scenario_option(f: F) -> F:
    """``--scenario``: a scenario folder (default: the embedded nl-2024)."""
    return click.option(
        "--scenario",
        type=FOLDER,
        default=None,
        help="Scenario folder with municipalities.csv (and optional demand.csv) "
        "[default: the embedded national scenario nl-2024].",
    )(f)


def persons_option(
    help: str = "Persons in the generated batch (only without --households).",
) -> Callable[[F], F]:
    """``--persons``: persons in a generated batch, at least 1 (default 4,700)."""
    return click.option(
        "--persons",
        type=int,
        default=DEFAULT_PERSONS,
        show_default=True,
        callback=positive,
        help=help,
    )


def cases_options(f: F) -> F:
    """``--scenario``, ``--households``, ``--criteria`` and ``--persons``: the cases to work on."""
    return _stack(
        scenario_option,
        click.option(
            "--households",
            type=FILE,
            help="Households file (.csv, .xlsx, .parquet) [default: a generated batch].",
        ),
        click.option("--criteria", type=FILE, help="Hard criteria file; needs --households."),
        persons_option(),
    )(f)


def solver_options(f: F) -> F:
    """``--time-limit`` and ``--gap``: override the policy's solver settings."""
    return _stack(
        click.option(
            "--time-limit",
            type=float,
            callback=positive,
            help="Seconds per solve [default: the policy's, 60].",
        ),
        click.option(
            "--gap",
            type=float,
            callback=relative_gap,
            help="Relative gap target [default: the policy's, 0.001].",
        ),
    )(f)


def backend_option(f: F) -> F:
    """``--backend``: one of :data:`coupler.schema.BACKEND_NAMES`."""
    return click.option(
        "--backend",
        type=click.Choice(schema.BACKEND_NAMES),
        help="MIP backend [default: the policy's, highs].",
    )(f)


def policy_option(help: str) -> Callable[[F], F]:
    """``--policy``: a policy TOML file (passed to the command as ``policy_file``)."""
    return click.option("--policy", "policy_file", type=FILE, help=help)


def out_option(default: str, help: str) -> Callable[[F], F]:
    """``--out``: the output folder, written atomically."""
    return click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(default),
        show_default=True,
        help=help,
    )


def format_option(formats: tuple[str, ...], help: str) -> Callable[[F], F]:
    """``--format``: the file format of the tables (passed to the command as ``fmt``)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(formats),
        default=formats[0],
        show_default=True,
        help=help,
    )


def require_households(households: Path | None, criteria: Path | None) -> None:
    """``--criteria`` points to households in a file, so it needs ``--households``."""
    if criteria is not None and households is None:
        raise click.UsageError(
            "--criteria needs --households (criteria point to households in that file)"
        )


def load_cases(
    scenario: Path | None,
    households: Path | None,
    criteria: Path | None,
    *,
    persons: int,
    seed: int,
    say: Callable[[str], None],
    total: int | None = None,
    **files: Path | None,
) -> tuple[Instance, dict[str, int] | None]:
    """The cases of a command as one validated :class:`~coupler.instance.Instance`.

    With ``households`` the user's files are read and validated; without, a batch of ``persons``
    persons is generated with ``seed`` on the scenario's municipalities (and ``say`` tells so).
    ``total`` divides a national total over the scenario; ``files`` are the optional input files
    of :func:`coupler.scenario.load_instance` (``scores``, ``locks``, ``demand``, ``distances``).

    Returns
    -------
    tuple
        The instance, and ``{"persons": ..., "seed": ...}`` when the cases were generated (None
        when they were read).

    Raises
    ------
    click.UsageError
        ``criteria`` without ``households``.
    coupler.errors.InputError
        Every problem of every input file, together.
    """
    from coupler.generate import generate_cases
    from coupler.scenario import load_instance, load_scenario

    require_households(households, criteria)
    if households is not None:
        return load_instance(households, criteria, scenario=scenario, total=total, **files), None
    municipalities, _ = load_scenario(scenario, total)
    where = "embedded national" if scenario is None else "given"
    say(
        f"no --households; generating a batch of {persons:,} persons (seed {seed}) "
        f"for the {where} scenario"
    )
    hh, cr = generate_cases(municipalities, persons=persons, seed=seed)
    inst = load_instance(hh, cr, scenario=scenario, total=total, **files)
    return inst, {"persons": persons, "seed": seed}
