"""The coupling model: cheap variants (other capacities, other weights) equal a fresh build."""

from __future__ import annotations

import dataclasses

import numpy as np
from factories import LINE, Crit, instance

from coupler import Policy, build_model
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
    model from ``instance.with_remaining(r)``, and reuses the criteria and soft parts."""
    inst = _inst()
    policy = Policy().with_(quota={"tolerance": 0.1})
    model = build_model(inst, policy)
    remaining = np.array([1, 0, 3, 2, 5, 4], dtype=np.int64)
    cheap = model.with_capacity(remaining)
    fresh = build_model(inst.with_remaining(remaining), policy)
    for name in ("cap", "target", "value", "forbidden", "size"):
        np.testing.assert_array_equal(getattr(cheap, name), getattr(fresh, name))
    np.testing.assert_array_equal(cheap.instance.remaining, remaining)
    assert cheap.parts is model.parts
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


def test_parts_are_kept_once_and_weighted_into_value() -> None:
    """The model keeps each soft part as criteria computes it; ``value`` is their weighted sum."""
    inst = _inst()
    policy = Policy()
    model = build_model(inst, policy)
    parts = soft_parts(inst, policy)
    expected = sum(getattr(policy.weights, n) * parts[n] for n in SOFT_PARTS)
    for name in SOFT_PARTS:
        np.testing.assert_array_equal(model.parts[name], parts[name])
        assert not model.parts[name].flags.writeable
    np.testing.assert_allclose(model.value, expected, atol=1e-12)
