"""Results: the assignment array, plan_assignment's join by label, and the pickle round trip."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from factories import LINE, code, hid, instance

from coupler import Policy, build_model, solve
from coupler.errors import CouplerError
from coupler.result import plan_assignment


def _solved():  # type: ignore[no-untyped-def]
    """Four households (sizes 1, 2, 1, 3) on six places with quota 3 each: all fit."""
    inst = instance(LINE, [3] * 6, [1, 2, 1, 3], azc=[0, 1, 2, 3])
    model = build_model(inst, Policy())
    return inst, model, solve(model)


def test_plan_assignment_inverts_the_plan_table() -> None:
    """Reading a result's plan table back by label gives the result's own assignment array,
    also when the rows are shuffled."""
    inst, _, res = _solved()
    np.testing.assert_array_equal(plan_assignment(inst, res.plan), res.assignment)
    shuffled = res.plan.sample(frac=1.0, random_state=1)
    np.testing.assert_array_equal(plan_assignment(inst, shuffled), res.assignment)


def test_plan_assignment_reads_empty_codes_as_uncoupled() -> None:
    """An empty or missing municipality is uncoupled (-1); an unlisted household too."""
    inst, _, _ = _solved()
    plan = pd.DataFrame(
        {"household_id": [hid(0), hid(1), hid(2)], "municipality": [code(2), None, ""]}
    )
    np.testing.assert_array_equal(plan_assignment(inst, plan), [2, -1, -1, -1])


@pytest.mark.parametrize(
    ("ids", "codes", "match"),
    [
        ([hid(0)], ["GM9999"], "municipality codes"),
        (["H999"], [code(0)], "households the instance does not know"),
        ([hid(0), hid(0)], [code(0), code(1)], "twice"),
    ],
)
def test_plan_assignment_raises_on_unknown_labels(
    ids: list[str], codes: list[str], match: str
) -> None:
    """An unknown municipality code or household id, or a household listed twice, raises; it is
    never read as uncoupled."""
    inst, _, _ = _solved()
    with pytest.raises(CouplerError, match=match):
        plan_assignment(inst, pd.DataFrame({"household_id": ids, "municipality": codes}))


def test_result_pickles_with_its_assignment() -> None:
    """A result survives pickling: same assignment, plan, objective and status."""
    _, _, res = _solved()
    back = pickle.loads(pickle.dumps(res))
    np.testing.assert_array_equal(back.assignment, res.assignment)
    pd.testing.assert_frame_equal(back.plan, res.plan)
    assert (back.objective, back.status) == (res.objective, res.status)


def test_no_plan_is_a_status_not_an_exception() -> None:
    """A band no plan can meet gives an infeasible result with a reason, not an exception;
    require_plan then raises with that reason."""
    inst = instance(LINE, [3] * 6, [1, 2], provinces=["A", "A", "A", "B", "B", "B"])
    policy = Policy.from_dict(
        {"quota": {"bands": [{"level": "province", "name": "B", "min_fill": 50.0}]}}
    )
    res = solve(build_model(inst, policy))
    assert res.status == "infeasible"
    assert not res.has_plan
    assert (res.assignment == -1).all()
    assert "side constraints" in res.info["message"]
    with pytest.raises(CouplerError, match="no plan"):
        res.require_plan()
