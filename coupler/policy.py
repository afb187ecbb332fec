"""The policy: every weight, radius and rule switch, loaded from a TOML file.

Each TOML table maps onto one small frozen dataclass; a missing table or key means its default, an
unknown key or a bad value is an error in one message shape:
``policy [hard] radius_km must be > 0; got -5``. An empty file equals ``Policy()``.

Example (all defaults)::

    [hard]
    radius_km = 50.0                 # hard criteria: municipality within this distance
    work_min_hours = 8.0             # work is hard only at >= this many hours per week ...
    work_requires_contract = true    # ... with a signed contract ...
    work_requires_payslip = true     # ... and the latest payslip seen
    priority = ["medical", "family", "work", "study"]  # on conflict the last yields first
    shortage_order = ["broken_persons"]  # under shortage minimise these first, in this order:
                                     # "broken_persons" (default), "broken_work" (jobs kept),
                                     # "broken_households"; at most two, persons break ties

    [weights]                        # soft criteria, each part scored in [0, 1]
    labour = 1.0                     # labour demand for the members' sectors in the region
    network = 1.0                    # near the household's network
    ambition = 1.0                   # preferred municipality or region
    azc = 0.5                        # close to the current azc
    participation = 1.0              # supplied participation score (--scores)
    work_soft = 0.5                  # close to a job that does not qualify as hard

    [soft]
    aggregation = "mean"             # members' labour parts: "sum" | "mean" | "any" (best member)
    azc_km = 50.0                    # azc proximity falls to 0 at this distance
    network_km = 25.0                # network score falls to 0 at this distance
    ambition_km = 25.0               # preferred-municipality score falls to 0 at this distance

    [quota]
    tolerance = 0.0                  # persons <= remaining quota * (1 + tolerance)
    fill_balance = 0.5               # penalty per person short of the fill target (0 = off): the
                                     # target is floor(national fill ratio x remaining quota), the
                                     # municipality's fair share of this batch in whole persons
    large_household_size = 5         # households of this size or more need a large dwelling
    # [[quota.bands]]                # optional hard bands on the fill of a province or region
    # level = "province"             # "province" | "labour_market_region"
    # name = "Utrecht"
    # min_fill = 0.9                 # assigned / remaining quota, scaled by the national fill
    # max_fill = 1.1

    [solver]
    backend = "highs"                # "highs" | "ortools" | "cbc"
    method = "auto"                  # "auto" (flow + repair, MIP when side constraints) | "mip"
    time_limit = 60.0                # seconds
    gap = 0.001                      # relative gap target
    seed = 0
    polish_time = 10.0               # at most this many seconds of MIP when the fast plan misses the gap (0 = off)
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

from coupler.errors import PolicyError, Problem
from coupler.schema import BACKEND_NAMES, CRITERION_KINDS

Aggregation = Literal["sum", "mean", "any"]
#: What the first stages minimise under shortage (policy [hard] shortage_order).
SHORTAGE_MEASURES: tuple[str, ...] = ("broken_persons", "broken_work", "broken_households")
Backend = Literal["highs", "ortools", "cbc"]
Method = Literal["auto", "mip"]
BandLevel = Literal["province", "labour_market_region"]


@dataclass(frozen=True)
class HardRules:
    """Hard criteria (DOMAIN.md section 3)."""

    radius_km: float = 50.0
    work_min_hours: float = 8.0
    work_requires_contract: bool = True
    work_requires_payslip: bool = True
    priority: tuple[str, ...] = ("medical", "family", "work", "study")
    shortage_order: tuple[str, ...] = ("broken_persons",)


@dataclass(frozen=True)
class Weights:
    """Weights of the soft criteria in the objective (DOMAIN.md section 4)."""

    labour: float = 1.0
    network: float = 1.0
    ambition: float = 1.0
    azc: float = 0.5
    participation: float = 1.0
    work_soft: float = 0.5


@dataclass(frozen=True)
class SoftRules:
    """How the soft parts are scored."""

    aggregation: Aggregation = "mean"
    azc_km: float = 50.0
    network_km: float = 25.0
    ambition_km: float = 25.0


@dataclass(frozen=True)
class Band:
    """A hard band on the fill of a province or labour-market region."""

    level: BandLevel
    name: str
    min_fill: float = 0.0
    max_fill: float = math.inf


@dataclass(frozen=True)
class QuotaRules:
    """Quota use and the fill balance between municipalities."""

    tolerance: float = 0.0
    fill_balance: float = 0.5
    large_household_size: int = 5
    bands: tuple[Band, ...] = ()


@dataclass(frozen=True)
class SolveParams:
    """How the engine solves: backend, method and limits; the one way solver settings come in.

    A policy file's ``[solver]`` table maps onto it (``Policy.solver``); callers that want other
    settings pass their own to :func:`coupler.engine.solve`, e.g.
    ``dataclasses.replace(policy.solver, time_limit=20)``.
    """

    backend: Backend = "highs"
    method: Method = "auto"
    time_limit: float = 60.0
    gap: float = 0.001
    seed: int = 0
    polish_time: float = 10.0


@dataclass(frozen=True)
class Policy:
    """A complete policy. Make variants with :func:`dataclasses.replace` or :meth:`with_`."""

    hard: HardRules = field(default_factory=HardRules)
    weights: Weights = field(default_factory=Weights)
    soft: SoftRules = field(default_factory=SoftRules)
    quota: QuotaRules = field(default_factory=QuotaRules)
    solver: SolveParams = field(default_factory=SolveParams)

    def __post_init__(self) -> None:
        problems = _check(self, "<policy>")
        if problems:
            raise PolicyError(problems)

    @classmethod
    def from_file(cls, path: str | Path) -> Policy:
        """Read a policy TOML file; raises :class:`PolicyError` naming every bad key or value."""
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PolicyError(Problem(path.name, "file not found")) from None
        except UnicodeDecodeError:
            raise PolicyError(Problem(path.name, "is not UTF-8 text")) from None
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(Problem(path.name, f"is not valid TOML: {exc}")) from None
        return cls.from_dict(raw, source=path.name)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<policy>") -> Policy:
        """Build a policy from nested dicts as TOML gives them."""
        problems: list[Problem] = []
        sections: dict[str, Any] = {}
        known = {f.name: f for f in fields(cls)}
        for key, value in raw.items():
            if key not in known:
                problems.append(
                    Problem(source, f"unknown table [{key}]; known: {', '.join(known)}")
                )
                continue
            if not isinstance(value, dict):
                problems.append(Problem(source, f"[{key}] must be a table"))
                continue
            sections[key] = _section(known[key].default_factory(), key, value, source, problems)  # type: ignore[misc]
        policy = object.__new__(cls)
        for name, f in known.items():
            object.__setattr__(policy, name, sections.get(name, f.default_factory()))  # type: ignore[misc]
        # Range checks run on the well-typed values too, so one run reports every problem.
        problems += _check(policy, source)
        if problems:
            raise PolicyError(problems)
        return policy

    def to_dict(self) -> dict[str, Any]:
        """The policy as nested plain dicts (TOML-able, and recorded in summary.json)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            section = getattr(self, f.name)
            d = {}
            for sf in fields(section):
                v = getattr(section, sf.name)
                if sf.name == "bands":
                    v = [
                        {k: getattr(b, k) for k in ("level", "name", "min_fill", "max_fill")}
                        for b in v
                    ]
                elif isinstance(v, tuple):
                    v = list(v)
                d[sf.name] = v
            out[f.name] = d
        return out

    def with_(self, **changes: dict[str, Any]) -> Policy:
        """A copy with some keys of some tables changed, e.g. ``p.with_(hard={"radius_km": 30})``."""
        raw = self.to_dict()
        for section, values in changes.items():
            raw.setdefault(section, {}).update(values)
        return Policy.from_dict(raw)


def _section(
    default: Any, name: str, values: dict[str, Any], source: str, problems: list[Problem]
) -> Any:
    known = {f.name: f for f in fields(default)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            problems.append(
                Problem(source, f"unknown key [{name}] {key}; known: {', '.join(known)}")
            )
            continue
        expected = getattr(default, key)
        where = f"policy [{name}] {key}"
        if key == "bands":
            bands = []
            if not isinstance(value, list):
                problems.append(
                    Problem(source, f"{where} must be an array of tables; got {value!r}")
                )
                continue
            for i, b in enumerate(value):
                unknown = (
                    set(b) - {"level", "name", "min_fill", "max_fill"}
                    if isinstance(b, dict)
                    else None
                )
                if not isinstance(b, dict) or unknown or "level" not in b or "name" not in b:
                    problems.append(
                        Problem(
                            source,
                            f"{where}[{i}] must have level, name and optional min_fill, max_fill"
                            + (f"; unknown keys {sorted(unknown)}" if unknown else ""),
                        )
                    )
                    continue
                try:
                    bands.append(
                        Band(
                            str(b["level"]),
                            str(b["name"]),
                            float(b.get("min_fill", 0.0)),  # type: ignore[arg-type]
                            float(b.get("max_fill", math.inf)),
                        )
                    )
                except (TypeError, ValueError):
                    problems.append(
                        Problem(source, f"{where}[{i}] min_fill/max_fill must be numbers")
                    )
            kwargs[key] = tuple(bands)
        elif isinstance(expected, bool):
            if not isinstance(value, bool):
                problems.append(Problem(source, f"{where} must be true or false; got {value!r}"))
            else:
                kwargs[key] = value
        elif isinstance(expected, int) and not isinstance(expected, bool):
            if isinstance(value, bool) or not isinstance(value, int):
                problems.append(Problem(source, f"{where} must be a whole number; got {value!r}"))
            else:
                kwargs[key] = value
        elif isinstance(expected, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                problems.append(Problem(source, f"{where} must be a number; got {value!r}"))
            else:
                kwargs[key] = float(value)
        elif isinstance(expected, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(
                    Problem(source, f"{where} must be a list of strings; got {value!r}")
                )
            else:
                kwargs[key] = tuple(value)
        else:
            if not isinstance(value, str):
                problems.append(Problem(source, f"{where} must be a string; got {value!r}"))
            else:
                kwargs[key] = value
    return replace(default, **kwargs)


def _check(policy: Policy, source: str) -> list[Problem]:
    """Range and vocabulary checks shared by the constructor and the file reader."""
    p: list[Problem] = []

    def bad(section: str, key: str, rule: str, got: Any) -> None:
        p.append(Problem(source, f"policy [{section}] {key} must be {rule}; got {got!r}"))

    h, w, s, q, sv = policy.hard, policy.weights, policy.soft, policy.quota, policy.solver
    if not (h.radius_km > 0 and math.isfinite(h.radius_km)):
        bad("hard", "radius_km", "> 0", h.radius_km)
    if not h.work_min_hours >= 0:
        bad("hard", "work_min_hours", ">= 0", h.work_min_hours)
    order = h.shortage_order
    if not (
        1 <= len(order) <= 2
        and len(set(order)) == len(order)
        and all(k in SHORTAGE_MEASURES for k in order)
    ):
        bad(
            "hard",
            "shortage_order",
            f"one or two distinct of {list(SHORTAGE_MEASURES)}",
            list(order),
        )
    if sorted(h.priority) != sorted(CRITERION_KINDS):
        bad("hard", "priority", f"an ordering of {list(CRITERION_KINDS)}", list(h.priority))
    for f in fields(w):
        v = getattr(w, f.name)
        if not (v >= 0 and math.isfinite(v)):
            bad("weights", f.name, ">= 0", v)
    if s.aggregation not in get_args(Aggregation):
        bad("soft", "aggregation", f"one of {list(get_args(Aggregation))}", s.aggregation)
    for key in ("azc_km", "network_km", "ambition_km"):
        if not getattr(s, key) > 0:
            bad("soft", key, "> 0", getattr(s, key))
    if not (q.tolerance >= 0 and math.isfinite(q.tolerance)):
        bad("quota", "tolerance", ">= 0", q.tolerance)
    if not (q.fill_balance >= 0 and math.isfinite(q.fill_balance)):
        bad("quota", "fill_balance", ">= 0", q.fill_balance)
    if q.large_household_size < 2:
        bad("quota", "large_household_size", ">= 2", q.large_household_size)
    for i, b in enumerate(q.bands):
        if b.level not in get_args(BandLevel):
            bad("quota", f"bands[{i}].level", f"one of {list(get_args(BandLevel))}", b.level)
        if not (0 <= b.min_fill <= b.max_fill):
            bad("quota", f"bands[{i}]", "0 <= min_fill <= max_fill", (b.min_fill, b.max_fill))
    if sv.backend not in BACKEND_NAMES:
        bad("solver", "backend", f"one of {list(BACKEND_NAMES)}", sv.backend)
    if sv.method not in get_args(Method):
        bad("solver", "method", f"one of {list(get_args(Method))}", sv.method)
    if not sv.time_limit > 0:
        bad("solver", "time_limit", "> 0", sv.time_limit)
    if not 0 <= sv.gap < 1:
        bad("solver", "gap", "in [0, 1)", sv.gap)
    if not sv.polish_time >= 0:
        bad("solver", "polish_time", ">= 0", sv.polish_time)
    if sv.seed < 0:
        bad("solver", "seed", ">= 0", sv.seed)
    return p
