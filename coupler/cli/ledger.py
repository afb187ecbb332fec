"""Ledger commands: ``coupler period``, ``coupler batch``, ``coupler omkoppel``,
``coupler kansrijk`` and ``coupler ledger``.

Each command is one transaction on the ledger (docs/ledger.md). The ledger is a SQLite file
(``--db``, default $COUPLER_DB or ./coupler-ledger.sqlite) or any SQLAlchemy URL (``--db-url``,
e.g. PostgreSQL for several users).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pandas as pd
import sqlalchemy as sa

from coupler.jsonsafe import dumps
from coupler.ledger import (
    HousingRules,
    Ledger,
    LedgerError,
    Pacing,
    approve,
    audit_trail,
    backup,
    batch_table,
    check,
    close_period,
    open_period,
    period_status,
    progress_table,
    propose,
    withdraw,
)
from coupler.ledger.batches import write_export
from coupler.ledger.store import db_error, describe
from coupler.policy import Policy
from coupler.rundir import write_file


def _db_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The --db, --db-url and --user options (a command opening the ledger itself uses these)."""
    fn = click.option(
        "--user",
        default=None,
        help="Who runs the command, for the audit log [default: $COUPLER_USER or the OS user].",
    )(fn)
    fn = click.option(
        "--db-url",
        default=None,
        help="SQLAlchemy URL of the ledger instead of --db, e.g. "
        "postgresql+psycopg://host/coupler [default: $COUPLER_DB_URL].",
    )(fn)
    return click.option(
        "--db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Ledger SQLite file [default: $COUPLER_DB or ./coupler-ledger.sqlite].",
    )(fn)


def _ledger_options(fn: Callable[..., Any] | None = None, *, create: bool = False) -> Any:
    """The --db, --db-url and --user options; the command gets the open ledger.

    Only commands declared with ``create=True`` (``period open``, ``ledger init``) create a
    ledger; every other command refuses a missing one. A database error while the command runs
    becomes one line naming the ledger, never a traceback.
    """
    if fn is None:
        return functools.partial(_ledger_options, create=create)

    @click.option(
        "--db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Ledger SQLite file [default: $COUPLER_DB or ./coupler-ledger.sqlite].",
    )
    @click.option(
        "--db-url",
        default=None,
        help="SQLAlchemy URL of the ledger instead of --db, e.g. "
        "postgresql+psycopg://host/coupler [default: $COUPLER_DB_URL].",
    )
    @click.option(
        "--user",
        default=None,
        help="Who runs the command, for the audit log [default: $COUPLER_USER or the OS user].",
    )
    @functools.wraps(fn)
    def wrapper(db: Path | None, db_url: str | None, user: str | None, **kwargs: Any) -> Any:
        ledger = Ledger.open(db, db_url=db_url, user=user, create=create)
        try:
            return fn(ledger, **kwargs)
        except sa.exc.SQLAlchemyError as exc:
            raise LedgerError(
                f"the ledger {describe(ledger.engine)} cannot be used: {db_error(exc)}"
            ) from None
        finally:
            ledger.close()

    return wrapper


def _db_file(ledger: Ledger) -> str | None:
    """The ledger's SQLite file, which an export must never overwrite."""
    return describe(ledger.engine) if ledger.engine.dialect.name == "sqlite" else None


def _say(message: str) -> None:
    click.echo(message, err=True)


def _echo_json(data: dict[str, Any]) -> None:
    click.echo(dumps(data, indent=2))


# --- period ----------------------------------------------------------------------------------

_HOUSING_HELP = (
    "TOML with a [housing] table: offer_weeks (overdue term, default 10), "
    "count_at = coupling | housing (what the carry counts, default coupling)."
)


def _housing_rules(path: str | None) -> HousingRules:
    return HousingRules.from_file(path) if path else HousingRules()


def _date_option(ctx: click.Context, param: click.Parameter, text: str | None) -> dt.date | None:
    """Click callback: a date like 2025-03-14 (or 14-03-2025)."""
    from coupler.ledger.housing import parse_date

    if text is None:
        return None
    d = parse_date(text)
    if d is None:
        raise click.BadParameter("must be a date like 2025-03-14 or 14-03-2025")
    return d


@click.group()
def period() -> None:
    """Open, inspect and close half-year periods (taakstelling)."""


@period.command("open")
@click.argument("name")
@click.option(
    "--total",
    type=int,
    default=None,
    help="National total for the half year, in persons, divided by population.",
)
@click.option(
    "--quotas",
    type=click.Path(dir_okay=False),
    default=None,
    help="Official quotas instead of --total: a table with code, quota and optional backlog.",
)
@click.option(
    "--from-previous",
    is_flag=True,
    help="Carry each municipality's backlog (quota + backlog - coupled) "
    "from the last closed period.",
)
@click.option(
    "--scenario",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Scenario folder with municipalities.csv [default: embedded nl-2024].",
)
@click.option("--reason", default=None, help="Why, for the audit log.")
@_ledger_options(create=True)
def period_open(
    ledger: Ledger,
    name: str,
    total: int | None,
    quotas: str | None,
    from_previous: bool,
    scenario: str | None,
    reason: str | None,
) -> None:
    """Open period NAME (e.g. 2025-H1) with its quotas per municipality.

    The quotas are the official ones of --quotas FILE, else the scenario's quota column, else
    --total divided over the municipalities by population.

    \b
    Examples:
      coupler period open 2025-H1 --total 17600
      coupler period open 2025-H1 --quotas taakstelling-2025-H1.csv
      coupler period open 2025-H2 --total 23000 --from-previous
    """
    s = open_period(
        ledger,
        name,
        total,
        quotas=quotas,
        from_previous=from_previous,
        scenario=scenario,
        reason=reason,
    )
    click.echo(
        f"opened {s['period']}: total {s['total']:,}, {s['municipalities']} municipalities, "
        f"backlog {s['backlog']:+,}"
        + (f" (carried from {s['from_previous']})" if s["from_previous"] else "")
    )


@period.command("status")
@click.option(
    "--period", "name", default=None, help="Period name [default: the open one, else the latest]."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--as-of",
    "as_of",
    callback=_date_option,
    default=None,
    help="Date for housed and overdue [default: today].",
)
@click.option("--housing-rules", type=click.Path(dir_okay=False), default=None, help=_HOUSING_HELP)
@_ledger_options
def period_status_cmd(
    ledger: Ledger,
    name: str | None,
    as_json: bool,
    as_of: dt.date | None,
    housing_rules: str | None,
) -> None:
    """Show a period's quota, coupled and housed persons, reservations, batches and the
    couplings overdue for a dwelling offer per municipality."""
    s = period_status(ledger, name, rules=_housing_rules(housing_rules), as_of=as_of)
    if as_json:
        _echo_json(s)
        return
    click.echo(f"period            {s['period']} ({s['status']})")
    click.echo(f"national total    {s['total']:,}")
    click.echo(f"quota + backlog   {s['quota']:,} {s['backlog']:+,} = {s['target']:,}")
    click.echo(f"coupled           {s['coupled']:,}")
    click.echo(f"reserved          {s['reserved']:,} (kansrijk, expected persons)")
    click.echo(f"remaining         {s['remaining']:,}")
    click.echo(
        f"full / over quota {s['municipalities_full']} / {s['municipalities_over']} municipalities"
    )
    for status, b in sorted(s["batches"].items()):
        click.echo(f"batches {status:<9} {b['count']} ({b['persons']:,} persons)")
    click.echo(f"housed            {s['housed']:,} (within the period, as of {s['as_of']})")
    late = s["overdue"]
    click.echo(
        f"overdue           {sum(r['couplings'] for r in late):,} couplings in {len(late)} "
        f"municipalities without a dwelling offer after {s['offer_weeks']:g} weeks"
    )
    for r in late:
        click.echo(
            f"  {r['municipality']} {r['name']:<28} {r['couplings']:>4} coupling(s) "
            f"{r['persons']:>5} persons, longest {r['max_days']} days"
        )


@period.command("close")
@click.option("--reason", default=None, help="Why, for the audit log.")
@click.option("--housing-rules", type=click.Path(dir_okay=False), default=None, help=_HOUSING_HELP)
@click.option("--yes", is_flag=True, help="Expire pending (proposed) batches without asking.")
@_ledger_options
def period_close(ledger: Ledger, reason: str | None, housing_rules: str | None, yes: bool) -> None:
    """Close the open period and fix each municipality's carry for the next one.

    The carry counts persons at coupling, or at housing when the housing rules say
    count_at = "housing" (persons housed within the period's dates). Proposed batches that were
    never approved expire; you are asked first (--yes skips that).
    """
    pending = period_status(ledger)["batches"].get("proposed", {"count": 0})["count"]
    if pending and not yes:
        click.confirm(
            f"{pending} proposed batch{'es' if pending != 1 else ''} will expire; close the period?",
            abort=True,
        )
    s = close_period(ledger, reason=reason, rules=_housing_rules(housing_rules))
    click.echo(
        f"closed {s['period']}: coupled {s['coupled']:,} of {s['target']:,}, counted at "
        f"{s['count_at']} {s['counted']:,}; carry {s['carry']:+,} "
        f"(deficit {s['deficit']:,}, surplus {s['surplus']:,})"
    )
    expired = s["expired_batches"]
    if expired:
        click.echo(
            f"expired {len(expired)} unapproved batch{'es' if len(expired) != 1 else ''} "
            f"(ids {', '.join(map(str, expired))})"
        )


# --- batch -----------------------------------------------------------------------------------


@click.group()
def batch() -> None:
    """Propose, review, approve and export monthly batches."""


@batch.command("propose")
@click.option(
    "--households", type=click.Path(dir_okay=False), required=True, help="Households table."
)
@click.option(
    "--criteria", type=click.Path(dir_okay=False), default=None, help="Hard criteria table."
)
@click.option(
    "--policy", "policy_file", type=click.Path(dir_okay=False), default=None, help="Policy TOML."
)
@click.option(
    "--scores", type=click.Path(dir_okay=False), default=None, help="Participation scores."
)
@click.option("--locks", type=click.Path(dir_okay=False), default=None, help="Pins and bans.")
@click.option(
    "--distances",
    type=click.Path(dir_okay=False),
    default=None,
    help="Distance matrix (from, to, km), e.g. road kilometres [default: great circle].",
)
@click.option(
    "--agreement",
    "agreement_files",
    type=click.Path(dir_okay=False),
    multiple=True,
    help="Agreement overlay TOML applied as `coupler compare` tests it. Repeatable.",
)
@click.option(
    "--month",
    type=int,
    default=None,
    help="Month of the period this batch belongs to (1-6) [default: approved batches + 1].",
)
@click.option(
    "--pace-slack",
    type=float,
    default=0.25,
    show_default=True,
    help="Pacing: a batch may fill each municipality up to (1 + slack) x month/6 of its target.",
)
@click.option("--no-pacing", is_flag=True, help="Propose against the full remaining quota.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the proposed plan (CSV) here.",
)
@_ledger_options
def batch_propose(
    ledger: Ledger,
    households: str,
    criteria: str | None,
    policy_file: str | None,
    scores: str | None,
    locks: str | None,
    distances: str | None,
    agreement_files: tuple[str, ...],
    month: int | None,
    pace_slack: float,
    no_pacing: bool,
    out: Path | None,
) -> None:
    """Propose a coupling of a batch against the open period's remaining quota.

    The batch stores its policy, distance matrix and agreements; approving it, re-coupling its
    households and the audit use exactly those. Re-running the same proposal (same files,
    policy, agreements and month) changes nothing.
    """
    from coupler.agreements import Agreement

    if pace_slack < 0:
        raise LedgerError(f"--pace-slack must be >= 0; got {pace_slack}")
    policy = Policy.from_file(policy_file) if policy_file else Policy()
    agreements = tuple(Agreement.from_file(f) for f in agreement_files)
    p = propose(
        ledger,
        households,
        criteria,
        policy=policy,
        scores=scores,
        locks=locks,
        distances=distances,
        agreements=agreements,
        pacing=Pacing(enabled=not no_pacing, slack=pace_slack, month=month),
        progress=_say,
    )
    if not p.created:
        click.echo(f"batch {p.batch_id} already holds this proposal; nothing changed")
        return
    s = p.summary
    click.echo(
        f"proposed batch {p.batch_id} (month {p.month}, {'paced' if p.paced else 'not paced'}): "
        f"{s['households']:,} households, {s['persons']:,} persons; broken {s['broken_persons']} "
        f"persons, uncoupled {s['uncoupled_persons']}; status {s['status']}"
    )
    if out is not None and p.result is not None:
        inputs = (_db_file(ledger), households, criteria, policy_file, scores, locks)
        click.echo(f"wrote {write_file(out, p.result.plan, inputs=inputs)}")


@batch.command("show")
@click.argument("batch_id", type=int, required=False)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the batch's couplings (CSV) here.",
)
@click.option("--all", "show_all", is_flag=True, help="List every coupling, not only exceptions.")
@_ledger_options
def batch_show(ledger: Ledger, batch_id: int | None, out: Path | None, show_all: bool) -> None:
    """Show a batch [default: the latest proposed, else the latest approved].

    Prints the totals and, by name, every coupling that breaks a hard criterion, yields one in a
    conflict or was overridden, with its reason (--all: every coupling).
    """
    from coupler.ledger.review import Filters, batch_view

    b, rows = batch_table(ledger, batch_id)
    pacing = json.loads(b.pacing or "{}")
    click.echo(
        f"batch {b.id} ({b.status}), month {b.month}, proposed {b.created_at} by {b.created_by}"
        + (f"; decided {b.decided_at} by {b.decided_by}" if b.decided_at else "")
    )
    paced = "paced" if pacing.get("paced") else "not paced"
    if pacing.get("yielded"):
        paced += " (pacing yielded to keep hard criteria)"
    click.echo(f"households {b.households:,}, persons {b.persons:,}; {paced}")
    from coupler.ledger.context import BatchContext

    with ledger.read() as conn:
        made = BatchContext.load(conn, b.id).describe()
    click.echo(
        f"made with: radius {made['radius_km']:g} km, distances {made['distances']}"
        + (f" (sha256 {made['distances_sha256']})" if made["distances_sha256"] else "")
        + f", agreements {', '.join(made['agreements']) or 'none'}"
    )
    if len(rows):
        by = rows.groupby("status")["persons"].agg(["count", "sum"])
        for status, r in by.iterrows():
            click.echo(f"  {status:<10} {int(r['count']):>6} households {int(r['sum']):>7} persons")
    view = batch_view(ledger, int(b.id), None, Filters(per_page=5000))
    c = view["counts"]
    click.echo(
        f"  breaking a hard criterion: {c['broken']}; conflicts: {c['conflicts']}; "
        f"overridden (pending or approved): "
        f"{sum(1 for r in view['rows'] if r['current'] != r['proposed'])}"
    )
    for r in view["rows"]:
        moved = r["current"] != r["proposed"]
        if not (show_all or r["broken_kinds"] or r["conflict"] or moved):
            continue
        where = r["current_name"] or "not coupled"
        if moved:
            where += f" (proposed {r['proposed_name'] or 'none'})"
        notes = []
        if r["broken_kinds"]:
            notes.append("breaks " + ", ".join(r["broken_kinds"]))
        if r["conflict"]:
            notes.append("conflict: a criterion yielded")
        why = r["override_reason"] or r["reason"]
        if why:
            notes.append(f"reason: {why}")
        click.echo(
            f"  {r['household_id']:<12} {r['persons']:>2} p  {where}"
            + (f"  -- {'; '.join(notes)}" if notes else "")
        )
    if out is not None:
        click.echo(f"wrote {write_file(out, rows, inputs=(_db_file(ledger),))}")


@batch.command("withdraw")
@click.argument("batch_id", type=int, required=False)
@click.option("--reason", default=None, help="Why, for the audit log.")
@_ledger_options
def batch_withdraw(ledger: Ledger, batch_id: int | None, reason: str | None) -> None:
    """Withdraw a proposed batch [default: the latest]; its households may be proposed again."""
    b = withdraw(ledger, batch_id, reason=reason)
    click.echo(f"withdrew batch {b}")


def _parse_override(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        household, sep, code = v.partition("=")
        if not sep or not household.strip() or not code.strip():
            raise click.BadParameter("must look like HOUSEHOLD=GM0363 or HOUSEHOLD=Name")
        out[household.strip()] = code.strip()
    return out


@batch.command("approve")
@click.argument("batch_id", type=int, required=False)
@click.option(
    "--override",
    multiple=True,
    callback=_parse_override,
    help="HOUSEHOLD=GMxxxx or HOUSEHOLD=name: couple this household elsewhere (needs --reason). "
    "Repeatable.",
)
@click.option(
    "--decisions",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A review workbook from `batch export --review` with its decision and reason columns "
    "filled in; refused when the batch changed since the export.",
)
@click.option(
    "--reason",
    default=None,
    help="Why: required for overrides and for couplings that break a hard criterion.",
)
@_ledger_options
def batch_approve(
    ledger: Ledger,
    batch_id: int | None,
    override: dict[str, str],
    reason: str | None,
    decisions: Path | None,
) -> None:
    """Approve a proposed batch [default: the latest], charging its quota."""
    if decisions is not None:
        from coupler.ledger.review import approve_workbook, read_decisions

        if override:
            raise LedgerError("give either --decisions or --override, not both")
        d = read_decisions(ledger, decisions)
        if batch_id is not None and batch_id != d.batch_id:
            raise LedgerError(f"{decisions.name} holds batch {d.batch_id}, not batch {batch_id}")
        s = approve_workbook(ledger, decisions, reason=reason)
    else:
        s = approve(ledger, batch_id, overrides=override, reason=reason)
    click.echo(
        f"approved batch {s['batch']}: {s['households']:,} households, {s['persons']:,} persons "
        f"({s['overrides']} overrides, {s['broken']} breaking a hard criterion, "
        f"{s['uncoupled_households']} households left uncoupled)"
    )


@batch.command("export")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A .csv file (one level) or .xlsx workbook (sheets municipalities and provinces).",
)
@click.option(
    "--review",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the review workbook (.xlsx) of a proposed batch instead: couplings, criteria and "
    "municipalities by name, with decision and reason columns for `batch approve --decisions`.",
)
@click.option(
    "--batch",
    "batch_id",
    type=int,
    default=None,
    help="Batch of --review [default: the latest proposed].",
)
@click.option(
    "--level",
    type=click.Choice(["municipality", "province"]),
    default="municipality",
    show_default=True,
    help="Rows of a CSV export.",
)
@click.option(
    "--period", "name", default=None, help="Period [default: the open one, else the latest]."
)
@_ledger_options
def batch_export(
    ledger: Ledger,
    out: Path | None,
    review: Path | None,
    batch_id: int | None,
    level: str,
    name: str | None,
) -> None:
    """Export quota progress per municipality or province: quota, coupled, remaining.

    With --review, write a proposed batch's review workbook instead.
    """
    if review is not None:
        from coupler.ledger.review import export_review

        if review.suffix.lower() != ".xlsx":
            raise LedgerError(f"--review must end in .xlsx; got '{review.name}'")
        if batch_id is None:
            batch_id = int(batch_table(ledger, None)[0].id)
        export_review(ledger, batch_id, review)
        click.echo(f"wrote {review} (batch {batch_id})")
        return
    if out is None:
        raise LedgerError("give --out (quota progress) or --review (a batch's review workbook)")
    if out.suffix.lower() not in (".csv", ".xlsx"):
        raise LedgerError(f"--out must end in .csv or .xlsx; got '{out.name}'")
    period_name, m, p = progress_table(ledger, name)
    write_export(out, m, p, level)
    click.echo(f"wrote {out} ({period_name})")


# --- ledger ----------------------------------------------------------------------------------


@click.group("ledger")
def ledger_group() -> None:
    """Back up and inspect the ledger."""


@ledger_group.command("init")
@_ledger_options(create=True)
def ledger_init(ledger: Ledger) -> None:
    """Create an empty ledger (``period open`` also creates one); an existing one is kept."""
    click.echo(f"ledger {describe(ledger.engine)} (schema version {ledger.version()})")


@ledger_group.command("check")
@_ledger_options
def ledger_check(ledger: Ledger) -> None:
    """Check the ledger's integrity; exits 1 naming every violation.

    SQLite's integrity check, charges equal to the approved couplings, an audit row for every
    change, and no quota over-spent.
    """
    problems = check(ledger)
    for line in problems:
        click.echo(f"violation: {line}")
    if problems:
        click.echo(f"the ledger {describe(ledger.engine)} fails {len(problems)} check(s)", err=True)
        sys.exit(1)
    click.echo(f"the ledger {describe(ledger.engine)} is sound")


@ledger_group.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@_ledger_options
def ledger_backup(ledger: Ledger, path: Path) -> None:
    """Copy the ledger to PATH (.sqlite: a consistent SQLite copy; .json: a dump of every table).

    Runs `coupler ledger check` first and refuses to back up a ledger that fails it.
    """
    out = backup(ledger, path)
    click.echo(f"wrote {out}")


@ledger_group.command("audit")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the whole audit log (CSV) here instead of printing the last rows.",
)
@click.option("--last", type=int, default=20, show_default=True)
@_ledger_options
def ledger_audit(ledger: Ledger, out: Path | None, last: int) -> None:
    """Show the audit log: who, when, what, why."""
    a = audit_trail(ledger)
    if out is not None:
        click.echo(f"wrote {write_file(out, a, inputs=(_db_file(ledger),))}")
        return
    for r in a.tail(last).itertuples(index=False):
        why = f" -- {r.reason}" if r.reason else ""
        click.echo(f"{r.at} {r.who:<12} {r.command:<14} {r.action:<14} {r.subject or ''}{why}")


# --- omkoppeling ------------------------------------------------------------------------------


@click.group("omkoppel", invoke_without_command=True)
@click.option(
    "--requests",
    type=click.Path(dir_okay=False),
    default=None,
    help="Requests table (columns: docs/ledger.md, section Omkoppeling).",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Policy TOML whose [omkoppeling] table sets gate, radius_km, min_contract_months, "
    "excluded_job_types and bijstandsnorm per year [default: illustrative values].",
)
@click.option("--dry-run", is_flag=True, help="Show what would be proposed; write nothing.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report (CSV: pass/fail and reason per rule and criterion) here.",
)
@_db_options
@click.pass_context
def omkoppel_cmd(
    ctx: click.Context,
    requests: str | None,
    rules_file: str | None,
    dry_run: bool,
    out: Path | None,
    db: Path | None,
    db_url: str | None,
    user: str | None,
) -> None:
    """Check omkoppeling requests and propose moves near the new jobs; approve or reject them.

    Every rule is checked per request (timing gate, job match, scarcity in the current region,
    signed contract, salary >= bijstandsnorm, >= 6 months, payslip seen, Reba paid, excluded job
    types), and every other hard criterion of the household at the new municipality. Eligible
    households get a proposal; nothing moves until `coupler omkoppel approve ID` (a reason is
    required when the move breaks a criterion) or `coupler omkoppel reject ID --reason`.

    \b
    Examples:
      coupler omkoppel --requests requests.csv --dry-run
      coupler omkoppel --requests requests.csv
      coupler omkoppel approve 3 --reason "employer confirmed; medical care moves along"
    """
    if ctx.invoked_subcommand is not None:
        return
    if requests is None:
        raise click.UsageError("give --requests FILE, or a subcommand (approve, reject)")
    from coupler.ledger.omkoppeling import RULES, omkoppel
    from coupler.policy import OmkoppelRules

    rules = OmkoppelRules.from_file(rules_file) if rules_file else OmkoppelRules()
    ledger = Ledger.open(db, db_url=db_url, user=user)
    ctx.call_on_close(ledger.close)
    report = omkoppel(ledger, requests, rules, dry_run=dry_run)
    for r in report.to_dict("records"):
        failed = [f"{k} ({r[k + '_reason']})" for k in RULES if r[k] == "fail"]
        where = (
            f" -> {r['new_municipality']} ({r['distance_km']} km from the job)"
            if r["decision"] == "proposed"
            else ""
        )
        label = f"proposal {int(r['proposal'])}" if pd.notna(r["proposal"]) else "(dry run)"
        click.echo(
            f"request {r['request_id']}: {r['decision']}{where}"
            + (f" [{label}]" if r["decision"] == "proposed" else "")
            + (f"; failed: {'; '.join(failed)}" if failed else "")
            + (f"; BREAKS {r['breaks']}: {r['criteria']}" if r["breaks"] else "")
        )
    counts = report["decision"].value_counts().to_dict()
    click.echo("decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if dry_run:
        click.echo("dry run: nothing was written")
    elif (report["decision"] == "proposed").any():
        click.echo("approve or reject with `coupler omkoppel approve|reject ID --reason TEXT`")
    if out is not None:
        inputs = (_db_file(ledger), requests, rules_file)
        click.echo(f"wrote {write_file(out, report, inputs=inputs)}")


def _decide_command(approve_it: bool) -> click.Command:
    verb = "approve" if approve_it else "reject"

    @omkoppel_cmd.command(verb)
    @click.argument("proposals", type=int, nargs=-1, required=True)
    @click.option(
        "--reason",
        default=None,
        help="Why. Required to reject, and to approve a move that breaks a hard criterion.",
    )
    @click.option("--dry-run", is_flag=True, help="Check the decision; write nothing.")
    @_ledger_options
    def decide_cmd(
        ledger: Ledger, proposals: tuple[int, ...], reason: str | None, dry_run: bool
    ) -> None:
        from coupler.ledger.omkoppeling import decide

        report = decide(ledger, list(proposals), approve=approve_it, reason=reason, dry_run=dry_run)
        for r in report.to_dict("records"):
            click.echo(
                f"omkoppeling {r['proposal']}: {r['decision']} "
                f"{r['old_municipality']} -> {r['new_municipality']}"
                + (f"; breaks {r['breaks']} (reason recorded)" if r["breaks"] else "")
                + (" [dry run]" if dry_run else "")
            )

    decide_cmd.__doc__ = (
        f"{verb.capitalize()} omkoppeling proposals (ids from `coupler omkoppel --requests`)."
    )
    return decide_cmd


_decide_command(True)
_decide_command(False)


# --- Kansrijke Koppeling ---------------------------------------------------------------------


@click.group()
def kansrijk() -> None:
    """Kansrijke Koppeling: provisional couplings before the permit."""


@kansrijk.command("propose")
@click.option(
    "--households",
    type=click.Path(dir_okay=False),
    required=True,
    help="Cases in procedure, with grant_probability and/or nationality columns.",
)
@click.option(
    "--criteria", type=click.Path(dir_okay=False), default=None, help="Hard criteria table."
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Policy TOML whose [kansrijk] table sets nationalities, min_probability, "
    "contra_indications and grant_probability [default: the --policy file's].",
)
@click.option(
    "--policy", "policy_file", type=click.Path(dir_okay=False), default=None, help="Policy TOML."
)
@_ledger_options
def kansrijk_propose(
    ledger: Ledger,
    households: str,
    criteria: str | None,
    rules_file: str | None,
    policy_file: str | None,
) -> None:
    """Plan provisional couplings and reserve probability x persons of quota for each."""
    from coupler.ledger.kansrijk import propose_provisional
    from coupler.policy import KansrijkRules

    policy = Policy.from_file(policy_file) if policy_file else Policy()
    rules = KansrijkRules.from_file(rules_file) if rules_file else policy.kansrijk
    report = propose_provisional(ledger, households, criteria, rules=rules, policy=policy)
    active = report[report["status"] == "active"]
    click.echo(
        f"provisional couplings: {len(active)} households, {int(active['persons'].sum())} persons, "
        f"reserving {active['reserved'].sum():.2f} expected persons; "
        f"below threshold {int((report['status'] == 'below-threshold').sum())}, "
        f"not kansrijk {int((report['status'] == 'not-kansrijk').sum())}, "
        f"contra-indication {int((report['status'] == 'contra-indication').sum())}, "
        f"no room {int((report['status'] == 'no-room').sum())}"
    )


@kansrijk.command("permit")
@click.option(
    "--decisions",
    type=click.Path(dir_okay=False),
    required=True,
    help="Table with household_id and decision (granted | refused, or verleend | geweigerd).",
)
@_ledger_options
def kansrijk_permit(ledger: Ledger, decisions: str) -> None:
    """Confirm, re-plan or release provisional couplings when the IND decides."""
    from coupler.ledger.kansrijk import permit

    report = permit(ledger, decisions)
    counts = report["outcome"].value_counts().to_dict()
    click.echo("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if "batch" in report and report["batch"].notna().any():
        click.echo(
            f"re-planned households are proposed in batch {int(report['batch'].dropna().iloc[0])}; "
            "approve it with `coupler batch approve`"
        )


@kansrijk.command("list")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the list (CSV) here.",
)
@_ledger_options
def kansrijk_list(ledger: Ledger, out: Path | None) -> None:
    """Show every provisional coupling and where it stands (what a permit would do now)."""
    from coupler.ledger.kansrijk import list_provisional

    rows = list_provisional(ledger)
    for r in rows.itertuples(index=False):
        click.echo(
            f"{r.id:>4} {r.household_id:<14} {r.persons:>2} persons  p={r.probability:.2f}  "
            f"{r.municipality}  {r.stands}"
        )
    click.echo(f"{len(rows)} provisional couplings")
    if out is not None:
        from coupler.rundir import write_file

        write_file(out, rows)
        click.echo(f"wrote {out}")


@kansrijk.command("update")
@click.option(
    "--households",
    type=click.Path(dir_okay=False),
    required=True,
    help="The changed households (every field), e.g. a new size after a birth or reunification.",
)
@click.option(
    "--criteria",
    type=click.Path(dir_okay=False),
    default=None,
    help="Their new hard criteria (replace the stored ones) [default: keep the stored ones].",
)
@click.option("--reason", default=None, help="Why, for the audit log.")
@_ledger_options
def kansrijk_update(
    ledger: Ledger, households: str, criteria: str | None, reason: str | None
) -> None:
    """Record a household that changed before the permit; its reservation follows its size."""
    from coupler.ledger.batches import source_rows
    from coupler.ledger.kansrijk import update_provisional

    report = update_provisional(ledger, households, criteria, reason=reason)
    # By the row of the file, not the household id (no personal value on the screen).
    rows = source_rows(households, len(report))
    for row, r in zip(rows, report.itertuples(index=False), strict=True):
        click.echo(
            f"row {row}: {r.persons_before} -> {r.persons} persons, "
            f"{r.criteria_before} -> {r.criteria} criteria"
        )


COMMANDS = [period, batch, ledger_group, omkoppel_cmd, kansrijk]
