"""The batch explanations (coupler.explain.criteria_table, alternatives_table) agree with the
one-household explanation (explain_household) on every household of a generated batch."""

from __future__ import annotations

import numpy as np
import pytest

from coupler.engine import solve
from coupler.explain import alternatives_table, criteria_table, explain_household
from coupler.generate import generate_cases
from coupler.model import build_model
from coupler.policy import Policy
from coupler.scenario import load_instance, load_scenario


@pytest.fixture(scope="module")
def solved():
    """A generated batch of 120 persons (seed 5) on the national scenario with a small total
    (600), so that some places are full and some hard criteria conflict."""
    municipalities, _ = load_scenario()
    hh, cr = generate_cases(municipalities, persons=120, seed=5)
    model = build_model(load_instance(hh, cr, total=600), Policy())
    return model, solve(model).require_plan()


def test_alternatives_agree_with_why_not(solved) -> None:
    """For every household and each of its three alternatives, the batch table's score
    difference, room, objective change and why-not reason match explain_household(why_not=...)."""
    model, result = solved
    alts = alternatives_table(model, result, k=3)
    assert set(alts["rank"]) <= {1, 2, 3}
    assert alts.groupby("household_id").size().max() == 3
    for row in alts.itertuples(index=False):
        wn = explain_household(model, result, row.household_id, why_not=row.municipality)["why_not"]
        assert np.isclose(row.score_diff, wn["score_diff"])
        assert np.isclose(row.objective_delta, wn["objective_delta"])
        assert row.room == wn["room"]
        text = " ".join(wn["reasons"])
        if row.why_not == "breaks":
            assert "would break" in text
        elif row.why_not == "no_room":
            assert "no room" in text and "would break" not in text
        elif row.why_not in ("lower_score", "fill_balance"):
            assert "lower the objective" in text
        else:
            assert "raise the objective" in text


def test_criteria_table_agrees_with_explain(solved) -> None:
    """Each criterion's distance and verdict in the batch table equal explain_household's."""
    model, result = solved
    table = criteria_table(model, result)
    assert len(table) == len(model.hard.table)
    for h, group in table.groupby("household_id"):
        one = explain_household(model, result, h)["criteria"]
        assert list(group["state"]) == [c["state"] for c in one]
        for d, c in zip(group["distance_km"], one, strict=True):
            assert (np.isnan(d) and c["distance_km"] is None) or np.isclose(d, c["distance_km"])
