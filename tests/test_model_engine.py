"""The coupling model: cheap variants (other capacities, other weights) equal a fresh build."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from factories import LINE, Crit, instance

from coupler import Policy, blocks, build_model
from coupler.criteria import SOFT_PARTS, soft_parts
from coupler.policy import Weights


def _inst():  # type: ignore[no-untyped-def]
    """Six places on a line, quotas 4..9, five households with an azc and one work criterion."""
    return instance(
        LINE,
        [4, 5, 6, 7, 8, 9],
        [1, 2, 3, 1, 4],
        [Crit(1, "work", 2)],
        azc=[0, 1, 2, 3, 4],
    )


def test_with_capacity_equals_a_fresh_build() -> None:
    """``model.with_capacity(r)`` has the same capacities, targets and values as building the
    model from ``instance.with_remaining(r)``, and reuses the criteria and the value."""
    inst = _inst()
    policy = Policy().with_(quota={"tolerance": 0.1})
    model = build_model(inst, policy)
    remaining = np.array([1, 0, 3, 2, 5, 4], dtype=np.int64)
    cheap = model.with_capacity(remaining)
    fresh = build_model(inst.with_remaining(remaining), policy)
    for name in ("cap", "target", "value", "forbidden", "size"):
        np.testing.assert_array_equal(getattr(cheap, name), getattr(fresh, name))
    np.testing.assert_array_equal(cheap.instance.remaining, remaining)
    assert cheap.value is model.value
    assert cheap.hard is model.hard


def test_with_weights_equals_a_fresh_build() -> None:
    """``model.with_weights(w)`` scores exactly as a model built under a policy with ``w``."""
    inst = _inst()
    model = build_model(inst, Policy())
    weights = Weights(labour=0.0, network=2.0, ambition=0.5, azc=3.0, participation=0.0)
    cheap = model.with_weights(weights)
    fresh = build_model(inst, dataclasses.replace(Policy(), weights=weights))
    np.testing.assert_array_equal(cheap.value, fresh.value)
    assert cheap.policy.weights == weights


def test_value_is_the_weighted_sum_of_whole_parts_bit_for_bit() -> None:
    """``value`` (summed a block of households at a time, parts with weight 0 skipped) equals
    summing the whole parts of criteria in ``SOFT_PARTS`` order exactly, also when the blocks
    are single households; it is read-only and the model keeps no soft part."""
    inst = _inst()
    policy = Policy().with_(weights={"ambition": 0.0, "network": 2.0})
    parts = soft_parts(inst, policy)
    expected = np.zeros_like(parts["labour"])
    for name in SOFT_PARTS:
        weight = getattr(policy.weights, name)
        if weight:
            expected += weight * parts[name]
    model = build_model(inst, policy)
    np.testing.assert_array_equal(model.value, expected)
    assert not model.value.flags.writeable
    assert not hasattr(model, "parts")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(blocks, "BLOCK_PAIRS", 1)
        np.testing.assert_array_equal(build_model(inst, policy).value, expected)
