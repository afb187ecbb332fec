"""Stage 1 (coupler.engine.stage1): the fewest uncoupled, then broken, persons."""

from __future__ import annotations

from factories import Case, brute_force, engine_settings, tiny_cases
from hypothesis import given
from hypothesis import strategies as st

from coupler import CouplingModel, build_model
from coupler.engine.backends import get_backend
from coupler.engine.stage1 import solve_stage1
from coupler.result import Status

SETTINGS = engine_settings(40)


def _stage1(model: CouplingModel) -> tuple[int, int]:
    s1 = solve_stage1(model, get_backend("highs"), time_limit=30.0, seed=0)
    assert s1.proven and s1.status is Status.OPTIMAL
    return s1.uncoupled, s1.broken


@SETTINGS
@given(tiny_cases(), st.integers(0, 7))
def test_minimum_equals_brute_force_without_locks(case: Case, keep: int) -> None:
    """Without pins and bans, and with every remaining quota cut to at most ``keep`` persons (so
    that shortages force broken criteria or uncoupled persons), stage 1's proven minimum
    uncoupled persons, then broken persons, equals the enumerated lexicographic minimum."""
    inst = case.inst.replace(locks=None)
    model = build_model(inst.with_remaining(inst.remaining.clip(max=keep)), case.policy)
    best = brute_force(model)
    assert _stage1(model) == (best.uncoupled, best.broken)


@SETTINGS
@given(tiny_cases())
def test_minimum_with_locks_is_a_lower_bound(case: Case) -> None:
    """With pins and bans stage 1 lets a broken household go anywhere (its bans are enforced in
    stage 2, see the module docstring), so its minimum is lexicographically at most the
    enumerated one; and equal when nobody has a lock."""
    model = build_model(case.inst, case.policy)
    best = brute_force(model)
    got = _stage1(model)
    assert got <= (best.uncoupled, best.broken)
    if not model.forbidden.any():
        assert got == (best.uncoupled, best.broken)


def test_tiny_shortage_needs_one_broken_person(tiny_shortage) -> None:
    """Two job-holders, one place near the job: exactly one person is broken, none uncoupled."""
    s1 = solve_stage1(tiny_shortage.model, get_backend("highs"), time_limit=30.0, seed=0)
    assert (s1.uncoupled, s1.broken) == (tiny_shortage.uncoupled, tiny_shortage.broken) == (0, 1)


def test_national_batch_needs_nobody_broken(national_model) -> None:
    """The national monthly batch has room near every hard criterion: the proven minimum is 0
    uncoupled and 0 broken persons."""
    s1 = solve_stage1(national_model, get_backend("highs"), time_limit=60.0, seed=0)
    assert (s1.uncoupled, s1.broken) == (0, 0)
    assert s1.proven
