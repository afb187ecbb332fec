"""Features: the columns a model sees and how a table becomes its design matrix.

Categorical features become integer codes over a fixed vocabulary (missing or unseen values
become NaN, which histogram gradient boosting treats as missing); ``network`` and ``cohort`` are
numbers. ``nationality_group`` is never a feature unless asked for (DOMAIN.md section 9: a proxy
for ethnicity), and neither is anything else not listed in :data:`DEFAULT_FEATURES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from coupler.errors import InputError, Problem
from coupler.learn.vocab import VOCABULARIES

__all__ = [
    "DEFAULT_FEATURES",
    "OPT_IN_FEATURES",
    "FeatureSpec",
    "members_from_households",
    "network_regions",
]

#: The features of a default model, in design-matrix order.
DEFAULT_FEATURES: tuple[str, ...] = (
    "gender",
    "age_group",
    "education",
    "sector",
    "language",
    "household_type",
    "labour_market_region",
    "network",
    "cohort",
)
#: Features used only on explicit request.
OPT_IN_FEATURES: tuple[str, ...] = ("nationality_group",)
_NUMERIC = frozenset({"network", "cohort"})


@dataclass(frozen=True)
class FeatureSpec:
    """Which features a model uses and the vocabulary of each categorical one."""

    features: tuple[str, ...]
    vocabularies: dict[str, tuple[str, ...]]

    @classmethod
    def build(
        cls,
        history: pd.DataFrame,
        regions: tuple[str, ...],
        *,
        nationality: bool = False,
        drop: tuple[str, ...] = (),
    ) -> FeatureSpec:
        """The spec of a model fitted on ``history``.

        Parameters
        ----------
        history
            A validated history (:func:`coupler.learn.table.load_history`).
        regions
            Every labour-market region of the scenario (the placement vocabulary).
        nationality
            Opt in to ``nationality_group`` as a feature.
        drop
            Default features to leave out (e.g. ``("gender",)``).
        """
        known = set(DEFAULT_FEATURES)
        unknown = [f for f in drop if f not in known]
        if unknown:
            raise InputError(
                Problem("--drop-feature", f"unknown feature(s) {unknown}; known: {sorted(known)}")
            )
        features = [f for f in DEFAULT_FEATURES if f not in drop]
        vocabularies: dict[str, tuple[str, ...]] = {
            name: VOCABULARIES[name] for name in features if name in VOCABULARIES
        }
        if "labour_market_region" in features:
            vocabularies["labour_market_region"] = tuple(regions)
        if nationality:
            groups = sorted(set(history["nationality_group"].dropna().astype(str)))
            if not groups:
                raise InputError(
                    Problem(
                        "history",
                        "--use-nationality needs a filled nationality_group column",
                        column="nationality_group",
                    )
                )
            features.append("nationality_group")
            vocabularies["nationality_group"] = tuple(groups)
        return cls(features=tuple(features), vocabularies=vocabularies)

    @property
    def categorical(self) -> np.ndarray:
        """Bool mask over :attr:`features`: which ones are categorical."""
        return np.array([f not in _NUMERIC for f in self.features], dtype=bool)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """The design matrix (float, NaN = missing) of the rows of ``frame``."""
        columns = []
        for name in self.features:
            if name not in frame:
                columns.append(np.full(len(frame), np.nan))
            elif name in _NUMERIC:
                values = pd.to_numeric(frame[name].astype("Float64"), errors="coerce")
                columns.append(values.to_numpy(dtype=float, na_value=np.nan))
            else:
                text = frame[name].astype("string").fillna("")
                code = pd.Index(self.vocabularies[name]).get_indexer(text).astype(float)
                code[code < 0] = np.nan
                columns.append(code)
        return np.column_stack(columns) if columns else np.zeros((len(frame), 0))

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "categorical": [f for f in self.features if f not in _NUMERIC],
            "vocabularies": {k: list(v) for k, v in self.vocabularies.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(
            features=tuple(data["features"]),
            vocabularies={k: tuple(v) for k, v in data["vocabularies"].items()},
        )


def members_from_households(households: pd.DataFrame) -> pd.DataFrame:
    """Adult members read from a households table when no members file is given.

    Each household has ``adults`` members (1 when the column is empty); member k takes the
    k-th ``education`` and ``sector`` of the ';'-separated lists. The household's ``gender``
    and ``age_group`` describe its main applicant, so only the first member gets them; the
    others' gender, age group and language stay missing (a members file gives better scores).
    """
    hh = households.reset_index(drop=True)
    adults = hh["adults"].astype("Int64").fillna(1).to_numpy(dtype=np.int64).clip(min=1)
    row = np.repeat(np.arange(len(hh)), adults)
    rank = np.arange(len(row)) - np.repeat(np.cumsum(adults) - adults, adults)

    def nth(column: str) -> list[str | None]:
        if column not in hh:
            return [None] * len(row)
        lists = hh[column].astype("string").fillna("").str.split(";").tolist()
        return [
            (lists[r][k].strip() or None) if k < len(lists[r]) else None
            for r, k in zip(row, rank, strict=True)
        ]

    def head(column: str) -> list[str | None]:
        if column not in hh:
            return [None] * len(row)
        values = hh[column].astype("string").tolist()
        return [
            values[r] if k == 0 and not pd.isna(values[r]) else None
            for r, k in zip(row, rank, strict=True)
        ]

    return pd.DataFrame(
        {
            "household_id": pd.array(hh["household_id"].astype(str).to_numpy()[row], "string"),
            "gender": pd.array(head("gender"), "string"),
            "age_group": pd.array(head("age_group"), "string"),
            "education": pd.array(nth("education"), "string"),
            "sector": pd.array(nth("sector"), "string"),
            "language": pd.array([None] * len(row), "string"),
            "nationality_group": pd.array([None] * len(row), "string"),
        }
    )


def network_regions(
    network: pd.Series, codes: np.ndarray, region_of: np.ndarray, n_regions: int
) -> np.ndarray:
    """Bool matrix households x regions: the household knows people in the region.

    ``network`` holds ';'-joined municipality codes per household (missing = none); ``codes``
    and ``region_of`` give each municipality's region index. Unknown codes are ignored (the
    households loader has already rejected them).
    """
    parts = network.reset_index(drop=True).astype("string").fillna("").str.split(";").explode()
    parts = parts.str.strip()
    parts = parts[parts != ""]
    out = np.zeros((len(network), n_regions), dtype=bool)
    if parts.empty:
        return out
    index = pd.Index(codes).get_indexer(parts.to_numpy(dtype=object))
    ok = index >= 0
    out[parts.index.to_numpy(dtype=np.int64)[ok], region_of[index[ok]]] = True
    return out
