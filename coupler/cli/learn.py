"""``coupler learn`` and ``coupler score``: learn a participation score from outcomes, use it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pandas as pd

from coupler.excel import safe_frame
from coupler.io import load_households
from coupler.learn.features import DEFAULT_FEATURES
from coupler.learn.table import load_history, load_members
from coupler.learn.vocab import HORIZONS
from coupler.policy import Policy
from coupler.rundir import Content, write_atomically, write_file
from coupler.scenario import load_scenario

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_SCENARIO = click.Path(exists=True, file_okay=False, path_type=Path)
_TABLE_SUFFIXES = (".csv", ".xlsx", ".parquet")


def _policy(path: Path | None) -> Policy:
    return Policy() if path is None else Policy.from_file(path)


def table_content(frame: pd.DataFrame, path: Path) -> Content:
    """``frame`` made safe for spreadsheets, as the content of ``path`` (csv, xlsx, parquet)."""
    safe = safe_frame(frame)
    if path.suffix.lower() == ".parquet":
        return lambda target: safe.to_parquet(target, index=False)
    return safe


def check_table_path(path: Path, option: str) -> None:
    """A file to write must be .csv, .xlsx or .parquet and must not be a folder."""
    if path.suffix.lower() not in _TABLE_SUFFIXES:
        raise click.BadParameter(
            f"must end in one of {', '.join(_TABLE_SUFFIXES)}; got '{path.name}'",
            param_hint=f"'{option}'",
        )
    if path.is_dir():
        raise click.BadParameter(f"{path} is a folder, not a file", param_hint=f"'{option}'")


@click.command()
@click.option(
    "--history",
    "history_file",
    type=_FILE,
    required=True,
    help="History of past arrivals (docs/learn.md).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Model folder: model.joblib, model.json, card.json, card.html (written atomically).",
)
@click.option(
    "--years",
    type=click.Choice([str(y) for y in HORIZONS]),
    default="2",
    show_default=True,
    help="Outcome: worked within this many years.",
)
@click.option(
    "--use-nationality",
    is_flag=True,
    help="Opt in to nationality_group as a feature. Off by default: nationality is a proxy "
    "for ethnicity (DOMAIN.md section 9).",
)
@click.option(
    "--drop-feature",
    "drop",
    multiple=True,
    type=click.Choice(DEFAULT_FEATURES),
    help="Leave a default feature out (repeatable), e.g. --drop-feature gender.",
)
@click.option(
    "--calibration",
    type=click.Choice(["sigmoid", "isotonic"]),
    default="sigmoid",
    show_default=True,
    help="Calibration fitted on the calibration cohort(s).",
)
@click.option(
    "--calibration-cohorts",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Cohorts before the test cohort(s) that the calibration is fitted on.",
)
@click.option(
    "--test-cohorts",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Latest cohorts held out to test on; every figure of the card comes from them.",
)
@click.option("--scenario", type=_SCENARIO, help="Scenario folder [default: the embedded nl-2024].")
@click.option("--policy", "policy_file", type=_FILE, help="Policy of the placement comparison.")
@click.option(
    "--compare-persons",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Persons in the generated batch solved with and without the score for the card.",
)
@click.option("--no-compare", is_flag=True, help="Skip the placement comparison (faster).")
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the model, the importances and the comparison batch.",
)
def learn(
    history_file: Path,
    out: Path,
    years: str,
    use_nationality: bool,
    drop: tuple[str, ...],
    calibration: str,
    calibration_cohorts: int,
    test_cohorts: int,
    scenario: Path | None,
    policy_file: Path | None,
    compare_persons: int,
    no_compare: bool,
    seed: int,
) -> None:
    """Learn P(work within N years) from a history of past arrivals; write the model and its card.

    Fits scikit-learn's histogram gradient boosting on the earliest arrival cohorts, calibrates
    it on the next and tests it on the last (never a random split across time). The card
    (card.html, card.json) gives the data period, sizes, test AUC and Brier score, a calibration
    plot, permutation importances, the calibration by gender, age group, household type and
    nationality group (naming the worst calibrated group) and the change in placements by group
    when the score is switched on.

    \b
    Examples:
      coupler generate --history --out history.csv
      coupler learn --history history.csv --out model
      coupler score --model model --households cases/households.csv --out scores.csv
    """
    # scikit-learn loads here, not with every command (0.6 s).
    from coupler.learn.card import audit, card_html, card_json, synthetic_comparison
    from coupler.learn.fit import fit_model, model_files

    if out.exists() and any(out.iterdir()):
        raise click.BadParameter(f"{out} exists and is not empty", param_hint="'--out'")
    municipalities, demand = load_scenario(scenario)
    horizon = int(years)
    policy = _policy(policy_file)
    history = load_history(history_file, municipalities, horizon)
    regions = tuple(sorted(set(municipalities["labour_market_region"].astype(str))))
    click.echo(f"fitting on {len(history):,} persons ...", err=True)
    model, validation = fit_model(
        history,
        regions,
        years=horizon,
        nationality=use_nationality,
        drop=drop,
        calibration="isotonic" if calibration == "isotonic" else "sigmoid",
        calibration_cohorts=calibration_cohorts,
        test_cohorts=test_cohorts,
        seed=seed,
    )
    comparison = None
    if not no_compare:
        click.echo(
            f"solving a batch of {compare_persons:,} persons with and without the score ...",
            err=True,
        )
        comparison = synthetic_comparison(
            model, municipalities, demand, persons=compare_persons, seed=seed, policy=policy
        )
    cohorts = history["cohort"]
    info: dict[str, Any] = {
        "file": history_file.name,
        "persons": len(history),
        "period": f"{int(cohorts.min())}-{int(cohorts.max())}",
    }
    audit_result = audit(validation)
    card = card_json(model, validation, audit_result, comparison, info)
    files: dict[str, Content] = {
        **model_files(model, {"history": info, "test": card["test"]}),
        "card.json": card,
        "card.html": card_html(card),
    }
    for path in write_atomically(out, files):
        click.echo(f"wrote {path}")
    t = card["test"]
    click.echo(
        f"test cohort(s) {', '.join(map(str, model.split.test))}: AUC {t['auc']:.3f}, "
        f"Brier {t['brier']:.4f}, largest decile gap {t['max_decile_gap']:.3f}"
    )
    worst = audit_result["worst"]
    if worst is not None:
        click.echo(
            f"worst calibrated group: {worst['attribute']} = {worst['group']} "
            f"(gap {worst['gap']:+.3f})"
        )


@click.command()
@click.option(
    "--model", "model_dir", type=_SCENARIO, required=True, help="Model folder of coupler learn."
)
@click.option("--households", type=_FILE, required=True, help="Households of the batch.")
@click.option(
    "--members", type=_FILE, help="Adult members of the batch (docs/learn.md); better scores."
)
@click.option("--scenario", type=_SCENARIO, help="Scenario folder [default: the embedded nl-2024].")
@click.option(
    "--policy", "policy_file", type=_FILE, help="Policy whose [soft] aggregation is used."
)
@click.option(
    "--aggregation",
    type=click.Choice(["sum", "mean", "any"]),
    help="Combine members by sum (normalised), mean or at least one [default: the policy's].",
)
@click.option(
    "--cohort", type=int, help="Arrival cohort to score as [default: the model's latest]."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("scores.csv"),
    show_default=True,
    help="Scores file (.csv, .xlsx, .parquet) for coupler solve --scores.",
)
def score(
    model_dir: Path,
    households: Path,
    members: Path | None,
    scenario: Path | None,
    policy_file: Path | None,
    aggregation: str | None,
    cohort: int | None,
    out: Path,
) -> None:
    """Write the --scores table of a batch from a learned model.

    One row per household and labour-market region: the household's score combines every
    adult member by the policy's aggregation (sum, mean, at least one), so it never follows a
    single member. Without --members, the adults are read from the households' education and
    sector lists, and only the main applicant has a gender and age group.
    """
    from coupler.learn.fit import load_model
    from coupler.learn.score import score_batch

    check_table_path(out, "--out")
    municipalities, _ = load_scenario(scenario)
    policy = _policy(policy_file)
    model = load_model(model_dir)
    hh = load_households(households, municipalities)
    people = None if members is None else load_members(members, hh)
    rule = aggregation or policy.soft.aggregation
    scored = score_batch(
        model,
        hh,
        municipalities,
        members=people,
        aggregation="sum" if rule == "sum" else "any" if rule == "any" else "mean",
        cohort=cohort,
    )
    click.echo(f"wrote {write_file(out, table_content(scored.scores, out))}")
    click.echo(
        f"scored {len(hh):,} households ({len(scored.members):,} adult members) at "
        f"{len(scored.regions)} regions; aggregation {rule}"
    )


COMMANDS = [learn, score]
