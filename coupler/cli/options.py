"""Options shared by the commands, and the one way to load or generate the cases.

Every command that works on a batch of cases (``solve``, ``compare``, ``sweep``, ``generate``)
takes its options from here, so an option is spelled, explained and checked the same everywhere:

- :func:`cases_options`: ``--scenario``, ``--households``, ``--criteria``, ``--persons``;
- :func:`read_options`: ``--sheet`` and ``--ignore-columns`` (how input files are read);
- :func:`input_options`: ``--total``, ``--scores``, ``--locks``, ``--distances``, ``--demand``;
- :func:`solver_options`: ``--time-limit``, ``--gap`` and ``--bound-rounds`` (:func:`backend_option` apart);
- :func:`out_options`: ``--out`` and ``--force``; :func:`format_option`, :func:`seed_option`,
  :func:`persons_option`, :func:`scenario_option` and :func:`policy_option` one each.

:func:`load_cases` reads the user's files or, without ``--households``, generates a seeded batch
on the scenario (:func:`generate_batch`) and says so. This module has no ``COMMANDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from coupler import schema

if TYPE_CHECKING:
    import pandas as pd

    from coupler.instance import Instance

F = TypeVar("F", bound=Callable[..., Any])
Say = Callable[[str], None]

#: An input file. Not checked by click: coupler.io names a missing file and reads 'book.xlsx#Sheet'.
FILE = click.Path(dir_okay=False, path_type=Path)
#: An input folder that must exist.
FOLDER = click.Path(exists=True, file_okay=False, path_type=Path)
#: Persons in a generated batch: a peak month (about 28,000 persons per half year).
DEFAULT_PERSONS = 4700


# -- checks (click callbacks) -------------------------------------------------------------------
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


def column_names(
    ctx: click.Context | None, param: click.Parameter | None, value: Collection[str]
) -> tuple[str, ...]:
    """Click callback: repeated, comma-separated column names as one tuple of names.

    ``("a, b", "c", ",")`` gives ``("a", "b", "c")``: blanks are dropped, order is kept.
    """
    return tuple(c.strip() for v in value for c in v.split(",") if c.strip())


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    """Apply ``decorators`` so that the options show in ``--help`` in the order given."""

    def apply(f: F) -> F:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


# -- the cases ----------------------------------------------------------------------------------
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
    default: int | None = DEFAULT_PERSONS,
) -> Callable[[F], F]:
    """``--persons``: persons in a generated batch, > 0 (default 4,700, shown)."""
    return click.option(
        "--persons",
        type=int,
        default=default,
        show_default=default is not None,
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


def read_options(f: F) -> F:
    """``--sheet`` and ``--ignore-columns`` (given to the command as a tuple of names)."""
    return _stack(
        click.option(
            "--sheet",
            help="Sheet to read in every .xlsx input with more than one sheet; or name it per "
            "file as FILE.xlsx#SHEET. Hidden sheets are only read when named.",
        ),
        click.option(
            "--ignore-columns",
            "ignore_columns",
            multiple=True,
            metavar="NAMES",
            callback=column_names,
            help="Comma-separated columns to skip in every input file (repeatable). Any other "
            "column coupler does not know is an error (docs/inputs.md).",
        ),
    )(f)


def input_options(f: F) -> F:
    """``--total`` and the optional input files ``--scores``, ``--locks``, ``--distances`` and
    ``--demand`` of :func:`coupler.scenario.load_instance`."""
    return _stack(
        click.option(
            "--scores",
            type=FILE,
            help="Participation scores per household x municipality or region.",
        ),
        click.option(
            "--locks", type=FILE, help="Pins and bans (household_id, municipality, action)."
        ),
        click.option(
            "--distances", type=FILE, help="Distance matrix (from, to, km), e.g. road km."
        ),
        click.option(
            "--demand", type=FILE, help="Labour demand (labour_market_region, sector, demand)."
        ),
    )(f)


def total_option(f: F) -> F:
    """``--total``: the national half-year total to divide by population, >= 0."""
    return click.option(
        "--total",
        type=int,
        callback=non_negative,
        help="National half-year total (persons) to divide by population [default: 28,000].",
    )(f)


def seed_option(help: str, default: int | None = None) -> Callable[[F], F]:
    """``--seed``: a seed, >= 0 (its default shown when there is one)."""
    return click.option(
        "--seed",
        type=int,
        default=default,
        show_default=default is not None,
        callback=non_negative,
        help=help,
    )


# -- policy and solver --------------------------------------------------------------------------
def policy_option(help: str) -> Callable[[F], F]:
    """``--policy``: a policy TOML file (given to the command as ``policy_file``)."""
    return click.option("--policy", "policy_file", type=FILE, help=help)


def backend_option(f: F) -> F:
    """``--backend``: one of :data:`coupler.schema.BACKEND_NAMES`."""
    return click.option(
        "--backend",
        type=click.Choice(schema.BACKEND_NAMES),
        help="MIP backend [default: the policy's, highs].",
    )(f)


def solver_options(f: F) -> F:
    """``--time-limit`` (> 0), ``--gap`` (in [0, 1)) and ``--bound-rounds`` (>= 0): override the
    policy's solver settings."""
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
        click.option(
            "--bound-rounds",
            type=click.IntRange(min=0),
            help="When the gap stays open, tighten the proven bound with up to this many "
            "rounds of the Dantzig-Wolfe LP; only the bound changes, never the plan. Slow: "
            "about a minute on a monthly batch [default: the policy's, 0 = off].",
        ),
    )(f)


def solver_changes(**given: Any) -> dict[str, Any]:
    """The solver settings given on the command line (None means not given), e.g.
    ``solver_changes(time_limit=None, gap=0.01) == {"gap": 0.01}``; for ``Policy.with_(solver=...)``
    or :func:`dataclasses.replace` on a :class:`~coupler.policy.SolveParams`."""
    return {k: v for k, v in given.items() if v is not None}


# -- output -------------------------------------------------------------------------------------
def out_options(help: str, default: str | None, *, folder: bool = True) -> Callable[[F], F]:
    """``--out`` (a folder, or with ``folder=False`` any path) and ``--force``."""
    return _stack(
        click.option(
            "--out",
            type=click.Path(file_okay=not folder, path_type=Path),
            default=None if default is None else Path(default),
            show_default=default is not None,
            help=help,
        ),
        click.option(
            "--force",
            is_flag=True,
            help="Replace --out even when it holds files coupler did not write.",
        ),
    )


def format_option(formats: tuple[str, ...], help: str) -> Callable[[F], F]:
    """``--format``: the file format of the tables (given to the command as ``fmt``); the first
    of ``formats`` is the default."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(formats),
        default=formats[0],
        show_default=True,
        help=help,
    )


# -- progress and loading -----------------------------------------------------------------------
class Clock:
    """Progress lines on stderr with the elapsed time, and the seconds of each phase.

    Messages name counts and files, never personal data.
    """

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.phases: dict[str, float] = {}

    def say(self, message: str) -> None:
        """Print ``[  12.3s] message`` on stderr."""
        click.echo(f"[{time.perf_counter() - self.start:6.1f}s] {message}", err=True)

    def phase(self, name: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` and keep its seconds as ``phases[name]``."""
        t = time.perf_counter()
        out = fn()
        self.phases[name] = round(time.perf_counter() - t, 3)
        return out


def require_households(households: Path | None, criteria: Path | None) -> None:
    """Raise :class:`click.UsageError` for ``--criteria`` without ``--households``."""
    if criteria is not None and households is None:
        raise click.UsageError(
            "--criteria needs --households (criteria point to households in that file)"
        )


def generate_batch(
    scenario: Path | None,
    *,
    persons: int,
    seed: int,
    say: Say | None = None,
    total: int | None = None,
    sheet: str | None = None,
    ignore_columns: Collection[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded synthetic batch of ``persons`` persons on the scenario's municipalities.

    Returns
    -------
    tuple of DataFrame
        (households, criteria) as :func:`coupler.generate.generate_cases` gives them.
    """
    from coupler.generate import generate_cases
    from coupler.scenario import load_scenario

    municipalities, _ = load_scenario(scenario, total, sheet=sheet, ignore_columns=ignore_columns)
    if say is not None:
        where = "embedded national" if scenario is None else "given"
        say(
            f"no --households; generating a batch of {persons:,} persons (seed {seed}) "
            f"for the {where} scenario"
        )
    return generate_cases(municipalities, persons=persons, seed=seed)


def load_cases(
    scenario: Path | None,
    households: Path | None,
    criteria: Path | None,
    *,
    persons: int = DEFAULT_PERSONS,
    seed: int = 0,
    say: Say | None = None,
    total: int | None = None,
    scores: Path | None = None,
    locks: Path | None = None,
    demand: Path | None = None,
    distances: Path | None = None,
    sheet: str | None = None,
    ignore_columns: Collection[str] = (),
) -> tuple[Instance, dict[str, int] | None]:
    """The cases of a command as one validated :class:`~coupler.instance.Instance`.

    With ``households`` the user's files are read and validated; without, a batch of ``persons``
    persons is generated with ``seed`` on the scenario's municipalities (:func:`generate_batch`,
    which tells ``say``). ``total`` divides a national total over the scenario; ``scores``,
    ``locks``, ``demand`` and ``distances`` are the optional input files, and ``sheet`` and
    ``ignore_columns`` how every file is read (:func:`coupler.scenario.load_instance`).

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
    from coupler.scenario import load_instance

    require_households(households, criteria)
    options: dict[str, Any] = dict(
        scenario=scenario,
        total=total,
        scores=scores,
        locks=locks,
        demand=demand,
        distances=distances,
        sheet=sheet,
        ignore_columns=tuple(ignore_columns),
    )
    if households is not None:
        return load_instance(households, criteria, **options), None
    hh, cr = generate_batch(
        scenario,
        persons=persons,
        seed=seed,
        say=say,
        total=total,
        sheet=sheet,
        ignore_columns=tuple(ignore_columns),
    )
    return load_instance(hh, cr, **options), {"persons": persons, "seed": seed}
