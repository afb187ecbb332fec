"""``coupler housing``: the follow-up after a coupling (dwelling offered, housed, refused,
inburgering started), the realised taakstelling and the overdue list (coupler.ledger.housing)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from coupler.cli.ledger import _date_option as _date
from coupler.cli.ledger import _echo_json, _housing_rules, _ledger_options
from coupler.ledger import Ledger
from coupler.ledger.housing import (
    EVENTS,
    import_events,
    overdue,
    realised_taakstelling,
    record_event,
)

_RULES_HELP = "TOML with a [housing] table: offer_weeks, count_at [default: 10 weeks, coupling]."


@click.group()
def housing() -> None:
    """Follow up couplings: dwelling offered, housed, refused, inburgering started."""


@housing.command("record")
@click.argument("household")
@click.argument("event", type=click.Choice(EVENTS))
@click.option("--municipality", required=True, help="Code of the reporting municipality (GMxxxx).")
@click.option("--date", "date", required=True, callback=_date, help="Date of the event.")
@click.option("--reason", default=None, help="Why (required for 'refused'), for the audit log.")
@_ledger_options
def housing_record(
    ledger: Ledger,
    household: str,
    event: str,
    municipality: str,
    date: dt.date,
    reason: str | None,
) -> None:
    """Record one EVENT (offered | housed | inburgering | refused) for HOUSEHOLD.

    \b
    Examples:
      coupler housing record H000017 offered --municipality GM0363 --date 2025-03-14
      coupler housing record H000017 refused --municipality GM0363 --date 2025-03-20 \\
          --reason "no large dwelling available"
    """
    record_event(ledger, household, municipality.strip().upper(), event, date, reason=reason)
    click.echo(f"recorded {event} on {date.isoformat()}")


@housing.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--reason", default=None, help="Note for the audit log.")
@_ledger_options
def housing_import(ledger: Ledger, file: str, reason: str | None) -> None:
    """Import a municipality's FILE (CSV/xlsx: household_id, municipality, event, date[, reason]).

    Every row is checked (known coupling to that municipality, dates not before the coupling nor
    in the future, housed only after an offer and once); one bad row and nothing is imported.
    """
    counts = import_events(ledger, file, reason=reason)
    click.echo(
        f"imported {sum(counts.values())} events: "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )


@housing.command("status")
@click.option(
    "--period", "name", default=None, help="Period [default: the open one, else the latest]."
)
@click.option(
    "--level",
    type=click.Choice(["municipality", "province", "labour_market_region"]),
    default="province",
    show_default=True,
)
@click.option("--municipality", default=None, help="Only this municipality (GMxxxx).")
@click.option(
    "--rules", "rules_file", type=click.Path(dir_okay=False), default=None, help=_RULES_HELP
)
@click.option("--as-of", "as_of", callback=_date, default=None, help="Date [default: today].")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write CSV here."
)
@_ledger_options
def housing_status(
    ledger: Ledger,
    name: str | None,
    level: str,
    municipality: str | None,
    rules_file: str | None,
    as_of: dt.date | None,
    out: Path | None,
) -> None:
    """Realised taakstelling: quota, coupled, housed, remaining and carry per level."""
    table = realised_taakstelling(
        ledger,
        name,
        level=level,
        municipality=municipality,
        rules=_housing_rules(rules_file),
        as_of=as_of,
    )
    if out is not None:
        from coupler.excel import safe_frame
        from coupler.rundir import write_file

        write_file(out, safe_frame(table))
        click.echo(f"wrote {out}")
        return
    click.echo(table.to_string(index=False))


@housing.command("overdue")
@click.option("--municipality", default=None, help="Only this municipality (GMxxxx).")
@click.option(
    "--rules", "rules_file", type=click.Path(dir_okay=False), default=None, help=_RULES_HELP
)
@click.option("--as-of", "as_of", callback=_date, default=None, help="Date [default: today].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_ledger_options
def housing_overdue(
    ledger: Ledger,
    municipality: str | None,
    rules_file: str | None,
    as_of: dt.date | None,
    as_json: bool,
) -> None:
    """Couplings without a dwelling offer after the offer term, longest waiting first."""
    rules = _housing_rules(rules_file)
    table = overdue(ledger, municipality=municipality, rules=rules, as_of=as_of)
    if as_json:
        _echo_json({"offer_weeks": rules.offer_weeks, "overdue": table.to_dict("records")})
        return
    if not len(table):
        click.echo(
            f"no coupling waits longer than {rules.offer_weeks:g} weeks for a dwelling offer"
        )
        return
    click.echo(table.to_string(index=False))


@housing.command("map")
@click.option(
    "--period", "name", default=None, help="Period [default: the open one, else the latest]."
)
@click.option(
    "--rules", "rules_file", type=click.Path(dir_okay=False), default=None, help=_RULES_HELP
)
@click.option("--as-of", "as_of", callback=_date, default=None, help="Date [default: today].")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("realised.html"),
    show_default=True,
    help="The HTML page to write.",
)
@_ledger_options
def housing_map(
    ledger: Ledger, name: str | None, rules_file: str | None, as_of: dt.date | None, out: Path
) -> None:
    """Write a map of the realised share (housed / target) per municipality as an HTML page."""
    from coupler.analysis import maps
    from coupler.analysis.report.markup import e, page
    from coupler.rundir import write_file

    rules = _housing_rules(rules_file)
    table = realised_taakstelling(ledger, name, rules=rules, as_of=as_of)
    late = overdue(ledger, rules=rules, as_of=as_of).groupby("municipality").size()
    values = {
        r.municipality: (r.housed / r.target if r.target > 0 else None)
        for r in table.itertuples(index=False)
    }
    tips = {
        r.municipality: f"{r.name} ({r.province}): housed {r.housed:,} of target {r.target:,} "
        f"(coupled {r.coupled:,}); overdue couplings {int(late.get(r.municipality, 0))}"
        for r in table.itertuples(index=False)
    }
    with ledger.read() as conn:
        period = ledger.period(conn, name)
    svg = maps.choropleth(
        values,
        maps.realised_scale(),
        tips=tips,
        cities=maps.largest_cities(_cities(period.scenario)),
        width=640,
        label="realised share per municipality",
    )
    body = (
        f'<p class="note">Persons housed within {e(period.name)} against quota + backlog, per '
        "municipality (grey: no target). Borders: Bron: CBS, Kadaster (PDOK), CC BY 4.0.</p>"
        f'<section id="maps">{svg}</section>'
    )
    html_page = page(f"coupler: realised taakstelling {period.name}", body)
    write_file(out, html_page)
    click.echo(f"wrote {out}")


def _cities(scenario: str | None) -> list[dict[str, object]]:
    from coupler.scenario import load_scenario

    return load_scenario(scenario, None)[0].to_dict("records")


COMMANDS = [housing]
