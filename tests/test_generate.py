"""Tests of the seeded case generator (coupler.generate) and ``coupler generate``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from coupler import schema
from coupler.cli import main
from coupler.errors import InputError
from coupler.generate import (
    AGE_GROUPS,
    GENDERS,
    HOUSEHOLD_TYPES,
    GeneratorParams,
    generate_cases,
)


@pytest.fixture(scope="session")
def municipalities(nl_municipalities: pd.DataFrame) -> pd.DataFrame:
    """The 342 municipalities of the embedded nl-2024 reference scenario (conftest.py)."""
    return nl_municipalities


@pytest.fixture(scope="session")
def big(municipalities: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A 20,000-person batch with seed 3: large enough for proportions within a few points."""
    return generate_cases(municipalities, 20_000, seed=3)


def test_same_seed_gives_identical_frames(municipalities: pd.DataFrame) -> None:
    """Same municipalities, persons and seed give identical frames; another seed differs."""
    h1, c1 = generate_cases(municipalities, 5_000, seed=11)
    h2, c2 = generate_cases(municipalities, 5_000, seed=11)
    pd.testing.assert_frame_equal(h1, h2)
    pd.testing.assert_frame_equal(c1, c2)
    h3, _ = generate_cases(municipalities, 5_000, seed=12)
    assert not h1.equals(h3)


def test_canonical_columns(big: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """Both frames have exactly the canonical columns, in schema order."""
    households, criteria = big
    assert list(households.columns) == list(schema.HOUSEHOLD_REQUIRED + schema.HOUSEHOLD_OPTIONAL)
    assert list(criteria.columns) == list(schema.CRITERIA_REQUIRED + schema.CRITERIA_OPTIONAL)


@pytest.mark.parametrize("persons", [1, 2, 9, 10, 4_700, 20_001])
def test_sizes_sum_to_persons(municipalities: pd.DataFrame, persons: int) -> None:
    """Household sizes sum to exactly ``persons`` and each lies in 1..9."""
    households, _ = generate_cases(municipalities, persons, seed=persons)
    assert int(households["size"].sum()) == persons
    assert households["size"].between(1, 9).all()


def test_ids_unique_and_pseudonymous(municipalities: pd.DataFrame) -> None:
    """Ids are unique, follow ``<prefix>NNNNNN`` and every criterion points to a household; a
    kind other than work appears at most once per household (work once per working adult)."""
    households, criteria = generate_cases(municipalities, 3_000, seed=5, id_prefix="T")
    ids = households["household_id"]
    assert ids.is_unique
    assert ids.str.fullmatch(r"T\d{6}").all()
    assert set(criteria["household_id"]) <= set(ids)
    assert not criteria[criteria["kind"] != "work"].duplicated(["household_id", "kind"]).any()
    jobs = criteria[criteria["kind"] == "work"].groupby("household_id").size()
    adults = households.set_index("household_id")["adults"]
    assert (jobs <= adults.reindex(jobs.index)).all()


def test_municipality_codes_are_known(
    municipalities: pd.DataFrame, big: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    """Every criterion, azc, preference and network code is a municipality code."""
    households, criteria = big
    codes = set(municipalities["code"])
    assert set(criteria["municipality"]) <= codes
    assert set(households["azc"]) <= codes
    assert set(households["preferred_municipality"].dropna()) <= codes
    network = households["network"].dropna().str.split(";").explode()
    assert set(network) <= codes
    assert set(households["preferred_region"].dropna()) <= set(
        municipalities["labour_market_region"]
    )


def test_proportions(big: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """At 20,000 persons the shares match the calibration within a sampling tolerance: about
    4 % of adults work (a household may hold two jobs), main applicants are about 25 % women
    and single parents mostly women."""
    households, criteria = big
    n = len(households)
    share = criteria["kind"].value_counts() / n
    jobs_per_adult = share["work"] * n / households["adults"].sum()
    assert 0.033 <= jobs_per_adult <= 0.047  # about 4 % of adults work
    assert 0.085 <= share["family"] <= 0.115
    assert 0.012 <= share["study"] <= 0.030
    assert 0.008 <= share["medical"] <= 0.022
    assert 0.52 <= (households["size"] == 1).mean() <= 0.58
    assert 1.8 <= households["size"].mean() <= 2.0
    assert 0.17 <= households["preferred_municipality"].notna().mean() <= 0.23
    assert 0.22 <= households["network"].notna().mean() <= 0.28
    assert abs((households["gender"] == "f").mean() - 0.25) < 0.03
    single_parents = households[households["household_type"] == "single-parent"]
    assert (single_parents["gender"] == "f").mean() > 0.7
    jobs = criteria[criteria["kind"] == "work"].groupby("household_id").size()
    assert (jobs >= 2).sum() > 0  # a household may hold more than one job
    # a few households carry two or more criteria
    per_household = criteria.groupby("household_id").size()
    assert 0 < (per_household >= 2).sum() < 0.05 * n


def test_work_mostly_qualifies(big: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """A part of the jobs (about 60 %) meets >= 8 h with contract and payslip; the others are
    still listed."""
    _, criteria = big
    work = criteria[criteria["kind"] == "work"]
    assert work["hours_per_week"].notna().all()
    qualifying = (
        (work["hours_per_week"] >= 8) & work["contract_signed"] & work["payslip_seen"]
    ).astype(bool)
    assert 0.5 <= qualifying.mean() <= 0.75
    other = criteria[criteria["kind"] != "work"]
    assert other["hours_per_week"].isna().all()
    assert other["contract_signed"].isna().all()


def test_jobs_mostly_near_azc(
    municipalities: pd.DataFrame, big: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    """Most jobs lie within the work radius (30 km) of the household's azc."""
    households, criteria = big
    pos = municipalities.set_index("code")[["lat", "lon"]]
    work = criteria[criteria["kind"] == "work"].merge(households[["household_id", "azc"]])
    a = np.radians(pos.loc[work["azc"]].to_numpy())
    b = np.radians(pos.loc[work["municipality"]].to_numpy())
    h = (
        np.sin((b[:, 0] - a[:, 0]) / 2) ** 2
        + np.cos(a[:, 0]) * np.cos(b[:, 0]) * np.sin((b[:, 1] - a[:, 1]) / 2) ** 2
    )
    km = 2 * 6371.0 * np.arcsin(np.sqrt(h))
    assert 0.7 <= (km <= 30.5).mean() <= 0.95


def test_composition_consistent(big: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    """adults >= 1, adults + children == size, per-adult lists and types match the counts."""
    households, _ = big
    assert (households["adults"] >= 1).all()
    assert (households["children"] >= 0).all()
    assert (households["adults"] + households["children"] == households["size"]).all()
    for column, vocab in (("education", schema.EDUCATION_LEVELS), ("sector", schema.SECTORS)):
        parts = households[column].str.split(";")
        assert (parts.str.len() == households["adults"]).all()
        assert set(parts.explode()) <= set(vocab)
    t = households["household_type"]
    assert set(t) <= set(HOUSEHOLD_TYPES)
    assert (households.loc[t == "single", "size"] == 1).all()
    assert (households.loc[t == "couple", "children"] == 0).all()
    assert (households.loc[t == "single-parent", "adults"] == 1).all()
    assert (households.loc[t == "family", "children"] > 0).all()
    assert set(households["gender"]) <= set(GENDERS)
    assert set(households["age_group"]) <= set(AGE_GROUPS)


def test_two_half_years_in_one_batch(municipalities: pd.DataFrame) -> None:
    """60,000 persons (two national half years) come out exact: sizes sum to 60,000 and every
    id is unique. (Generation speed is measured by the benchmarks, not asserted here.)"""
    households, _ = generate_cases(municipalities, 60_000, seed=1)
    assert int(households["size"].sum()) == 60_000
    assert households["household_id"].is_unique


def test_unknown_azc_name_fails_loudly(municipalities: pd.DataFrame) -> None:
    """A configured municipality name that is not in the table is an InputError naming it."""
    params = dataclasses.replace(GeneratorParams(), azc=(("Ter Apel", 1.0),))
    with pytest.raises(InputError, match="Ter Apel"):
        generate_cases(municipalities, 100, params=params)


def test_bad_params_and_persons(municipalities: pd.DataFrame) -> None:
    """Probabilities outside [0, 1] and persons < 1 are rejected."""
    with pytest.raises(ValueError, match="p_work"):
        GeneratorParams(p_work=1.5)
    with pytest.raises(ValueError, match="persons"):
        generate_cases(municipalities, 0)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_cli_writes_both_files(tmp_path: Path, fmt: str) -> None:
    """``coupler generate`` writes households and criteria and prints a summary."""
    out = tmp_path / "cases"
    result = CliRunner().invoke(
        main, ["generate", "--persons", "500", "--seed", "2", "--out", str(out), "--format", fmt]
    )
    assert result.exit_code == 0, result.output
    assert (out / f"households.{fmt}").is_file()
    assert (out / f"criteria.{fmt}").is_file()
    assert "500 persons" in result.output
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    assert int(read(out / f"households.{fmt}")["size"].sum()) == 500


def test_cli_rejects_bad_persons(tmp_path: Path) -> None:
    """--persons 0 is a usage error (exit 2) without a traceback, and nothing is written."""
    out = tmp_path / "cases"
    result = CliRunner().invoke(main, ["generate", "--persons", "0", "--out", str(out)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "--persons" in result.output
    assert not out.exists()
