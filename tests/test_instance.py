"""The immutable Instance: frames copied in and out, read-only arrays, replace makes a new one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from factories import LINE, Crit, criteria, households, instance, municipalities

from coupler import InputError, Instance


def _inst() -> Instance:
    return instance(LINE[:3], [3, 4, 5], [2, 1], [Crit.job(0, 0)])


def test_frames_handed_in_are_copied() -> None:
    """Changing a frame after building the instance does not change the instance."""
    m = municipalities(LINE[:3], [3, 4, 5])
    h = households([2, 1])
    c = criteria([Crit.job(0, 0)])
    inst = Instance(municipalities=m, households=h, criteria=c)
    m.loc[0, "remaining"] = 99
    h.loc[0, "size"] = 7
    c.loc[0, "municipality"] = "GM9003"
    assert inst.municipalities.loc[0, "remaining"] == 3
    assert inst.households.loc[0, "size"] == 2
    assert inst.criteria.loc[0, "municipality"] == "GM9001"


def test_changing_a_frame_handed_out_leaves_the_derived_arrays() -> None:
    """Writing into a frame read from the instance never reaches its derived arrays."""
    inst = _inst()
    sizes = inst.sizes.copy()
    remaining = inst.remaining.copy()
    inst.households.loc[0, "size"] = 9
    inst.municipalities.loc[0, "remaining"] = 0
    assert inst.sizes.tolist() == sizes.tolist()
    assert inst.remaining.tolist() == remaining.tolist()


def test_frames_handed_out_are_copies() -> None:
    """Writing into a frame read from the instance does not change the instance's table (the
    module docstring promises frames are copied on the way out)."""
    inst = _inst()
    inst.households.loc[0, "size"] = 9
    assert inst.households.loc[0, "size"] == 2


@pytest.mark.parametrize(
    "name", ["codes", "household_ids", "sizes", "remaining", "quota", "distance_km"]
)
def test_derived_arrays_are_read_only(name: str) -> None:
    """Every derived array refuses writes."""
    a = getattr(_inst(), name)
    with pytest.raises(ValueError, match="read-only"):
        a[0] = a[0]


def test_fields_cannot_be_reassigned() -> None:
    """The instance is a frozen dataclass: assigning a table is an error."""
    inst = _inst()
    with pytest.raises(dataclasses.FrozenInstanceError):
        inst.households = inst.households  # type: ignore[misc]


def test_replace_makes_a_new_validated_object() -> None:
    """replace returns a different object with the change and leaves the original as it was;
    with_remaining does the same for the remaining quotas."""
    inst = _inst()
    locks = pd.DataFrame(
        {
            "household_id": pd.array(["H001"], dtype="string"),
            "municipality": pd.array(["GM9002"], dtype="string"),
            "action": pd.array(["ban"], dtype="string"),
        }
    )
    other = inst.replace(locks=locks)
    assert other is not inst
    assert inst.locks is None
    assert other.locks is not None and other.locks["action"].tolist() == ["ban"]
    fewer = inst.with_remaining(np.array([0, 1, 2]))
    assert fewer is not inst
    assert fewer.remaining.tolist() == [0, 1, 2]
    assert inst.remaining.tolist() == [3, 4, 5]


def test_replace_revalidates() -> None:
    """A variant with a criterion pointing to an unknown household is rejected like a new one."""
    inst = _inst()
    bad = inst.criteria.copy()
    bad.loc[0, "household_id"] = "H999"
    with pytest.raises(InputError, match="unknown households"):
        inst.replace(criteria=bad)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, h: (m.assign(code=["GM9001"] * 3), h), "duplicate municipality codes"),
        (lambda m, h: (m.assign(remaining=[1, -1, 1]), h), "remaining quota must be >= 0"),
        (lambda m, h: (m, h.assign(household_id=["H001", "H001"])), "duplicate household ids"),
        (lambda m, h: (m, h.assign(size=[0, 1])), "sizes must be >= 1"),
    ],
    ids=["duplicate-code", "negative-remaining", "duplicate-id", "size-0"],
)
def test_invalid_tables_are_rejected(change, message: str) -> None:
    """Each cross-table problem is an InputError naming the table and the problem."""
    m, h = change(municipalities(LINE[:3], [3, 4, 5]), households([2, 1]))
    with pytest.raises(InputError, match=message):
        Instance(municipalities=m, households=h, criteria=criteria([]))


def test_checksum_changes_with_content_only() -> None:
    """The same tables give the same checksums; a changed size changes the households digest
    and nothing else."""
    a, b = _inst(), _inst()
    assert a.checksum() == b.checksum()
    h = a.households.copy()
    h.loc[1, "size"] = 3
    c = a.replace(households=h).checksum()
    changed = {k for k in c if c[k] != a.checksum()[k]}
    assert changed == {"households"}
