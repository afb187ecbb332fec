"""Scenarios (coupler.scenario): the embedded national reference and loading a folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from coupler import InputError, embedded_scenario, load_instance, load_scenario


def test_embedded_scenario_has_342_municipalities(nl_municipalities: pd.DataFrame) -> None:
    """nl-2024 loads 342 municipalities with unique codes in 12 provinces and 35 labour-market
    regions, and a demand table."""
    m = nl_municipalities
    assert len(m) == 342 and m["code"].is_unique
    assert m["province"].nunique() == 12
    assert m["labour_market_region"].nunique() == 35
    _, demand = load_scenario()
    assert demand is not None and len(demand) > 0


@pytest.mark.parametrize("total", [0, 1, 17_600, 28_000])
def test_quotas_sum_to_the_total(total: int) -> None:
    """The quotas of the embedded scenario sum exactly to the given national total, and
    remaining equals quota (no backlog in the reference)."""
    m, _ = load_scenario(total=total)
    assert int(m["quota"].sum()) == total
    assert (m["remaining"] == m["quota"]).all()


def test_unknown_embedded_scenario_is_an_input_error() -> None:
    """Asking for a scenario that is not shipped is an InputError naming it."""
    with pytest.raises(InputError, match="nl-1900: no such embedded scenario"):
        embedded_scenario("nl-1900")


def test_folder_without_municipalities_is_an_input_error(tmp_path: Path) -> None:
    """A scenario folder without municipalities.csv is an InputError naming the folder."""
    with pytest.raises(InputError, match="has no municipalities.csv"):
        load_scenario(tmp_path)


def test_negative_total_is_an_input_error() -> None:
    """--total below 0 is an InputError naming the option."""
    with pytest.raises(InputError, match="--total: must be between 0 and 100,000,000; got -1"):
        load_scenario(total=-1)


def test_load_instance_from_frames_keeps_every_household(national_cases, national_instance):
    """Generated frames load into an instance with every household and criterion, in order."""
    hh, cr = national_cases
    assert national_instance.household_ids.tolist() == hh["household_id"].astype(str).tolist()
    assert len(national_instance.criteria) == len(cr)
    assert int(national_instance.sizes.sum()) == 4_700
    assert national_instance.n_municipalities == 342


def test_load_instance_without_criteria_has_an_empty_criteria_table(national_cases) -> None:
    """Without criteria the instance holds an empty criteria table with the canonical columns."""
    hh, _ = national_cases
    inst = load_instance(hh)
    assert len(inst.criteria) == 0
    assert list(inst.criteria.columns) == [
        "household_id",
        "kind",
        "municipality",
        "hours_per_week",
        "contract_signed",
        "payslip_seen",
    ]
