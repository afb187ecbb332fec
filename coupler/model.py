"""The coupling model: arrays that every engine reads.

:func:`build_model` turns an :class:`~coupler.instance.Instance` and a
:class:`~coupler.policy.Policy` into a :class:`CouplingModel` in one vectorised pass:

* ``value[h, m]``   soft score of coupling household h to municipality m (the objective);
* ``allowed[h, m]`` the pair meets every hard criterion (after conflicts were resolved);
* ``forbidden[h, m]`` the pair may never be used (a ban, or any municipality but a pin);
* ``cap[m]``        persons that may still be coupled: floor(remaining x (1 + tolerance));
* ``target[m]``     fill-balance target: the national fill ratio x remaining quota, rounded down
  to whole persons (a municipality is behind only by whole persons; fractional targets would
  also let the relaxation fill them with slivers of families, weakening the bound).

The objective of a plan, in priority order (lexicographic):

1. fewest uncoupled persons (only when no feasible place remains);
2. fewest persons whose hard criterion is broken;
3. most ``sum(value) - fill_balance * sum(max(0, target - assigned))``.
"""

from __future__ import annotations

import dataclasses
import math
import resource
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from coupler.criteria import HardCriteria, hard_criteria, soft_score
from coupler.errors import CouplerError, PolicyError, Problem
from coupler.instance import Instance
from coupler.policy import Policy, Weights


@dataclass(frozen=True)
class BandRows:
    """A hard band: persons assigned to ``members`` must lie in [lo, hi]."""

    label: str
    members: np.ndarray  # bool over municipalities
    lo: int
    hi: int


@dataclass(frozen=True, eq=False)
class CouplingModel:
    """Read-only arrays of one coupling problem (see the module docstring)."""

    instance: Instance
    policy: Policy
    hard: HardCriteria
    size: np.ndarray
    cap: np.ndarray
    value: np.ndarray
    forbidden: np.ndarray
    pinned: np.ndarray  # municipality index per household, -1 if none
    broken_weight: np.ndarray  # what breaking household h costs in the shortage order's measure
    target: np.ndarray
    fill_weight: float
    is_large: np.ndarray
    cap_large: np.ndarray | None
    cap_single: np.ndarray | None
    bands: tuple[BandRows, ...]

    @property
    def n_households(self) -> int:
        return int(self.size.shape[0])

    @property
    def n_municipalities(self) -> int:
        return int(self.cap.shape[0])

    @property
    def allowed(self) -> np.ndarray:
        return self.hard.allowed

    @property
    def has_hard(self) -> np.ndarray:
        return self.hard.has_hard

    @cached_property
    def breaks(self) -> np.ndarray:
        """bool[h, m]: coupling h to m breaks one of h's hard criteria."""
        return self.has_hard[:, None] & ~self.allowed

    @property
    def has_side_constraints(self) -> bool:
        return self.cap_large is not None or self.cap_single is not None or bool(self.bands)

    @property
    def persons(self) -> int:
        return int(self.size.sum())

    def with_capacity(self, remaining: np.ndarray) -> CouplingModel:
        """The same model with another remaining quota per municipality (no rebuild).

        Capacities, fill targets and bands follow from ``remaining``; criteria and the value are
        reused, so pacing re-solves cost only the solve.
        """
        instance = self.instance.with_remaining(np.asarray(remaining, dtype=np.int64))
        return dataclasses.replace(
            self, instance=instance, **_quota_arrays(instance, self.policy, self.size)
        )

    def with_weights(self, weights: Weights) -> CouplingModel:
        """The same model under other soft weights: only the value is recomputed.

        The soft parts are not kept (a float64 matrix each); the value is summed again from
        the instance, a block of households at a time (:func:`coupler.criteria.soft_score`).
        """
        policy = dataclasses.replace(self.policy, weights=weights)
        return dataclasses.replace(self, policy=policy, value=_value(self.instance, policy))

    def keeps_capacities(self, assignment: np.ndarray) -> bool:
        """Whether a plan keeps every municipality's capacity and places nobody at a banned or
        locked-out place."""
        a = np.asarray(assignment, dtype=np.int64)
        on = np.flatnonzero(a >= 0)
        assigned = np.bincount(a[on], weights=self.size[on], minlength=self.n_municipalities)
        return bool((assigned <= self.cap).all() and not self.forbidden[on, a[on]].any())

    def meets_side_rows(self, assignment: np.ndarray) -> bool:
        """Whether a plan keeps every dwelling capacity and band (True without side rows)."""
        a = np.asarray(assignment, dtype=np.int64)
        on = a >= 0
        n_m = self.n_municipalities
        for caps, mask in ((self.cap_large, self.is_large), (self.cap_single, self.size == 1)):
            if caps is not None:
                used = np.bincount(a[on & mask], minlength=n_m)
                if (used > caps + 1e-9).any():
                    return False
        if self.bands:
            persons = np.bincount(a[on], weights=self.size[on], minlength=n_m)
            for band in self.bands:
                total = persons[band.members].sum()
                if total < band.lo - 1e-9 or total > band.hi + 1e-9:
                    return False
        return True

    def evaluate(self, assignment: np.ndarray) -> PlanValue:
        """Objective parts of a plan given as municipality index per household (-1 = uncoupled)."""
        a = np.asarray(assignment, dtype=np.int64)
        coupled = a >= 0
        h = np.flatnonzero(coupled)
        assigned = np.bincount(
            a[coupled], weights=self.size[coupled], minlength=self.n_municipalities
        )
        soft = float(self.value[h, a[h]].sum())
        shortfall = float(np.maximum(self.target - assigned, 0.0).sum())
        hit = self.breaks[h, a[h]]
        broken = int(self.size[h][hit].sum())
        return PlanValue(
            broken_measure=int(self.broken_weight[h][hit].sum()),
            soft=soft,
            shortfall=shortfall,
            objective=soft - self.fill_weight * shortfall,
            broken_persons=broken,
            uncoupled_persons=int(self.size[~coupled].sum()),
            assigned=assigned.astype(np.int64),
        )


@dataclass(frozen=True, eq=False)
class PlanValue:
    """The objective of one plan, part by part."""

    soft: float
    shortfall: float
    objective: float
    broken_persons: int
    uncoupled_persons: int
    assigned: np.ndarray
    broken_measure: int  # broken households weighted by ``broken_weight`` (the engine's stage)


def build_model(instance: Instance, policy: Policy) -> CouplingModel:
    """Build the model arrays for ``instance`` under ``policy`` (no Python loop per pair)."""
    n_h, n_m = instance.n_households, instance.n_municipalities
    check_memory(n_h, n_m)
    hard = hard_criteria(instance, policy)
    size = instance.sizes

    forbidden = np.zeros((n_h, n_m), dtype=bool)
    pinned = np.full(n_h, -1, dtype=np.int64)
    if instance.locks is not None and len(instance.locks):
        lk = instance.locks
        hi = lk["household_id"].map(instance.household_index).to_numpy(dtype=np.int64)
        mi = lk["municipality"].map(instance.code_index).to_numpy(dtype=np.int64)
        act = lk["action"].astype(str).to_numpy()
        ban = act == "ban"
        forbidden[hi[ban], mi[ban]] = True
        pin = act == "pin"
        pinned[hi[pin]] = mi[pin]
        forbidden[hi[pin]] = True
        forbidden[hi[pin], mi[pin]] = False

    for a in (size, forbidden, pinned):
        a.flags.writeable = False
    return CouplingModel(
        instance=instance,
        policy=policy,
        hard=hard,
        size=size,
        value=_value(instance, policy),
        forbidden=forbidden,
        pinned=pinned,
        broken_weight=_broken_weight(hard, size, policy.hard.shortage_order),
        fill_weight=float(policy.quota.fill_balance),
        is_large=size >= policy.quota.large_household_size,
        **_quota_arrays(instance, policy, size),
    )


def _broken_weight(hard: HardCriteria, size: np.ndarray, order: tuple[str, ...]) -> np.ndarray:
    """Integer cost of breaking each household, lexicographic over the shortage order.

    Each measure counts, for a broken household: ``broken_persons`` its persons,
    ``broken_households`` 1, ``broken_work`` its active work criteria. With the order (first,
    second) (second = persons unless given) the weight is ``first * (total second + 1) +
    second``, so minimising the sum of weights minimises the first measure, then the second.
    The default order gives each household its size (broken persons).
    """
    t = hard.table
    active = t["hard"].to_numpy(dtype=bool) & ~t["yielded"].to_numpy(dtype=bool)
    work = np.bincount(
        t["household"].to_numpy(dtype=np.int64)[
            active & (t["kind"].astype(str).to_numpy() == "work")
        ],
        minlength=len(size),
    )
    measures = {
        "broken_persons": size.astype(np.int64),
        "broken_households": np.ones(len(size), dtype=np.int64),
        "broken_work": work.astype(np.int64),
    }
    keys = list(order) + ["broken_persons"] * (len(order) == 1 and order[0] != "broken_persons")
    if len(keys) == 1:
        w = measures[keys[0]].copy()
    else:
        first, second = measures[keys[0]], measures[keys[1]]
        w = first * (int(second[hard.has_hard].sum()) + 1) + second
    w.flags.writeable = False
    return w


def _value(instance: Instance, policy: Policy) -> np.ndarray:
    """The soft score per pair under ``policy``'s weights, read-only."""
    value = soft_score(instance, policy)
    value.flags.writeable = False
    return value


def _quota_arrays(instance: Instance, policy: Policy, size: np.ndarray) -> dict[str, Any]:
    """Capacities, fill targets, dwelling caps and bands: everything that follows the quota."""
    remaining = instance.remaining
    cap = np.floor(remaining * (1.0 + policy.quota.tolerance) + 1e-9).astype(np.int64)
    total_remaining = float(remaining.sum())
    ratio = min(1.0, float(size.sum()) / total_remaining) if total_remaining > 0 else 0.0
    target = np.minimum(np.floor(ratio * remaining + 1e-9), cap).astype(np.float64)

    m = instance.municipalities
    bands = []
    for band in policy.quota.bands:
        col = "province" if band.level == "province" else "labour_market_region"
        members = (m[col].astype(str).str.casefold() == band.name.casefold()).to_numpy()
        if not members.any():
            raise PolicyError(
                Problem(
                    "<policy>",
                    f"policy [quota] band {band.level} '{band.name}' matches no municipality",
                )
            )
        share = ratio * float(remaining[members].sum())
        lo = math.ceil(band.min_fill * share - 1e-9)
        hi = (
            int(cap[members].sum())
            if math.isinf(band.max_fill)
            else math.floor(band.max_fill * share + 1e-9)
        )
        bands.append(BandRows(f"{band.level}:{band.name}", members, lo, hi))
    for a in (cap, target):
        a.flags.writeable = False
    return {
        "cap": cap,
        "target": target,
        "cap_large": _optional_caps(m, "cap_large"),
        "cap_single": _optional_caps(m, "cap_single"),
        "bands": tuple(bands),
    }


def _optional_caps(m: pd.DataFrame, column: str) -> np.ndarray | None:
    if column not in m or m[column].isna().all():
        return None
    # A municipality without a figure has no limit of that kind.
    return m[column].astype("Float64").fillna(np.inf).to_numpy(dtype=np.float64)


def restrict(
    model: CouplingModel, households: np.ndarray, cap: np.ndarray, target: np.ndarray
) -> CouplingModel:
    """A sub-model over some households with other capacities and fill targets.

    Used by the engine to re-optimise a part of a plan while the rest stays fixed. Side
    constraints are not carried over; the sub-model's ``instance`` is still the whole one.
    """
    rows = np.asarray(households, dtype=np.int64)
    hard = HardCriteria(
        table=model.hard.table.iloc[0:0],
        allowed=model.hard.allowed[rows],
        has_hard=model.hard.has_hard[rows],
        conflicts=model.hard.conflicts.iloc[0:0],
    )
    return dataclasses.replace(
        model,
        hard=hard,
        size=model.size[rows],
        cap=np.asarray(cap, dtype=np.int64),
        value=model.value[rows],
        forbidden=model.forbidden[rows],
        pinned=model.pinned[rows],
        broken_weight=model.broken_weight[rows],
        target=np.asarray(target, dtype=np.float64),
        is_large=model.is_large[rows],
        cap_large=None,
        cap_single=None,
        bands=(),
    )


# ---------------------------------------------------------------------------------------------
# Memory: refuse a model the machine cannot hold, in one line, before allocating it.

#: Peak bytes per (household, municipality) pair of loading, building, solving and writing a
#: model: about 33 measured (peak RSS 408 MB at 28,000 persons, 595 MB at 60,000, 1.40 GB at
#: 200,000; nl-2024), plus a margin. The model keeps the value (8 bytes per pair) and three
#: bool masks; the flow's cost matrix (8), its candidate mask and blocks of temporaries
#: (``coupler.blocks``) come on top.
BYTES_PER_PAIR = 40
#: Bytes beyond the pairs (vectors per municipality, the engine's own bookkeeping).
BYTES_FIXED = 64 * 2**20


def estimate_memory(n_households: int, n_municipalities: int) -> int:
    """Bytes that building and solving a model of this size needs at its peak, roughly."""
    return BYTES_PER_PAIR * int(n_households) * int(n_municipalities) + BYTES_FIXED


def available_memory() -> int | None:
    """Bytes this process may still allocate: the least of the address-space limit
    (``ulimit -v``) left over, the cgroup limit left over and the free memory; ``None`` when
    none of them can be read."""
    limits: list[int] = []
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        used = _proc_kib("/proc/self/status", "VmSize:")
        limits.append(soft - (used or 0))
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            cap = f.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
            current = int(f.read().strip())
        if cap != "max":
            limits.append(int(cap) - current)
    except (OSError, ValueError):
        pass
    free = _proc_kib("/proc/meminfo", "MemAvailable:")
    if free is not None:
        limits.append(free)
    return max(0, min(limits)) if limits else None


def _proc_kib(path: str, key: str) -> int | None:
    """A ``key: N kB`` line of a /proc file in bytes, or ``None``."""
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(n_households: int, n_municipalities: int) -> None:
    """Raise :class:`~coupler.errors.CouplerError` with one line when the model will not fit.

    Raises
    ------
    CouplerError
        ``estimate_memory`` exceeds ``available_memory`` (when that can be read).
    """
    need = estimate_memory(n_households, n_municipalities)
    free = available_memory()
    if free is not None and need > free:
        raise CouplerError(
            f"not enough memory: {n_households:,} households x {n_municipalities} "
            f"municipalities need about {need / 2**30:.1f} GB, and {free / 2**30:.1f} GB is "
            "available (free memory or ulimit -v); split the batch or raise the limit"
        )
