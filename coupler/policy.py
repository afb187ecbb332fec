"""The policy: every weight, radius and rule switch, loaded from a TOML file.

Each TOML table maps onto one small frozen dataclass; a missing table or key means its default, an
unknown key or a bad value is an error in one message shape:
``policy [hard] radius_km must be > 0; got -5``. An empty file equals ``Policy()``. The tables are
read by :func:`coupler.io.read_rules` (types, unknown keys); the ranges are checked here.

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

    [omkoppeling]                    # re-coupling near a new job (DOMAIN.md section 6)
    gate = "and"                     # "and": before housing AND before inburgering; "or": either
    radius_km = 0.0                  # the new municipality lies within this distance of the
                                     # job; 0: the [hard] radius_km the household's batch used
    min_contract_months = 6.0
    excluded_job_types = ["cleaning", "schoonmaak", ...]   # Dutch and English; word prefixes match
    [omkoppeling.bijstandsnorm]      # ILLUSTRATIVE net monthly amounts; set the official ones
    "2025" = 1400.0

    [kansrijk]                       # Kansrijke Koppeling (DOMAIN.md section 5)
    nationalities = ["syria", "yemen"]   # "evident kansrijk" nationalities (country policy)
    min_probability = 0.5            # and at least this grant probability
    contra_indications = ["article_1f", "national_security", "public_order"]  # a yes excludes
    [kansrijk.grant_probability]     # illustrative 2023 grant rates by nationality
    syria = 0.82

    [solver]
    backend = "highs"                # "highs" | "ortools" | "cbc"
    method = "auto"                  # "auto" (flow + repair, MIP when side constraints) | "mip"
    time_limit = 60.0                # seconds
    gap = 0.001                      # relative gap target
    seed = 0
    polish_time = 10.0               # > 0: polish with a node-limited MIP when the fast plan misses the gap (0 = off)
    bound_rounds = 0                 # > 0: when the gap stays open, tighten the proven bound with up to this many
                                     # rounds of the Dantzig-Wolfe LP (slow: about a minute on a monthly batch)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

from coupler.errors import PolicyError, Problem
from coupler.io.rules import read_rules, read_toml
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
    #: Rounds of the Dantzig-Wolfe bound (:mod:`coupler.engine.dwbound`) when the gap stays open
    #: after the search (0: off). Only the bound changes, never the plan.
    bound_rounds: int = 0


#: Excluded job types (DOMAIN.md section 6 names cleaning and distribution; the list is open), in
#: Dutch and English. A job type is excluded when one of its words starts with an entry.
EXCLUDED_JOB_TYPES: tuple[str, ...] = (
    "cleaning",
    "cleaner",
    "schoonmaak",
    "schoonmaker",
    "distribution",
    "distributie",
    "warehouse",
    "magazijn",
    "orderpicker",
    "order picker",
    "order picking",
)

#: ILLUSTRATIVE bijstandsnorm (social-assistance norm, single adult 21+, net euros per month incl.
#: holiday allowance, rounded). Replace with the official figures of the year in the policy file;
#: they change every January and July.
ILLUSTRATIVE_BIJSTANDSNORM: Mapping[int, float] = {2024: 1_340.0, 2025: 1_400.0, 2026: 1_440.0}

#: 2023 grant rates (DOMAIN.md section 5), lower-case nationality -> probability. Illustrative.
DEFAULT_GRANT_PROBABILITY: Mapping[str, float] = {"syria": 0.82, "yemen": 0.87, "turkey": 0.68}


@dataclass(frozen=True)
class OmkoppelRules:
    """Parameters of the omkoppeling rules (DOMAIN.md section 6).

    ``gate``: ``"and"`` allows omkoppeling only before housing is offered **and** before
    inburgering has started; ``"or"`` while at least one of the two has not happened yet.
    """

    gate: str = "and"
    radius_km: float = 0.0  # 0: the [hard] radius_km of the batch that coupled the household
    min_contract_months: float = 6.0
    excluded_job_types: tuple[str, ...] = EXCLUDED_JOB_TYPES
    bijstandsnorm: Mapping[int, float] = field(
        default_factory=lambda: dict(ILLUSTRATIVE_BIJSTANDSNORM)
    )

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "excluded_job_types",
            tuple(" ".join(j.casefold().split()) for j in self.excluded_job_types),
        )
        problems = _check_omkoppeling(self, "<omkoppeling rules>")
        if problems:
            raise PolicyError(problems)

    @classmethod
    def from_file(cls, path: str | Path) -> OmkoppelRules:
        """The ``[omkoppeling]`` table of a policy file."""
        return Policy.from_file(path).omkoppeling

    def excluded(self, job_type: str) -> str | None:
        """The excluded entry a job type matches (any word starting with a one-word entry, or a
        several-word entry found in it), or None. ``Schoonmaakwerk``, ``distributiecentrum``
        and ``magazijnmedewerker`` match ``schoonmaak``, ``distributie`` and ``magazijn``."""
        text = " ".join("".join(ch if ch.isalnum() else " " for ch in job_type.casefold()).split())
        words = text.split()
        for entry in self.excluded_job_types:
            if (" " in entry and f" {entry} " in f" {text} ") or any(
                w.startswith(entry) for w in words
            ):
                return entry
        return None


@dataclass(frozen=True)
class KansrijkRules:
    """Who counts as kansrijk for a provisional coupling (DOMAIN.md section 5).

    A case is kansrijk when its nationality is on ``nationalities`` (country policy; a grant
    rate alone is not enough), its grant probability (given, or from ``grant_probability`` by
    nationality) is at least ``min_probability``, and none of the ``contra_indications`` columns
    says yes (article 1F, national security, public order). A case without a nationality column
    is judged on its given probability and contra-indications.
    """

    nationalities: tuple[str, ...] = ("syria", "yemen")
    grant_probability: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_GRANT_PROBABILITY)
    )
    min_probability: float = 0.5
    contra_indications: tuple[str, ...] = ("article_1f", "national_security", "public_order")

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "nationalities", tuple(n.strip().casefold() for n in self.nationalities)
        )
        object.__setattr__(
            self,
            "grant_probability",
            {str(k).strip().casefold(): float(v) for k, v in self.grant_probability.items()},
        )
        problems = _check_kansrijk(self, "<kansrijk rules>")
        if problems:
            raise PolicyError(problems)

    @classmethod
    def from_file(cls, path: str | Path) -> KansrijkRules:
        """The ``[kansrijk]`` table of a policy file."""
        return Policy.from_file(path).kansrijk


@dataclass(frozen=True)
class Policy:
    """A complete policy. Make variants with :func:`dataclasses.replace` or :meth:`with_`."""

    hard: HardRules = field(default_factory=HardRules)
    weights: Weights = field(default_factory=Weights)
    soft: SoftRules = field(default_factory=SoftRules)
    quota: QuotaRules = field(default_factory=QuotaRules)
    solver: SolveParams = field(default_factory=SolveParams)
    omkoppeling: OmkoppelRules = field(default_factory=OmkoppelRules)
    kansrijk: KansrijkRules = field(default_factory=KansrijkRules)

    def __post_init__(self) -> None:
        problems = _check(self, "<policy>")
        if problems:
            raise PolicyError(problems)

    @classmethod
    def from_file(cls, path: str | Path) -> Policy:
        """Read a policy TOML file; raises :class:`PolicyError` naming every bad key or value."""
        return cls.from_dict(read_toml(path), source=Path(path).name)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<policy>") -> Policy:
        """Build a policy from nested dicts as TOML gives them (:func:`coupler.io.read_rules`)."""
        problems: list[Problem] = []
        sections: dict[str, Any] = {}
        known = {f.name: f for f in fields(cls)}
        types = get_type_hints(cls)
        for key, value in raw.items():
            if key not in known:
                problems.append(
                    Problem(source, f"unknown table [{key}]; known: {', '.join(known)}")
                )
                continue
            sections[key] = read_rules(
                types[key], value, table=f"[{key}]", source=source, problems=problems
            )
        policy = object.__new__(cls)
        for name in known:
            object.__setattr__(policy, name, sections.get(name) or types[name]())
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
                elif isinstance(v, Mapping):
                    v = {str(k): x for k, x in v.items()}
                d[sf.name] = v
            out[f.name] = d
        return out

    def to_toml(self) -> str:
        """The policy as TOML text that :meth:`from_dict` reads back to an equal policy.

        A batch stores this text, so that approving, re-coupling and auditing it later use
        exactly the policy it was proposed under.
        """
        lines: list[str] = []
        for section, values in self.to_dict().items():
            bands = values.pop("bands", [])
            tables = {k: v for k, v in values.items() if isinstance(v, dict)}
            lines.append(f"[{section}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if k not in tables]
            for name, table in tables.items():
                lines.append(f"[{section}.{name}]")
                lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()]
            for band in bands:
                lines.append(f"[[{section}.bands]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in band.items()]
            lines.append("")
        return "\n".join(lines)

    def with_(self, **changes: dict[str, Any]) -> Policy:
        """A copy with some keys of some tables changed, e.g. ``p.with_(hard={"radius_km": 30})``."""
        raw = self.to_dict()
        for section, values in changes.items():
            raw.setdefault(section, {}).update(values)
        return Policy.from_dict(raw)


def _toml_value(v: Any) -> str:
    """One TOML value: booleans, numbers (inf included), strings and lists of strings."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {type(v).__name__}")


def _check_omkoppeling(o: OmkoppelRules, source: str) -> list[Problem]:
    p: list[Problem] = []

    def bad(key: str, rule: str, got: Any) -> None:
        p.append(Problem(source, f"policy [omkoppeling] {key} must be {rule}; got {got!r}"))

    if o.gate not in ("and", "or"):
        bad("gate", "'and' or 'or'", o.gate)
    if not (o.radius_km >= 0 and math.isfinite(o.radius_km)):
        bad("radius_km", ">= 0 (0: the batch's hard radius)", o.radius_km)
    if not o.min_contract_months >= 0:
        bad("min_contract_months", ">= 0", o.min_contract_months)
    for year, amount in o.bijstandsnorm.items():
        if not (isinstance(year, int) and 1900 < year < 2200 and amount > 0):
            bad(f"bijstandsnorm {year}", "a year with an amount > 0", amount)
    return p


def _check_kansrijk(k: KansrijkRules, source: str) -> list[Problem]:
    p: list[Problem] = []
    for nat, v in k.grant_probability.items():
        if not 0 <= v <= 1:
            p.append(
                Problem(
                    source,
                    f"policy [kansrijk] grant_probability {nat} must be in [0, 1]; got {v!r}",
                )
            )
    if not 0 <= k.min_probability <= 1:
        p.append(
            Problem(
                source,
                f"policy [kansrijk] min_probability must be in [0, 1]; got {k.min_probability!r}",
            )
        )
    return p


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
    if sv.bound_rounds < 0:
        bad("solver", "bound_rounds", ">= 0", sv.bound_rounds)
    return p
