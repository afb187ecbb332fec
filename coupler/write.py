"""Write a solved plan to an output folder, all files or none.

:func:`write_result` writes the plan tables, ``summary.json``, the policy and the validated inputs
(``inputs/*.parquet``) in one atomic step (:func:`coupler.output.write_atomically`). The inputs make
the folder self-contained: ``coupler explain`` rebuilds the model from them without the original
paths. Every file and column is documented in docs/outputs.md.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from coupler.explain import INPUT_TABLES, explain_broken
from coupler.instance import Instance
from coupler.model import CouplingModel, build_model
from coupler.output import Content, write_atomically
from coupler.policy import Policy
from coupler.result import Result, group_table

__all__ = ["FORMATS", "TABLES", "policy_toml", "versions", "write_result"]

#: Table formats of the plan tables (inputs are always Parquet).
FORMATS: tuple[str, ...] = ("csv", "xlsx")

#: The plan tables, in the order they are written.
TABLES: tuple[str, ...] = (
    "plan",
    "plan_criteria",
    "municipalities",
    "provinces",
    "regions",
    "conflicts",
    "broken",
)

_PACKAGES = ("coupler", "numpy", "pandas", "scipy", "highspy", "ortools", "pulp", "networkx")


def versions() -> dict[str, str]:
    """Versions of Python and of the packages a plan depends on."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def policy_toml(policy: Policy) -> str:
    """The policy as a TOML file that :meth:`Policy.from_file` reads back to an equal policy."""
    header = "# The policy of this run; `coupler solve --policy policy.toml` reuses it.\n\n"
    return header + policy.to_toml()


def _finite(obj: Any) -> Any:
    """JSON-safe copy: non-finite floats become null, numpy scalars plain numbers."""
    if isinstance(obj, Mapping):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _counts(model: CouplingModel, result: Result, broken: pd.DataFrame) -> dict[str, int]:
    plan = result.plan
    t = model.hard.table
    return {
        "municipalities": model.n_municipalities,
        "households": len(plan),
        "persons": int(plan["persons"].sum()),
        "criteria": len(t),
        "hard_criteria": int((t["hard"] & ~t["yielded"]).sum()),
        "households_with_hard_criteria": int(model.has_hard.sum()),
        "broken_households": int((broken["cause_kind"] != "conflict").sum()),
        "conflict_yielded_unmet_households": int((broken["cause_kind"] == "conflict").sum()),
        "broken_persons": result.broken_persons,
        "uncoupled_households": int((~plan["coupled"]).sum()),
        "uncoupled_persons": result.uncoupled_persons,
        "conflicts": len(result.conflicts),
    }


def _parquet(frame: pd.DataFrame) -> Content:
    return lambda path: frame.to_parquet(path, index=False)


def write_result(
    result: Result,
    model_or_instance: CouplingModel | Instance,
    out_dir: str | Path,
    fmt: str = "csv",
    extra_summary: Mapping[str, Any] | None = None,
    *,
    policy: Policy | None = None,
) -> list[Path]:
    """Write ``result`` and everything needed to explain it into ``out_dir`` atomically.

    Parameters
    ----------
    result
        The solved plan.
    model_or_instance
        The model it was solved on, or its instance (the model is then rebuilt with ``policy``).
    out_dir
        Output folder; created if needed. Existing files of the same names are replaced.
    fmt
        ``"csv"`` or ``"xlsx"`` for the plan tables.
    extra_summary
        Extra keys merged into ``summary.json`` (e.g. phase times, generator settings).
    policy
        The policy, when ``model_or_instance`` is an instance [default: ``Policy()``].

    Returns
    -------
    list[Path]
        The files written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}; got {fmt!r}")
    if isinstance(model_or_instance, CouplingModel):
        model = model_or_instance
    else:
        model = build_model(model_or_instance, policy or Policy())
    inst = model.instance
    broken = explain_broken(model, result)
    tables: dict[str, pd.DataFrame] = {
        "plan": result.plan,
        "plan_criteria": result.criteria,
        "municipalities": result.municipalities,
        "provinces": group_table(result.municipalities, "province"),
        "regions": group_table(result.municipalities, "labour_market_region"),
        "conflicts": result.conflicts,
        "broken": broken,
    }
    files: dict[str, Content] = {f"{name}.{fmt}": tables[name] for name in TABLES}

    summary: dict[str, Any] = dict(result.to_json())
    summary.update(
        {
            "seed": model.policy.solver.seed,
            "checksums": inst.checksum(),
            "sources": dict(inst.sources),
            "versions": versions(),
            "counts": _counts(model, result, broken),
            "policy": model.policy.to_dict(),
            "format": fmt,
        }
    )
    summary.update(dict(extra_summary or {}))
    files["summary.json"] = _finite(summary)
    files["policy.toml"] = policy_toml(model.policy)

    for name in INPUT_TABLES:
        frame = getattr(inst, name)
        if frame is not None:
            files[f"inputs/{name}.parquet"] = _parquet(frame)
    assignment = result.plan[["household_id", "municipality"]].reset_index(drop=True)
    files["inputs/assignment.parquet"] = _parquet(assignment)
    return write_atomically(out_dir, files)
