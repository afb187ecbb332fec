"""Files -> validated canonical tables.

* :mod:`coupler.io.read`   -- ``.csv``/``.xlsx``/``.parquet`` -> a frame of stripped strings
  (:func:`read_table`; workbook sheets: ``sheet=`` or ``book.xlsx#Sheet``);
* :mod:`coupler.io.cells`  -- cell checkers (:class:`Checker`) and the one municipality and
  region lookup (:class:`Places`), for every reader of a table, including the ledger's;
* :mod:`coupler.io.tables` -- the ``load_*`` loaders of the input tables;
* :mod:`coupler.io.rules`  -- one TOML table -> frozen dataclass reader (:func:`read_rules`).

The input rules (columns, ranges, ``--ignore-columns``, ``--sheet``) are in docs/inputs.md.
"""

from __future__ import annotations

from coupler.io.cells import Checker, Places, resolve_municipalities
from coupler.io.read import read_table, split_sheet
from coupler.io.rules import limit, read_rules, read_toml
from coupler.io.tables import (
    load_criteria,
    load_demand,
    load_distances,
    load_households,
    load_locks,
    load_municipalities,
    load_scores,
)

__all__ = [
    "Checker",
    "Places",
    "limit",
    "load_criteria",
    "load_demand",
    "load_distances",
    "load_households",
    "load_locks",
    "load_municipalities",
    "load_scores",
    "read_rules",
    "read_table",
    "read_toml",
    "resolve_municipalities",
    "split_sheet",
]
