"""Each shipped agreement overlay loads and changes exactly what its description says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from coupler import CouplingModel, Instance, Policy, embedded_scenario, load_instance
from coupler.analysis.agreements import Agreement
from coupler.criteria import soft_parts

AGREEMENTS = embedded_scenario() / "agreements"


def _load(name: str) -> Agreement:
    return Agreement.from_file(AGREEMENTS / f"{name}.toml")


def _members(inst: Instance, column: str, names: list[str]) -> np.ndarray:
    return inst.municipalities[column].astype(str).isin(names).to_numpy()


@pytest.fixture(scope="module")
def eindhoven_cases(national_cases) -> tuple[Instance, list[str]]:
    """The national monthly batch with its first three households moved to azc Eindhoven
    (GM0772), each with a part-time job (4 h/week, so not hard) in Eindhoven."""
    hh, cr = (f.copy() for f in national_cases)
    ids = hh["household_id"].iloc[:3].astype(str).tolist()
    hh.loc[hh.index[:3], "azc"] = "GM0772"
    extra = pd.DataFrame(
        {
            "household_id": ids,
            "kind": "work",
            "municipality": "GM0772",
            "hours_per_week": 4.0,
            "contract_signed": True,
            "payslip_seen": True,
        }
    ).astype(cr.dtypes.to_dict())
    return load_instance(hh, pd.concat([cr, extra], ignore_index=True)), ids


def test_every_shipped_agreement_loads(nl_municipalities) -> None:
    """Every shipped overlay reads, names real places, and has a name and description."""
    files = sorted(AGREEMENTS.glob("*.toml"))
    assert {f.stem for f in files} == {
        "drechtsteden-work",
        "eindhoven-jobs",
        "radius-30",
        "utrecht-pool",
    }
    for f in files:
        a = Agreement.from_file(f)
        a.check(nl_municipalities)
        assert a.name == f.stem
        assert a.description


def test_radius_30_only_shrinks_the_radius(national_model: CouplingModel) -> None:
    """radius-30 sets the hard radius to 30 km and changes nothing else in the policy; for every
    household without a conflict (where a criterion yields and the area can widen) the allowed
    municipalities shrink to a subset of the 50 km ones, strictly fewer in total."""
    a = _load("radius-30")
    base = national_model.policy
    pol = a.apply_policy(base)
    assert pol.hard.radius_km == 30.0
    assert pol.with_(hard={"radius_km": base.hard.radius_km}) == base
    model = a.build(national_model.instance, base)
    conflicted = np.zeros(model.n_households, dtype=bool)
    for m in (model, national_model):
        conflicted[m.hard.conflicts["household"].to_numpy(dtype=np.int64)] = True
    ok = ~conflicted
    assert not (model.allowed[ok] & ~national_model.allowed[ok]).any()
    assert model.allowed.sum() < national_model.allowed.sum()


def test_eindhoven_jobs_bans_only_its_job_holders(eindhoven_cases) -> None:
    """eindhoven-jobs bans exactly the azc-Eindhoven households with a job inside
    Zuidoost-Brabant from every municipality outside that region, and nobody else."""
    inst, ids = eindhoven_cases
    a = _load("eindhoven-jobs")
    out = a.apply_instance(inst, Policy())
    assert out.locks is not None
    assert set(out.locks["household_id"]) >= set(ids)
    region = _members(inst, "labour_market_region", ["Zuidoost-Brabant"])
    outside = set(inst.codes[~region])
    for hid in ids:
        banned = set(out.locks.loc[out.locks["household_id"] == hid, "municipality"])
        assert banned == outside
    # Anybody else banned must also live in azc Eindhoven with a job in the region.
    others = set(out.locks["household_id"]) - set(ids)
    hh = inst.households.set_index("household_id")
    assert all(hh.loc[h, "azc"] == "GM0772" for h in others)
    assert inst.locks is None


def test_utrecht_pool_doubles_member_caps_and_bands_the_total(national_model) -> None:
    """utrecht-pool doubles the capacity of every Utrecht municipality, zeroes their own fill
    targets, adds one band on their total between 1.0 and 1.1 x their fair share, and leaves
    every other municipality and the values as they were."""
    a = _load("utrecht-pool")
    model = a.apply_model(national_model)
    inst = national_model.instance
    utrecht = _members(inst, "province", ["Utrecht"])
    assert utrecht.sum() == 26
    assert (model.cap[utrecht] == 2 * national_model.cap[utrecht]).all()
    assert (model.cap[~utrecht] == national_model.cap[~utrecht]).all()
    assert (model.target[utrecht] == 0).all()
    assert (model.target[~utrecht] == national_model.target[~utrecht]).all()
    (band,) = model.bands[len(national_model.bands) :]
    assert (band.members == utrecht).all()
    share = float(national_model.target[utrecht].sum())
    assert band.lo == int(np.floor(share + 1e-9))
    assert band.hi == int(np.ceil(1.1 * share - 1e-9))
    assert model.value is national_model.value


def test_drechtsteden_work_doubles_the_work_parts_there(national_model) -> None:
    """drechtsteden-work adds once more the weighted labour and work_soft parts in the six
    Drechtsteden municipalities (factor 2) and changes no other value."""
    a = _load("drechtsteden-work")
    model = a.apply_model(national_model)
    inst = national_model.instance
    names = [
        "Dordrecht",
        "Zwijndrecht",
        "Papendrecht",
        "Sliedrecht",
        "Hendrik-Ido-Ambacht",
        "Alblasserdam",
    ]
    cols = _members(inst, "name", names)
    assert cols.sum() == 6
    w = national_model.policy.weights
    parts = soft_parts(inst, national_model.policy)
    extra = w.labour * parts["labour"] + w.work_soft * parts["work_soft"]
    diff = model.value - national_model.value
    np.testing.assert_allclose(diff[:, cols], extra[:, cols], atol=1e-12)
    assert (diff[:, ~cols] == 0).all()
    assert diff[:, cols].sum() > 0
    assert (model.cap == national_model.cap).all()


def test_base_model_is_untouched(national_model) -> None:
    """Applying every shipped agreement leaves the base model's arrays as they were."""
    before = (national_model.value.copy(), national_model.cap.copy(), national_model.target.copy())
    for f in sorted(AGREEMENTS.glob("*.toml")):
        Agreement.from_file(f).build(national_model.instance, national_model.policy)
        Agreement.from_file(f).apply_model(national_model)
    assert (national_model.value == before[0]).all()
    assert (national_model.cap == before[1]).all()
    assert (national_model.target == before[2]).all()
