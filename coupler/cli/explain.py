"""``coupler explain``: why a household was coupled where it was, from a plan's output folder."""

from __future__ import annotations

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
def explain(household: str, why_not: str | None, out: Path, as_json: bool) -> None:
    """Explain the coupling of HOUSEHOLD (a pseudonymous id such as H000017).

    Shows the municipality, each hard criterion with its distance (met or broken, with the
    cause), the score parts (weight x part), the best alternative and, with --why-not, why
    another municipality was not chosen: a ban, a hard criterion it would break, its score
    parts, and whether it had room left. The model is rebuilt from the inputs saved in OUT.
    """
    model, result, summary = load_run(out)
    if summary.get("checksums") and summary["checksums"] != model.instance.checksum():
        click.echo("warning: the saved inputs differ from those recorded in summary.json", err=True)
    expl = explain_household(model, result, household, why_not=why_not)
    if as_json:
        click.echo(dumps(expl, indent=2))
    else:
        click.echo(render_household(expl))


COMMANDS = [explain]
