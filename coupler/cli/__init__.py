"""The ``coupler`` command line: a thin layer over the library.

Each module in this package defines click commands and lists them in ``COMMANDS``; they are
discovered here, so a new command never needs an edit to this file. A user's mistake
(:class:`coupler.errors.CouplerError`) is printed without a traceback and exits with code 2.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import click

from coupler.errors import CouplerError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CouplerError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted; nothing was written", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="coupler")
def main() -> None:
    """coupler: couple statushouders to Dutch municipalities.

    Proposes a coupling of each household to one municipality that respects the taakstelling
    (quotas) and every hard criterion (work, family, study, medical within 50 km), then weighs the
    soft criteria. A regievoerder reviews and approves; coupler only proposes and explains.

    Start with `coupler solve` (no arguments): the national reference scenario with a generated
    monthly batch.
    """


def _register() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)


_register()
