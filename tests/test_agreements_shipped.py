"""Each shipped agreement overlay loads and changes exactly what its tables say.

The overlays are read from this checkout's ``scenarios/nl-2024/agreements`` (what ships with this
version); every check is driven by the file's own tables, so a new overlay is checked too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from factories import with_azc_jobs

from coupler import CouplingModel, Instance, Policy, load_instance
from coupler.agreements import Agreement
from coupler.criteria import soft_parts

AGREEMENTS = Path(__file__).parents[1] / "scenarios" / "nl-2024" / "agreements"
FILES = sorted(AGREEMENTS.glob("*.toml"))
IDS = [f.stem for f in FILES]


def _load(name: str) -> Agreement:
    return Agreement.from_file(AGREEMENTS / f"{name}.toml")


def _members(inst: Instance, column: str, names: list[str]) -> np.ndarray:
    return inst.municipalities[column].astype(str).isin(names).to_numpy()


@pytest.fixture(scope="module")
def eindhoven_cases(national_cases) -> tuple[Instance, list[str]]:
    """The national monthly batch with its first three households moved to azc Eindhoven
    (GM0772), each with a part-time job (4 h/week, so not hard) in Eindhoven."""
    hh, cr, ids = with_azc_jobs(*national_cases, "GM0772")
    return load_instance(hh, cr), ids


def test_every_shipped_agreement_loads(nl_municipalities) -> None:
    """Every shipped overlay reads, names real places, has a description, and changes at least
    one layer (policy, inputs or model arrays)."""
    assert {"eindhoven-jobs", "radius-30", "utrecht-pool"} <= set(IDS)
    for f in FILES:
        a = Agreement.from_file(f)
        a.check(nl_municipalities)
        assert a.description
        assert a.policy or a.bans or a.pools or a.multipliers, f.name


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_policy_layer_changes_only_its_keys(path: Path, national_model: CouplingModel) -> None:
    """The merged policy has the overlay's [policy] values and every other key of the base."""
    a = Agreement.from_file(path)
    base = national_model.policy.to_dict()
    merged = a.apply_policy(national_model.policy).to_dict()
    for section, values in base.items():
        for key, value in values.items():
            expected = a.policy.get(section, {}).get(key, value)
            assert merged[section][key] == expected, (section, key)


def test_radius_30_shrinks_the_allowed_area(national_model: CouplingModel) -> None:
    """radius-30 sets the hard radius to 30 km; for every household without a conflict (where a
    criterion yields and the area can widen) the allowed municipalities shrink to a subset of the
    50 km ones, strictly fewer in total."""
    a = _load("radius-30")
    assert a.apply_policy(national_model.policy).hard.radius_km == 30.0
    model = a.build(national_model.instance, national_model.policy)
    conflicted = np.zeros(model.n_households, dtype=bool)
    for m in (model, national_model):
        conflicted[m.hard.conflicts["household"].to_numpy(dtype=np.int64)] = True
    ok = ~conflicted
    assert not (model.allowed[ok] & ~national_model.allowed[ok]).any()
    assert model.allowed.sum() < national_model.allowed.sum()


def test_eindhoven_jobs_bans_its_job_holders_outside_the_region(eindhoven_cases) -> None:
    """eindhoven-jobs bans the azc-Eindhoven households with a job inside Zuidoost-Brabant from
    exactly the municipalities outside that region; every other banned household also lives in
    azc Eindhoven; the base instance keeps no locks."""
    inst, ids = eindhoven_cases
    out = _load("eindhoven-jobs").apply_instance(inst, Policy())
    assert out.locks is not None and (out.locks["action"] == "ban").all()
    region = _members(inst, "labour_market_region", ["Zuidoost-Brabant"])
    outside = set(inst.codes[~region])
    for hid in ids:
        banned = set(out.locks.loc[out.locks["household_id"] == hid, "municipality"])
        assert banned == outside
    hh = inst.households.set_index("household_id")
    assert (hh.loc[sorted(set(out.locks["household_id"])), "azc"] == "GM0772").all()
    assert inst.locks is None


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_pools_multiply_member_caps_and_band_the_total(path: Path, national_model) -> None:
    """Each [[pool]] multiplies its members' capacity by member_cap, zeroes their own fill
    targets and adds one band between min_fill and max_fill x their fair share; municipalities
    outside every pool keep their capacity and target."""
    a = Agreement.from_file(path)
    if not a.pools:
        pytest.skip("no [[pool]] in this overlay")
    model = a.apply_model(national_model)
    inst = national_model.instance
    pooled = np.zeros(model.n_municipalities, dtype=bool)
    bands = model.bands[len(national_model.bands) :]
    assert len(bands) == len(a.pools)
    for pool, band in zip(a.pools, bands, strict=True):
        members = pool.area.mask(inst.municipalities, a.source, "test")
        pooled |= members
        assert (band.members == members).all()
        base_cap = national_model.cap[members]
        if pool.member_cap == "pool":
            assert (model.cap[members] == base_cap.sum()).all()
        else:
            expected = np.floor(base_cap * float(pool.member_cap) + 1e-9)
            assert (model.cap[members] == expected).all()
        assert (model.target[members] == 0).all()
        share = float(national_model.target[members].sum())
        assert band.lo == min(int(np.floor(pool.min_fill * share + 1e-9)), int(base_cap.sum()))
        if np.isfinite(pool.max_fill):
            assert band.hi <= int(np.ceil(pool.max_fill * share - 1e-9))
    assert (model.cap[~pooled] == national_model.cap[~pooled]).all()
    assert (model.target[~pooled] == national_model.target[~pooled]).all()


def test_utrecht_pool_is_the_26_utrecht_municipalities(national_model) -> None:
    """utrecht-pool pools the 26 municipalities of the province of Utrecht (DOMAIN.md section 7)
    and doubles their capacity."""
    model = _load("utrecht-pool").apply_model(national_model)
    utrecht = _members(national_model.instance, "province", ["Utrecht"])
    assert utrecht.sum() == 26
    assert (model.cap[utrecht] == 2 * national_model.cap[utrecht]).all()


@pytest.mark.parametrize("path", FILES, ids=IDS)
def test_weight_multipliers_change_only_their_area(path: Path, national_model) -> None:
    """Each [[weight_multiplier]] adds (factor - 1) x the weighted named soft parts in its
    municipalities and changes no value elsewhere."""
    a = Agreement.from_file(path)
    if not a.multipliers:
        pytest.skip("no [[weight_multiplier]] in this overlay")
    model = a.apply_model(national_model)
    inst = national_model.instance
    w = national_model.policy.weights
    parts = soft_parts(inst, national_model.policy)
    expected = np.zeros_like(national_model.value)
    for wm in a.multipliers:
        cols = wm.area.mask(inst.municipalities, a.source, "test")
        extra = sum(getattr(w, p) * parts[p] for p in wm.parts)
        expected[:, cols] += (wm.factor - 1.0) * extra[:, cols]
    np.testing.assert_allclose(model.value - national_model.value, expected, atol=1e-12)
    assert (model.cap == national_model.cap).all()


def test_base_model_is_untouched(national_model) -> None:
    """Applying every shipped agreement leaves the base model's arrays as they were."""
    before = (national_model.value.copy(), national_model.cap.copy(), national_model.target.copy())
    for f in FILES:
        Agreement.from_file(f).build(national_model.instance, national_model.policy)
        Agreement.from_file(f).apply_model(national_model)
    assert (national_model.value == before[0]).all()
    assert (national_model.cap == before[1]).all()
    assert (national_model.target == before[2]).all()
