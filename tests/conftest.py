"""Session fixtures shared by the whole suite (PyVRP-style): each says what it is and its optimum.

Two scales:

* tiny instances built in memory (:mod:`factories`) whose optimum is worked out by hand and
  confirmed by enumerating every plan;
* the national monthly batch: the embedded nl-2024 scenario (342 municipalities) with a generated
  batch of 4,700 persons (seed 0), generated, built and solved once per session.

Fixtures hand out immutable objects (an :class:`~coupler.instance.Instance` copies its frames in
and out; model arrays are read-only), so a test cannot disturb another through them. The
shared frames (the scenario and the generated cases) must be copied before a change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from factories import ONLY_PARTICIPATION, shortage_instance, swap_instance
from pgutil import ledger_target

from coupler import (
    CouplingModel,
    Instance,
    Policy,
    Result,
    build_model,
    generate_cases,
    load_instance,
    load_scenario,
    solve,
)

#: Persons and seed of the national monthly batch (a peak month: ~28,000 persons / 6).
NATIONAL_PERSONS = 4_700
NATIONAL_SEED = 0


@dataclass(frozen=True, eq=False)
class Known:
    """A tiny model with its hand-checked lexicographic optimum and one optimal plan."""

    model: CouplingModel
    uncoupled: int
    broken: int
    objective: float
    assignment: np.ndarray  # municipality index per household (-1 = uncoupled)

    @property
    def instance(self) -> Instance:
        return self.model.instance


@pytest.fixture(scope="session")
def tiny() -> Known:
    """factories.swap_instance: two places on one parallel (34 km apart) with 2 and 4 places
    left; three households of 2, 1 and 1 persons; participation scores only (fill balance off).

    Scores (household -> place 0 / place 1): H001 1.0 / 0.2, H002 0.9 / 0.1, H003 0.5 / 0.4.
    Place 0 holds two persons: H001 there gives 1.0 + 0.1 + 0.4 = 1.5, H002 and H003 there give
    0.9 + 0.5 + 0.2 = 1.6. Optimum: nobody uncoupled or broken, objective 1.6, plan [1, 0, 0].
    """
    inst = swap_instance()
    return Known(build_model(inst, ONLY_PARTICIPATION), 0, 0, 1.6, _plan(1, 0, 0))


@pytest.fixture(scope="session")
def tiny_shortage() -> Known:
    """factories.shortage_instance: four places on one parallel with 1, 0, 0, 5 places left; two
    single job-holders, both with a qualifying job at place 0; participation scores H001 0.3 and
    H002 0.8 at place 0.

    Only place 0 (one place) lies within 50 km of the job and has room, so one person must break
    the work criterion. Optimum: 0 uncoupled, 1 broken, objective 0.8 (H002 keeps the job at
    place 0; H001 goes to place 3, the only other place with room), plan [3, 0].
    """
    inst = shortage_instance()
    return Known(build_model(inst, ONLY_PARTICIPATION), 0, 1, 0.8, _plan(3, 0))


def _plan(*places: int) -> np.ndarray:
    a = np.array(places, dtype=np.int64)
    a.flags.writeable = False
    return a


@pytest.fixture(scope="session")
def nl_municipalities() -> pd.DataFrame:
    """The embedded nl-2024 scenario: 342 municipalities with the default national half-year
    total (28,000 persons) divided by population into ``quota`` and ``remaining``.

    Read once per session and shared: copy it before changing it.
    """
    municipalities, _ = load_scenario()
    return municipalities


@pytest.fixture(scope="session")
def national_cases(nl_municipalities: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(households, criteria) of the national monthly batch: 4,700 persons (about 2,400
    households), seed 0, on nl-2024.

    Generated once per session and shared: copy a frame before changing it.
    """
    return generate_cases(nl_municipalities, persons=NATIONAL_PERSONS, seed=NATIONAL_SEED)


@pytest.fixture(scope="session")
def national_instance(national_cases: tuple[pd.DataFrame, pd.DataFrame]) -> Instance:
    """The national monthly batch as a validated instance on the embedded nl-2024 scenario:
    342 municipalities, 4,700 persons (seed 0), their generated hard criteria."""
    households, criteria = national_cases
    return load_instance(households, criteria)


@pytest.fixture(scope="session")
def national_model(national_instance: Instance) -> CouplingModel:
    """The national monthly batch under the default policy, built once."""
    return build_model(national_instance, Policy())


@pytest.fixture(scope="session")
def national_result(national_model: CouplingModel) -> Result:
    """The national monthly batch solved once with the default engine and policy.

    Its optimum: quotas leave room for every job-holder near the job, so the proven minimum is
    0 uncoupled and 0 broken persons; the soft objective is within the policy's gap of the proven
    bound (about 3,000 with the default weights).
    """
    return solve(national_model)


__all__ = ["ledger_target"]
