"""``coupler explain``: why a household was coupled where it was, from a plan's output folder
or (``--db``, ``--batch``) from a ledger batch."""

from __future__ import annotations

import json
from pathlib import Path

import click

from coupler.explain import explain_household, render_household
from coupler.jsonsafe import dumps
from coupler.rundir import load_run


@click.command()
@click.argument("household")
@click.option(
    "--why-not",
    "why_not",
    metavar="GMxxxx",
    help="A municipality (code or exact name) to compare with the chosen one.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Output folder written by `coupler solve`.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Explain a coupling of a ledger batch instead of a run folder.",
)
@click.option("--db-url", default=None, help="SQLAlchemy URL of the ledger instead of --db.")
@click.option(
    "--batch",
    "batch_id",
    type=int,
    default=None,
    help="Ledger batch [default: the latest proposed, else the latest approved].",
)
def explain(
    household: str,
    why_not: str | None,
    out: Path,
    as_json: bool,
    db: Path | None,
    db_url: str | None,
    batch_id: int | None,
) -> None:
    """Explain the coupling of HOUSEHOLD (a pseudonymous id such as H000017).

    Shows the municipality, each hard criterion with its distance (met or broken, with the
    cause), the score parts (weight x part), the best alternative and, with --why-not, why
    another municipality was not chosen: a ban, a hard criterion it would break, its score
    parts, and whether it had room left. The model is rebuilt from the inputs saved in OUT.
    """
    if db is not None or db_url is not None or batch_id is not None:
        _explain_ledger(household, db, db_url, batch_id, as_json)
        return
    model, result, summary = load_run(out)
    if summary.get("checksums") and summary["checksums"] != model.instance.checksum():
        click.echo("warning: the saved inputs differ from those recorded in summary.json", err=True)
    expl = explain_household(model, result, household, why_not=why_not)
    if as_json:
        click.echo(dumps(expl, indent=2))
    else:
        click.echo(render_household(expl))


def _explain_ledger(
    household: str, db: Path | None, db_url: str | None, batch_id: int | None, as_json: bool
) -> None:
    """A ledger batch's stored explanation of one coupling, by name and with reasons."""
    from coupler.ledger import Ledger, batch_table
    from coupler.ledger.review import household_view

    ledger = Ledger.open(db, db_url=db_url, create=False)
    try:
        if batch_id is None:
            batch_id = int(batch_table(ledger, None)[0].id)
        view = household_view(ledger, batch_id, household.strip(), None)
    finally:
        ledger.close()
    c, d = view["coupling"], view["detail"]
    if as_json:
        click.echo(json.dumps({"coupling": c, "detail": d}, indent=2, default=str))
        return
    lines = [
        f"household {c['household_id']} ({c['persons']} persons), batch {batch_id} "
        f"({view['batch'].status})",
        f"  coupled to {c['current_name'] or 'nothing'}"
        + (f" (proposed {c['proposed_name']})" if c["current"] != c["proposed"] else "")
        + (f"; azc {c['azc_name']}" if c.get("azc_name") else ""),
    ]
    if c.get("override_reason") or c.get("reason"):
        lines.append(f"  reason: {c.get('override_reason') or c.get('reason')}")
    if d.get("criteria"):
        lines.append("  criteria:")
        for x in d["criteria"]:
            dist = "-" if x["distance_km"] is None else f"{x['distance_km']} km"
            lines.append(
                f"    {x['kind']:<8} {x['criterion_municipality_name']}: {dist} -> {x['state']}"
            )
    else:
        lines.append("  no hard criteria")
    parts = {k: v for k, v in (d.get("score_parts") or {}).items() if v}
    lines.append(
        f"  score {c['score'] or 0:.4f}"
        + (" = " + " + ".join(f"{k} {v:.4f}" for k, v in parts.items()) if parts else "")
    )
    why = {
        "breaks": "it breaks a hard criterion",
        "no_room": "it has no room",
        "lower_score": "its score is lower",
        "fill_balance": "the fill balance of the quotas outweighs its higher score",
        "swap": "only a swap with other households would make room",
    }
    for a in d.get("alternatives", []):
        lines.append(
            f"  alternative {a['rank']}: {a['name']}, score {a['score']:.4f} "
            f"({a['score_diff']:+.4f}), room {a['room']}; not chosen: {why[a['why_not']]}"
            + (f" ({a['breaks']})" if a.get("breaks") else "")
        )
    click.echo("\n".join(lines))


COMMANDS = [explain]
