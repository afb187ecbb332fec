"""``python -m coupler``: the same command line as the ``coupler`` script."""

from coupler.cli import main

main()
