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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from coupler.ledger import (
    HousingRules,
    Ledger,
    LedgerError,
    Pacing,
    approve,
    audit_trail,
    backup,
    batch_table,
    close_period,
    open_period,
    period_status,
    progress_table,
    propose,
)
from coupler.ledger.batches import write_export
from coupler.policy import Policy


def _ledger_options(fn: Callable[..., Any]) -> Callable[..., Any]:
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
        ledger = Ledger.open(db, db_url=db_url, user=user)
        try:
            return fn(ledger, **kwargs)
        finally:
            ledger.close()

    return wrapper


def _say(message: str) -> None:
    click.echo(message, err=True)


def _echo_json(data: dict[str, Any]) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


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
    "--total", type=int, required=True, help="National total for the half year, in persons."
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
@_ledger_options
def period_open(
    ledger: Ledger,
    name: str,
    total: int,
    from_previous: bool,
    scenario: str | None,
    reason: str | None,
) -> None:
    """Open period NAME (e.g. 2025-H1) and divide --total over the municipalities.

    \b
    Examples:
      coupler period open 2025-H1 --total 17600
      coupler period open 2025-H2 --total 23000 --from-previous
    """
    s = open_period(
        ledger, name, total, from_previous=from_previous, scenario=scenario, reason=reason
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
@_ledger_options
def period_close(ledger: Ledger, reason: str | None, housing_rules: str | None) -> None:
    """Close the open period and fix each municipality's carry for the next one.

    The carry counts persons at coupling, or at housing when the housing rules say
    count_at = "housing" (persons housed within the period's dates).
    """
    s = close_period(ledger, reason=reason, rules=_housing_rules(housing_rules))
    click.echo(
        f"closed {s['period']}: coupled {s['coupled']:,} of {s['target']:,}, counted at "
        f"{s['count_at']} {s['counted']:,}; carry {s['carry']:+,} "
        f"(deficit {s['deficit']:,}, surplus {s['surplus']:,})"
    )
    if s["expired_batches"]:
        click.echo(f"expired unapproved batches: {', '.join(map(str, s['expired_batches']))}")


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
    month: int | None,
    pace_slack: float,
    no_pacing: bool,
    out: Path | None,
) -> None:
    """Propose a coupling of a batch against the open period's remaining quota.

    Re-running the same proposal (same files, policy and month) changes nothing.
    """
    if pace_slack < 0:
        raise LedgerError(f"--pace-slack must be >= 0; got {pace_slack}")
    policy = Policy.from_file(policy_file) if policy_file else Policy()
    p = propose(
        ledger,
        households,
        criteria,
        policy=policy,
        scores=scores,
        locks=locks,
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
        from coupler.output import write_atomically

        write_atomically(out.parent if str(out.parent) else Path("."), {out.name: p.result.plan})
        click.echo(f"wrote {out}")


@batch.command("show")
@click.argument("batch_id", type=int, required=False)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the batch's couplings (CSV) here.",
)
@_ledger_options
def batch_show(ledger: Ledger, batch_id: int | None, out: Path | None) -> None:
    """Show a batch [default: the latest proposed, else the latest approved]."""
    b, rows = batch_table(ledger, batch_id)
    pacing = json.loads(b.pacing or "{}")
    click.echo(
        f"batch {b.id} ({b.status}), month {b.month}, proposed {b.created_at} by {b.created_by}"
    )
    click.echo(f"households {b.households:,}, persons {b.persons:,}; pacing {pacing}")
    if len(rows):
        by = rows.groupby("status")["persons"].agg(["count", "sum"])
        for status, r in by.iterrows():
            click.echo(f"  {status:<10} {int(r['count']):>6} households {int(r['sum']):>7} persons")
        broken = rows[rows["broken"].notna()]
        click.echo(f"  breaking a hard criterion: {len(broken)} households")
        changed = rows[(rows["status"] == "approved") & (rows["proposed"] != rows["municipality"])]
        click.echo(f"  overridden or re-coupled:  {len(changed)} households")
    if out is not None:
        from coupler.output import write_atomically

        write_atomically(out.parent if str(out.parent) else Path("."), {out.name: rows})
        click.echo(f"wrote {out}")


def _parse_override(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values:
        household, sep, code = v.partition("=")
        if not sep or not household.strip() or not code.strip():
            raise click.BadParameter(f"must look like HOUSEHOLD=GM0363; got '{v}'")
        out[household.strip()] = code.strip()
    return out


@batch.command("approve")
@click.argument("batch_id", type=int, required=False)
@click.option(
    "--override",
    multiple=True,
    callback=_parse_override,
    help="HOUSEHOLD=GMxxxx: couple this household elsewhere (needs --reason). Repeatable.",
)
@click.option(
    "--reason",
    default=None,
    help="Why: required for overrides and for couplings that break a hard criterion.",
)
@_ledger_options
def batch_approve(
    ledger: Ledger, batch_id: int | None, override: dict[str, str], reason: str | None
) -> None:
    """Approve a proposed batch [default: the latest], charging its quota."""
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
    required=True,
    help="A .csv file (one level) or .xlsx workbook (sheets municipalities and provinces).",
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
def batch_export(ledger: Ledger, out: Path, level: str, name: str | None) -> None:
    """Export quota progress per municipality or province: quota, coupled, remaining."""
    if out.suffix.lower() not in (".csv", ".xlsx"):
        raise LedgerError(f"--out must end in .csv or .xlsx; got '{out.name}'")
    period_name, m, p = progress_table(ledger, name)
    write_export(out, m, p, level)
    click.echo(f"wrote {out} ({period_name})")


# --- ledger ----------------------------------------------------------------------------------


@click.group("ledger")
def ledger_group() -> None:
    """Back up and inspect the ledger."""


@ledger_group.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@_ledger_options
def ledger_backup(ledger: Ledger, path: Path) -> None:
    """Copy the ledger to PATH (.sqlite: a consistent SQLite copy; .json: a dump of every table)."""
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
        from coupler.output import write_atomically

        write_atomically(out.parent if str(out.parent) else Path("."), {out.name: a})
        click.echo(f"wrote {out}")
        return
    for r in a.tail(last).itertuples(index=False):
        why = f" -- {r.reason}" if r.reason else ""
        click.echo(f"{r.at} {r.who:<12} {r.command:<14} {r.action:<14} {r.subject or ''}{why}")


# --- omkoppeling ------------------------------------------------------------------------------


@click.command("omkoppel")
@click.option(
    "--requests",
    type=click.Path(dir_okay=False),
    required=True,
    help="Requests table (columns: docs/ledger.md, section Omkoppeling).",
)
@click.option(
    "--rules",
    "rules_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="TOML with an [omkoppeling] table: gate, radius_km, min_contract_months, "
    "excluded_job_types, bijstandsnorm per year [default: illustrative values].",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the decision report (CSV: pass/fail and reason per rule) here.",
)
@_ledger_options
def omkoppel_cmd(ledger: Ledger, requests: str, rules_file: str | None, out: Path | None) -> None:
    """Check a batch of omkoppeling requests and re-couple the eligible ones near their jobs.

    Every rule is checked per request (timing gate, job match, scarcity in the current region,
    signed contract, salary >= bijstandsnorm, >= 6 months, payslip seen, Reba paid, excluded job
    types). Eligible households are re-coupled jointly within 50 km of the job; the quota moves
    from the old municipality to the new one; every other coupling stays.
    """
    from coupler.ledger.omkoppeling import RULES, OmkoppelRules, omkoppel

    rules = OmkoppelRules.from_file(rules_file) if rules_file else OmkoppelRules()
    report = omkoppel(ledger, requests, rules)
    for r in report.to_dict("records"):
        failed = [f"{k} ({r[k + '_reason']})" for k in RULES if r[k] == "fail"]
        where = (
            f" -> {r['new_municipality']} ({r['distance_km']} km from the job)"
            if r["decision"] == "recoupled"
            else ""
        )
        click.echo(
            f"request {r['request_id']}: {r['decision']}{where}"
            + (f"; failed: {'; '.join(failed)}" if failed else "")
        )
    counts = report["decision"].value_counts().to_dict()
    click.echo("decisions: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if out is not None:
        from coupler.output import write_atomically

        write_atomically(out.parent if str(out.parent) else Path("."), {out.name: report})
        click.echo(f"wrote {out}")


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
    help="TOML with a [kansrijk] table: min_probability, grant_probability by nationality.",
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
    from coupler.ledger.kansrijk import KansrijkRules, propose_provisional

    rules = KansrijkRules.from_file(rules_file) if rules_file else KansrijkRules()
    policy = Policy.from_file(policy_file) if policy_file else Policy()
    report = propose_provisional(ledger, households, criteria, rules=rules, policy=policy)
    active = report[report["status"] == "active"]
    click.echo(
        f"provisional couplings: {len(active)} households, {int(active['persons'].sum())} persons, "
        f"reserving {active['reserved'].sum():.2f} expected persons; "
        f"below threshold {int((report['status'] == 'below-threshold').sum())}, "
        f"no room {int((report['status'] == 'no-room').sum())}"
    )


@kansrijk.command("permit")
@click.option(
    "--decisions",
    type=click.Path(dir_okay=False),
    required=True,
    help="Table with household_id and decision (granted | refused).",
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


COMMANDS = [period, batch, ledger_group, omkoppel_cmd, kansrijk]
