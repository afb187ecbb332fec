"""Score a batch: P(work) per adult member at each labour-market region, aggregated per household.

The household score combines **every** adult member by the policy's rule
(``policy.soft.aggregation``), so it never follows one member alone:

* ``mean``: the mean of the members' probabilities;
* ``any``: the chance that at least one member works, ``1 - prod(1 - p)``;
* ``sum``: the expected number of members at work, divided by the largest number of adult
  members of any household in the batch, so that scores stay in [0, 1] and stay proportional
  to expected persons at work across households.

The result is the ``--scores`` table of ``coupler solve``: ``household_id``,
``labour_market_region``, ``score``, one row per household and region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from coupler.learn.features import members_from_households, network_regions
from coupler.learn.fit import LearnedModel
from coupler.policy import Aggregation

__all__ = ["Scored", "aggregate", "score_batch"]


@dataclass(frozen=True, eq=False)
class Scored:
    """Scores of one batch.

    Attributes
    ----------
    scores
        The ``--scores`` table: ``household_id``, ``labour_market_region``, ``score``.
    members
        The adult members scored (from the members file, or read from the households).
    probability
        P(work) per member (rows of ``members``) and region (columns: ``regions``).
    regions
        Region names, in column order.
    """

    scores: pd.DataFrame
    members: pd.DataFrame
    probability: np.ndarray
    regions: tuple[str, ...]


def aggregate(
    probability: np.ndarray, household: np.ndarray, n_households: int, rule: Aggregation
) -> np.ndarray:
    """Household x region scores from member x region probabilities.

    Parameters
    ----------
    probability
        Members x regions, values in [0, 1].
    household
        Household index (0 .. n_households - 1) of each member row.
    n_households
        Number of households; each must have at least one member.
    rule
        ``"sum"``, ``"mean"`` or ``"any"`` (see the module docstring).
    """
    counts = np.bincount(household, minlength=n_households).astype(float)
    if (counts == 0).any():
        raise ValueError("every household needs at least one member")
    out = np.zeros((n_households, probability.shape[1]))
    if rule == "any":
        np.add.at(out, household, np.log1p(-np.clip(probability, 0.0, 1.0 - 1e-12)))
        return np.asarray(1.0 - np.exp(out))
    np.add.at(out, household, probability)
    if rule == "mean":
        return out / counts[:, None]
    if rule == "sum":
        return out / counts.max()
    raise ValueError(f"unknown aggregation {rule!r}")


def score_batch(
    model: LearnedModel,
    households: pd.DataFrame,
    municipalities: pd.DataFrame,
    *,
    members: pd.DataFrame | None = None,
    aggregation: Aggregation = "mean",
    cohort: int | None = None,
) -> Scored:
    """Score every household of a batch at every labour-market region.

    Parameters
    ----------
    model
        A fitted model (:func:`coupler.learn.fit.load_model`).
    households
        Canonical households (``coupler.io.load_households``).
    municipalities
        Canonical municipalities; their regions are the places scored.
    members
        Adult members (:func:`coupler.learn.table.load_members`); read from ``households``
        when omitted (:func:`coupler.learn.features.members_from_households`).
    aggregation
        The policy's rule for combining members.
    cohort
        The arrival cohort to score as; the model's latest cohort when omitted.
    """
    hh = households.reset_index(drop=True)
    people = members_from_households(hh) if members is None else members.reset_index(drop=True)
    regions = tuple(sorted(set(municipalities["labour_market_region"].astype(str))))
    region_index = {r: i for i, r in enumerate(regions)}
    codes = municipalities["code"].astype(str).to_numpy(dtype=object)
    region_of = np.array(
        [region_index[r] for r in municipalities["labour_market_region"].astype(str)],
        dtype=np.int64,
    )
    position = pd.Series(np.arange(len(hh)), index=hh["household_id"].astype(str))
    household = position[people["household_id"].astype(str)].to_numpy(dtype=np.int64)
    network = (
        network_regions(hh["network"], codes, region_of, len(regions))
        if "network" in hh
        else np.zeros((len(hh), len(regions)), dtype=bool)
    )
    household_type = (
        hh["household_type"].astype("string").to_numpy(dtype=object)
        if "household_type" in hh
        else np.full(len(hh), None, dtype=object)
    )
    base = people.assign(
        household_type=household_type[household],
        cohort=model.score_cohort if cohort is None else cohort,
    )
    n, k = len(base), len(regions)
    rows = base.loc[base.index.repeat(k)].reset_index(drop=True)
    rows["labour_market_region"] = np.tile(np.asarray(regions, dtype=object), n)
    rows["network"] = network[household].ravel().astype(float)
    probability = model.predict(rows).reshape(n, k)
    score = aggregate(probability, household, len(hh), aggregation)
    scores = pd.DataFrame(
        {
            "household_id": np.repeat(hh["household_id"].astype(str).to_numpy(), k),
            "labour_market_region": np.tile(np.asarray(regions, dtype=object), len(hh)),
            "score": np.clip(score.ravel(), 0.0, 1.0).round(6),
        }
    )
    return Scored(scores=scores, members=people, probability=probability, regions=regions)
