"""The registry of named benchmark workloads.

Every workload is built from the embedded national scenario (``nl-2024``, 342 municipalities) and
the seeded case generator (:func:`coupler.generate_cases`). :meth:`Workload.prepare` writes the
cases (and, where a workload needs one, its own scenario folder) as CSV files; this is setup and
is not timed. :meth:`Workload.load` then reads them back through :func:`coupler.load_instance`, as
a user's run would, and is timed as the ``load`` phase.

>>> sorted(WORKLOADS)  # doctest: +NORMALIZE_WHITESPACE
['end-of-period', 'half-year', 'monthly', 'shortage', 'shortage-small', 'side', 'small', 'stress', 'tight',
 'tight-place', 'tiny']
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from coupler import (
    Instance,
    Policy,
    embedded_scenario,
    generate_cases,
    load_instance,
    load_scenario,
)
from coupler.geo import distance_matrix
from coupler.quota import proportional_quotas

Kind = Literal[
    "plain", "shortage", "side", "tight", "tight-place", "end-of-period", "small", "shortage-small"
]

#: The shortage workload: job-holders pointing at this municipality, in a 50 km area whose
#: remaining quota is cut (DOMAIN.md section 3 uses the same example).
SHORTAGE_CENTRE = "Eindhoven"
#: Persons added to the shortage batch as job-holders pointing at SHORTAGE_CENTRE.
SHORTAGE_EXTRA_PERSONS = 400
#: Share of the remaining quota left inside the shortage area.
SHORTAGE_KEEP = 0.02
#: Dwelling capacities of the side workload: this many times the municipality's proportional
#: share of the batch's large / single households (binding locally, feasible nationally).
SIDE_DWELLING_SLACK = 1.25
#: Regional bands of the side workload: every province filled within these bounds.
SIDE_BAND_FILL = (0.95, 1.05)
#: The tight workload: remaining quota this many times the batch's persons, divided by population.
TIGHT_SLACK = 1.1
#: The shortage-small workload: this share of households holds a qualifying job at
#: SHORTAGE_CENTRE; the remaining quota is this many times the batch's persons (by population),
#: and the 50 km area around the centre keeps this share of it.
SHORTAGE_SMALL_JOBS = 0.35
SHORTAGE_SMALL_SLACK = 1.3
SHORTAGE_SMALL_KEEP = 0.3
#: The end-of-period workload: five of six monthly batches are approved; each municipality has
#: used its share of them times a factor drawn uniformly from this range (uneven progress).
END_OF_PERIOD_USE = (0.8, 1.15)


@dataclass(frozen=True)
class Workload:
    """A named, seeded benchmark instance.

    Attributes
    ----------
    name
        Registry key (``--tier`` value).
    persons
        Persons in the generated batch (before any extra block the kind adds).
    kind
        ``plain``: the batch as generated; ``shortage``: extra job-holders in one area whose
        quota is cut, so hard criteria must break; ``side``: province bands and dwelling
        capacities on.
    total
        National quota total for the period (persons); ``None`` keeps the scenario default
        (28,000).
    description
        One line for the README and the table.
    """

    name: str
    persons: int
    kind: Kind = "plain"
    total: int | None = None
    description: str = ""

    def scaled(self, persons: int, name: str | None = None) -> Workload:
        """The same workload with another batch size (for smoke tests)."""
        return replace(self, persons=persons, name=name or f"{self.name}-{persons}")

    # -- setup (not timed) -------------------------------------------------------------------
    def prepare(self, seed: int, folder: Path) -> PreparedCase:
        """Write the cases for ``seed`` into ``folder`` and return how to load them."""
        folder.mkdir(parents=True, exist_ok=True)
        municipalities, _ = load_scenario(None, self.total)
        households, criteria = generate_cases(municipalities, persons=self.persons, seed=seed)
        scenario_dir: Path | None = None
        remaining: np.ndarray | None = None
        bands: tuple[dict[str, object], ...] = ()
        if self.kind == "shortage":
            households, criteria, remaining = _shortage(municipalities, households, criteria, seed)
        elif self.kind == "side":
            scenario_dir = folder / "scenario"
            _side_scenario(municipalities, households, scenario_dir)
            lo, hi = SIDE_BAND_FILL
            bands = tuple(
                {"level": "province", "name": p, "min_fill": lo, "max_fill": hi}
                for p in sorted(municipalities["province"].astype(str).unique())
            )
        scores: Path | None = None
        policy: dict[str, dict[str, object]] = {}
        if self.kind in ("tight", "tight-place"):
            households, criteria, remaining = _tight(municipalities, households, criteria)
            scores = folder / "scores.csv"
            scored = _region_scores if self.kind == "tight" else _place_scores
            scored(municipalities, households, seed).to_csv(scores, index=False)
            policy = {"quota": {"fill_balance": 0.0}}
        elif self.kind == "end-of-period":
            remaining = _end_of_period(municipalities, self.persons, seed)
        elif self.kind == "small":
            households = households[["household_id", "size", "azc"]].copy()
            criteria = criteria.iloc[0:0]
        elif self.kind == "shortage-small":
            households, criteria, remaining = _shortage_small(municipalities, households, seed)
            scores = folder / "scores.csv"
            _region_scores(municipalities, households, seed).to_csv(scores, index=False)
            policy = {"quota": {"fill_balance": 0.0}}
        households.to_csv(folder / "households.csv", index=False)
        criteria.to_csv(folder / "criteria.csv", index=False)
        return PreparedCase(
            workload=self,
            seed=seed,
            households=folder / "households.csv",
            criteria=folder / "criteria.csv",
            scenario=scenario_dir,
            remaining=remaining,
            bands=bands,
            scores=scores,
            policy=policy,
        )


@dataclass(frozen=True, eq=False)
class PreparedCase:
    """Files of one (workload, seed) and the changes the load phase applies."""

    workload: Workload
    seed: int
    households: Path
    criteria: Path
    scenario: Path | None
    remaining: np.ndarray | None
    bands: tuple[dict[str, object], ...]
    scores: Path | None = None
    policy: dict[str, dict[str, object]] = field(default_factory=dict)

    def load(self) -> tuple[Instance, Policy]:
        """Read and validate the instance and build the policy (the timed ``load`` phase)."""
        # A scenario folder with a quota-less municipalities.csv takes the national total too.
        inst = load_instance(
            self.households,
            self.criteria,
            scenario=self.scenario,
            total=self.workload.total,
            scores=self.scores,
        )
        if self.remaining is not None:
            inst = inst.with_remaining(self.remaining)
        policy = Policy(solver=replace(Policy().solver, seed=self.seed))
        if self.bands:
            policy = policy.with_(quota={"bands": list(self.bands)})
        if self.policy:
            policy = policy.with_(**self.policy)  # type: ignore[arg-type]
        return inst, policy


def _shortage(
    municipalities: pd.DataFrame, households: pd.DataFrame, criteria: pd.DataFrame, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Add job-holders at SHORTAGE_CENTRE and cut the remaining quota within 50 km of it."""
    rng = np.random.default_rng(10_000 + seed)
    names = municipalities["name"].astype(str).to_numpy()
    centre = int(np.flatnonzero(names == SHORTAGE_CENTRE)[0])
    code = str(municipalities["code"].iloc[centre])
    # Extra households: sizes drawn from the batch's own distribution, ids after the batch's.
    sizes: list[int] = []
    pool = households["size"].to_numpy()
    while sum(sizes) < SHORTAGE_EXTRA_PERSONS:
        sizes.append(int(rng.choice(pool)))
    donors = households.iloc[rng.integers(0, len(households), size=len(sizes))].copy()
    n0 = len(households)
    donors["household_id"] = [f"S{n0 + i + 1:06d}" for i in range(len(sizes))]
    donors["size"] = sizes
    adults = np.minimum(donors["adults"].to_numpy(), sizes)
    donors["adults"] = np.maximum(adults, 1)
    donors["children"] = donors["size"] - donors["adults"]
    extra = pd.DataFrame(
        {
            "household_id": donors["household_id"].to_numpy(),
            "kind": "work",
            "municipality": code,
            "hours_per_week": 24.0,
            "contract_signed": pd.array([True] * len(sizes), dtype="boolean"),
            "payslip_seen": pd.array([True] * len(sizes), dtype="boolean"),
        }
    )
    households = pd.concat([households, donors], ignore_index=True)
    criteria = pd.concat([criteria, extra.reindex(columns=criteria.columns)], ignore_index=True)
    km = distance_matrix(
        municipalities["lat"].to_numpy(float), municipalities["lon"].to_numpy(float)
    )
    area = km[centre] <= 50.0
    remaining = municipalities["remaining"].to_numpy(dtype=np.int64).copy()
    remaining[area] = np.floor(remaining[area] * SHORTAGE_KEEP).astype(np.int64)
    return households, criteria, remaining


def _tight(
    municipalities: pd.DataFrame, households: pd.DataFrame, criteria: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Ids and sizes only, no criteria; remaining quota TIGHT_SLACK x persons by population."""
    hh = households[["household_id", "size"]].copy()
    persons = int(hh["size"].sum())
    remaining = proportional_quotas(
        municipalities["population"].to_numpy(float), math.ceil(TIGHT_SLACK * persons)
    )
    return hh, criteria.iloc[0:0], remaining


def _shortage_small(
    municipalities: pd.DataFrame, households: pd.DataFrame, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Ids and sizes; a share of households with a qualifying job at SHORTAGE_CENTRE; a
    remaining quota of SHORTAGE_SMALL_SLACK x persons, cut inside the centre's 50 km area."""
    rng = np.random.default_rng(40_000 + seed)
    hh = households[["household_id", "size"]].copy()
    names = municipalities["name"].astype(str).to_numpy()
    centre = int(np.flatnonzero(names == SHORTAGE_CENTRE)[0])
    ids = hh["household_id"].to_numpy()[rng.random(len(hh)) < SHORTAGE_SMALL_JOBS]
    criteria = pd.DataFrame(
        {
            "household_id": ids,
            "kind": "work",
            "municipality": str(municipalities["code"].iloc[centre]),
            "hours_per_week": 24.0,
            "contract_signed": pd.array([True] * len(ids), dtype="boolean"),
            "payslip_seen": pd.array([True] * len(ids), dtype="boolean"),
        }
    )
    km = distance_matrix(
        municipalities["lat"].to_numpy(float), municipalities["lon"].to_numpy(float)
    )
    remaining = proportional_quotas(
        municipalities["population"].to_numpy(float),
        math.ceil(SHORTAGE_SMALL_SLACK * int(hh["size"].sum())),
    )
    area = km[centre] <= 50.0
    remaining[area] = np.floor(remaining[area] * SHORTAGE_SMALL_KEEP).astype(np.int64)
    return hh, criteria, remaining


def _region_scores(
    municipalities: pd.DataFrame, households: pd.DataFrame, seed: int
) -> pd.DataFrame:
    """A participation score in [0, 1) per (household, labour-market region), seeded."""
    rng = np.random.default_rng(20_000 + seed)
    regions = sorted(municipalities["labour_market_region"].astype(str).unique())
    ids = households["household_id"].astype(str).to_numpy()
    return pd.DataFrame(
        {
            "household_id": np.repeat(ids, len(regions)),
            "labour_market_region": np.tile(regions, len(ids)),
            "score": rng.random(len(ids) * len(regions)).round(4),
        }
    )


def _place_scores(
    municipalities: pd.DataFrame, households: pd.DataFrame, seed: int
) -> pd.DataFrame:
    """A participation score in [0, 1) per (household, municipality), seeded: no two
    municipalities alike, so the class model cannot merge any."""
    rng = np.random.default_rng(50_000 + seed)
    codes = municipalities["code"].astype(str).to_numpy()
    ids = households["household_id"].astype(str).to_numpy()
    return pd.DataFrame(
        {
            "household_id": np.repeat(ids, len(codes)),
            "municipality": np.tile(codes, len(ids)),
            "score": rng.random(len(ids) * len(codes)).round(4),
        }
    )


def _end_of_period(municipalities: pd.DataFrame, persons: int, seed: int) -> np.ndarray:
    """Remaining quota after five approved monthly batches of ``persons`` each (uneven use)."""
    rng = np.random.default_rng(30_000 + seed)
    remaining = municipalities["remaining"].to_numpy(dtype=np.int64)
    share = remaining / max(1, int(remaining.sum()))
    lo, hi = END_OF_PERIOD_USE
    used = np.floor(5 * persons * share * rng.uniform(lo, hi, len(share))).astype(np.int64)
    return np.maximum(remaining - used, 0)


def _side_scenario(municipalities: pd.DataFrame, households: pd.DataFrame, folder: Path) -> None:
    """A copy of nl-2024 with cap_large / cap_single filled in (quota column left empty)."""
    folder.mkdir(parents=True, exist_ok=True)
    src = embedded_scenario()
    for f in src.iterdir():
        if f.is_file() and f.name != "municipalities.csv":
            shutil.copy(f, folder / f.name)
    m = pd.read_csv(src / "municipalities.csv", dtype=str)
    share = municipalities["remaining"].to_numpy(float)
    share = share / share.sum()
    n_large = int((households["size"] >= Policy().quota.large_household_size).sum())
    n_single = int((households["size"] == 1).sum())
    m["cap_large"] = [math.ceil(SIDE_DWELLING_SLACK * n_large * s) for s in share]
    m["cap_single"] = [math.ceil(SIDE_DWELLING_SLACK * n_single * s) for s in share]
    m.to_csv(folder / "municipalities.csv", index=False)


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("tiny", 300, description="~300 persons, for the CI smoke run"),
        Workload("monthly", 4_700, description="one monthly batch, ~4,700 persons"),
        Workload(
            "half-year",
            28_000,
            description="a national half year, ~28,000 persons; the 28,000 quota is exactly full",
        ),
        Workload(
            "stress",
            60_000,
            total=60_000,
            description="~60,000 persons against a national total of 60,000",
        ),
        Workload(
            "shortage",
            4_700,
            kind="shortage",
            description=(
                f"monthly batch + {SHORTAGE_EXTRA_PERSONS} job-holders at {SHORTAGE_CENTRE}, "
                f"whose 50 km area keeps {SHORTAGE_KEEP:.0%} of its quota"
            ),
        ),
        Workload(
            "tight",
            800,
            kind="tight",
            description=(
                f"~420 households, participation scores only, fill balance off, remaining quota "
                f"{TIGHT_SLACK} x persons"
            ),
        ),
        Workload(
            "tight-place",
            800,
            kind="tight-place",
            description=(
                "as tight, with a participation score per municipality instead of per region "
                "(no two municipalities alike)"
            ),
        ),
        Workload(
            "small",
            600,
            kind="small",
            description="~300 households (fewer than municipalities), ids, sizes and an azc only",
        ),
        Workload(
            "shortage-small",
            600,
            kind="shortage-small",
            description=(
                f"~300 households, participation scores only, fill balance off, "
                f"{SHORTAGE_SMALL_JOBS:.0%} with a job at {SHORTAGE_CENTRE}, whose 50 km area "
                f"keeps {SHORTAGE_SMALL_KEEP:.0%} of a quota of {SHORTAGE_SMALL_SLACK} x persons"
            ),
        ),
        Workload(
            "end-of-period",
            4_700,
            kind="end-of-period",
            description="the last monthly batch of a half year after five approved months",
        ),
        Workload(
            "side",
            4_700,
            kind="side",
            description=(
                f"monthly batch with every province banded to {SIDE_BAND_FILL[0]:.2f}-"
                f"{SIDE_BAND_FILL[1]:.2f} fill and dwelling caps ({SIDE_DWELLING_SLACK}x share)"
            ),
        ),
    )
}


def get_workload(name: str) -> Workload:
    """A registered workload by name; ``ValueError`` naming the known ones otherwise."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown tier {name!r}; known tiers: {', '.join(WORKLOADS)}") from None
