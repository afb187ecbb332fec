"""The immutable, validated problem instance.

An :class:`Instance` is built once from validated tables (see :mod:`coupler.io`) and never changes:
frames are copied on the way in and out, arrays are read-only. A variant is a new object made with
:meth:`Instance.replace`. Everything is joined by label (municipality code, household id), never by
position: a reference that cannot be resolved is an :class:`~coupler.errors.InputError`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from coupler.errors import InputError, Problem
from coupler.geo import distance_matrix


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


def _frame_digest(df: pd.DataFrame | None) -> str:
    if df is None:
        return ""
    h = hashlib.sha256()
    h.update(",".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


#: The table fields of :class:`Instance`; each is handed out as a copy.
_FRAME_FIELDS = frozenset(
    {"municipalities", "households", "criteria", "scores", "locks", "demand", "distances"}
)


@dataclass(frozen=True, eq=False)
class Instance:
    """A coupling problem: municipalities with remaining quotas, households and their criteria.

    Attributes
    ----------
    municipalities
        One row per municipality, canonical columns of :mod:`coupler.schema` plus ``quota`` (persons
        this period, filled) and ``remaining`` (persons that may still be coupled:
        quota + backlog - already used, never below 0).
    households, criteria
        Canonical frames; ``criteria`` may be empty.
    scores, locks, demand, distances
        Optional tables (participation scores, pins/bans, labour demand, a distance matrix).
    """

    municipalities: pd.DataFrame
    households: pd.DataFrame
    criteria: pd.DataFrame
    scores: pd.DataFrame | None = None
    locks: pd.DataFrame | None = None
    demand: pd.DataFrame | None = None
    distances: pd.DataFrame | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def __getattribute__(self, name: str) -> Any:
        # Frames go out as copies (cheap under pandas' copy-on-write): a caller who changes one
        # cannot change the validated instance.
        value = object.__getattribute__(self, name)
        if name in _FRAME_FIELDS and value is not None:
            return value.copy(deep=False)
        return value

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, pd.DataFrame):
                object.__setattr__(self, f.name, v.reset_index(drop=True).copy())
        object.__setattr__(self, "sources", dict(self.sources))
        self._validate()

    # -- validation across tables (each table was validated on its own by coupler.io) --------
    def _validate(self) -> None:
        m, h, c = self.municipalities, self.households, self.criteria
        problems: list[Problem] = []
        if m["code"].duplicated().any():
            problems.append(Problem("municipalities", "duplicate municipality codes"))
        if "remaining" not in m or m["remaining"].isna().any():
            problems.append(Problem("municipalities", "remaining quota missing"))
        elif (m["remaining"] < 0).any():
            problems.append(Problem("municipalities", "remaining quota must be >= 0"))
        if h["household_id"].duplicated().any():
            problems.append(Problem("households", "duplicate household ids"))
        if (h["size"] < 1).any():
            problems.append(Problem("households", "household sizes must be >= 1"))
        codes = set(m["code"])
        ids = set(h["household_id"])
        if len(c) and not set(c["household_id"]).issubset(ids):
            problems.append(Problem("criteria", "criteria point to unknown households"))
        if len(c) and not set(c["municipality"]).issubset(codes):
            problems.append(Problem("criteria", "criteria point to unknown municipalities"))
        for col in ("azc", "preferred_municipality"):
            if col in h and not set(h[col].dropna()).issubset(codes):
                problems.append(Problem("households", f"unknown municipality in '{col}'"))
        if problems:
            raise InputError(problems)

    # -- derived, read-only views -----------------------------------------------------------
    @property
    def n_households(self) -> int:
        return len(self.households)

    @property
    def n_municipalities(self) -> int:
        return len(self.municipalities)

    @cached_property
    def codes(self) -> np.ndarray:
        return _readonly(self.municipalities["code"].astype(str).to_numpy())

    @cached_property
    def code_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.codes)}

    @cached_property
    def household_ids(self) -> np.ndarray:
        return _readonly(self.households["household_id"].astype(str).to_numpy())

    @cached_property
    def household_index(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.household_ids)}

    @cached_property
    def sizes(self) -> np.ndarray:
        return _readonly(self.households["size"].to_numpy(dtype=np.int64))

    @cached_property
    def remaining(self) -> np.ndarray:
        return _readonly(self.municipalities["remaining"].to_numpy(dtype=np.int64))

    @cached_property
    def quota(self) -> np.ndarray:
        return _readonly(self.municipalities["quota"].to_numpy(dtype=np.int64))

    @cached_property
    def distance_km(self) -> np.ndarray:
        """Municipality x municipality distances (km): the user's matrix where given, else great circle."""
        m = self.municipalities
        d = distance_matrix(m["lat"].to_numpy(float), m["lon"].to_numpy(float))
        if self.distances is not None and len(self.distances):
            i = self.distances["from"].map(self.code_index).to_numpy(dtype=np.int64)
            j = self.distances["to"].map(self.code_index).to_numpy(dtype=np.int64)
            km = self.distances["km"].to_numpy(dtype=np.float64)
            d[i, j] = km
            # A one-directional entry applies both ways unless the reverse is given too.
            given = np.zeros_like(d, dtype=bool)
            given[i, j] = True
            rev = ~given[j, i]
            d[j[rev], i[rev]] = km[rev]
        return _readonly(d)

    def municipality_codes(self, column: str) -> np.ndarray:
        """Index (into municipalities) of a household column of codes; -1 where missing."""
        s = (
            self.households[column]
            if column in self.households
            else pd.Series(pd.NA, index=self.households.index)
        )
        return s.map(self.code_index).fillna(-1).to_numpy(dtype=np.int64)

    def checksum(self) -> dict[str, str]:
        """Content digests of every table (recorded in summary.json for reproducibility)."""
        return {
            f.name: _frame_digest(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name != "sources"
        }

    def replace(self, **changes: Any) -> Instance:
        """A new, re-validated instance with some tables replaced."""
        return dataclasses.replace(self, **changes)

    def with_remaining(self, remaining: np.ndarray | pd.Series) -> Instance:
        """A variant whose remaining quotas are ``remaining`` (aligned to ``municipalities``)."""
        m = self.municipalities.copy()
        m["remaining"] = np.asarray(remaining, dtype=np.int64)
        return self.replace(municipalities=m)
