"""Tests for :mod:`coupler.io`: reading files and validating them into canonical frames."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coupler import schema
from coupler.errors import InputError, Problem
from coupler.io import (
    Checker,
    Places,
    limit,
    load_criteria,
    load_demand,
    load_distances,
    load_households,
    load_locks,
    load_municipalities,
    load_scores,
    read_rules,
    read_table,
    resolve_municipalities,
)
from coupler.io.cells import parse_number

DATA = Path(__file__).parent / "data"
VALID = DATA / "valid"
MALFORMED = DATA / "malformed"
SCENARIO = Path(__file__).parents[1] / "scenarios" / "nl-2024" / "municipalities.csv"


@pytest.fixture(scope="session")
def municipalities() -> pd.DataFrame:
    """Six real municipalities (Eindhoven, Utrecht, Amsterdam, Almere, Maastricht,
    Súdwest-Fryslân) with quotas; the reference frame of every other loader test."""
    return load_municipalities(VALID / "municipalities.csv")


@pytest.fixture(scope="session")
def households(municipalities: pd.DataFrame) -> pd.DataFrame:
    """Five households H001-H005 of sizes 1, 5, 2, 3 and 4."""
    return load_households(VALID / "households.csv", municipalities)


def _loader(kind: str, municipalities: pd.DataFrame, households: pd.DataFrame) -> Callable:
    return {
        "table": read_table,
        "municipalities": load_municipalities,
        "households": lambda p: load_households(p, municipalities),
        "criteria": lambda p: load_criteria(p, households, municipalities),
        "scores": lambda p: load_scores(p, households, municipalities),
        "locks": lambda p: load_locks(p, households, municipalities),
        "demand": lambda p: load_demand(p, municipalities),
        "distances": lambda p: load_distances(p, municipalities),
    }[kind]


# file -> (loader, message substring, row, column, number of problems)
# fmt: off
MALFORMED_CASES: dict[str, tuple[str, str, int | None, str | None, int]] = {
    "municipalities_missing_population.csv": (
        "municipalities", "missing required column 'population'", None, "population", 1),
    "municipalities_duplicate_code.csv": (
        "municipalities", "duplicate code 'GM0772' (first on row 2)", 4, "code", 1),
    "municipalities_bad_code.csv": (
        "municipalities", "code must be 'GM' and four digits", 3, "code", 1),
    "municipalities_outside_nl.csv": (
        "municipalities", "(inside the Netherlands); got 48.8566", 2, "lat", 1),
    "municipalities_negative_quota.csv": (
        "municipalities", "quota must be a whole number between 0 and 100,000,000; got -5",
        3, "quota", 1),
    "municipalities_population_text.csv": (
        "municipalities", "'abc' is not a whole number", 2, "population", 1),
    "municipalities_lon_inf.csv": (
        "municipalities", "'inf' is not a finite number", 3, "lon", 1),
    "municipalities_duplicate_name.csv": (
        "municipalities",
        "duplicate name 'eindhoven' (names are compared ignoring case and punctuation) "
        "(first on row 2)",
        3, "name", 1),
    "municipalities_thousands.csv": (
        "municipalities", "thousands separator", 2, "population", 1),
    "municipalities_population_1e16.csv": (
        "municipalities",
        "'10000000000000000' is far too large; population must be a whole number between 0 "
        "and 100,000,000",
        3, "population", 1),
    "municipalities_quota_2_63.csv": (
        "municipalities", "quota must be a whole number between 0 and 100,000,000", 3, "quota", 1),
    "municipalities_backlog_1e308.csv": (
        "municipalities", "backlog must be a whole number between -100,000,000 and 100,000,000",
        3, "backlog", 1),
    "municipalities_huge_digits.csv": (
        "municipalities", "population must be a whole number between 0 and 100,000,000",
        3, "population", 1),
    "households_unknown_azc.csv": (
        "households", "unknown municipality; did you mean 'Eindhoven'?", 3, "azc", 1),
    "households_size_zero.csv": (
        "households", "size must be a whole number between 1 and 30", 2, "size", 1),
    "households_fractional_size.csv": (
        "households", "size must be a whole number between 1 and 30", 3, "size", 1),
    "households_size_nan.csv": (
        "households", "not NaN or infinity", 2, "size", 1),
    "households_size_1e23.csv": (
        "households", "size must be a whole number between 1 and 30", 3, "size", 1),
    "households_size_million.csv": (
        "households", "size must be a whole number between 1 and 30", 2, "size", 1),
    "households_duplicate_id.csv": (
        "households", "duplicate household_id (first on row 3)", 4, "household_id", 1),
    "households_header_only.csv": ("households", "has no data rows", None, None, 1),
    "households_adults_children.csv": (
        "households", "adults + children must equal size", 2, "size", 1),
    "households_unknown_education.csv": (
        "households", "education must be ';'-separated values from", 2, "education", 1),
    "households_unknown_region.csv": (
        "households", "unknown labour_market_region; did you mean 'Zuidoost-Brabant'?",
        2, "preferred_region", 1),
    "households_ragged.csv": (
        "households", "has 4 cells but the header has 3", 3, None, 1),
    "households_latin1.csv": (
        "households", "is not valid UTF-8: the first bad byte is on line 4", 4, None, 1),
    "households_utf16.csv": ("households", "UTF-16", None, None, 1),
    "empty.csv": ("households", "file is empty", None, None, 1),
    "corrupt.xlsx": ("households", "cannot be read as an Excel workbook", None, None, 1),
    "households_two_sheets.xlsx": (
        "households", "has 2 visible sheets ('Households', 'Lists'); name the one to read with "
        "--sheet NAME or as FILE.xlsx#NAME", None, None, 1),
    # The hidden sheet is valid; the visible one, read by default, is not.
    "households_hidden_sheet.xlsx": (
        "households", "size must be a whole number between 1 and 30", 3, "size", 1),
    "households_missing_size.csv": (
        "households", "missing required column 'size' (found: 'household_id', 'azc')",
        None, "size", 1),
    "households_unknown_network.csv": (
        "households", "unknown municipality", 2, "network", 1),
    "households_duplicate_header.csv": (
        "households", "column 'size' appears twice in the header", 1, "size", 1),
    "households_misspelt_sector.csv": (
        "households", "unknown column 'sectr' (column 3); did you mean 'sector'?",
        1, "sectr", 1),
    "households_misspelt_preferred.csv": (
        "households",
        "unknown column 'prefered_municipality' (column 3); did you mean "
        "'preferred_municipality'?",
        1, "prefered_municipality", 1),
    "households_control_char.csv": (
        "households", "contains a control character (U+0007)", 3, "household_id", 1),
    "households_newline_in_cell.csv": (
        "households", "contains a control character (U+000A)", 3, "gender", 1),
    "households_bidi_override.csv": (
        "households", "contains a control character (U+202E)", 3, "age_group", 1),
    "households_no_header.csv": (
        "households", "the first row is not a header", 1, None, 1),
    "households.json": ("table", "unknown file type '.json'", None, None, 1),
    "households_three_errors.csv": (
        "households", "unknown municipality; did you mean 'Eindhoven'?", 3, "azc", 3),
    "criteria_unknown_household.csv": (
        "criteria", "criterion points to a household that is not in the households file",
        3, "household_id", 1),
    "criteria_unknown_kind.csv": (
        "criteria", "kind must be one of: work, family, study, medical", 2, "kind", 1),
    "criteria_bad_boolean.csv": (
        "criteria", "contract_signed must be yes or no", 2, "contract_signed", 1),
    "criteria_negative_hours.csv": (
        "criteria", "hours_per_week must be a number between 0 and 80", 2, "hours_per_week", 1),
    "criteria_hours_81.csv": (
        "criteria", "hours_per_week must be a number between 0 and 80", 3, "hours_per_week", 1),
    "criteria_hours_1e308.csv": (
        "criteria", "hours_per_week must be a number between 0 and 80", 2, "hours_per_week", 1),
    "criteria_empty.csv": ("criteria", "file is empty (0 bytes)", None, None, 1),
    "criteria_misspelt_payslip.csv": (
        "criteria", "unknown column 'payslip seen' (column 6); did you mean 'payslip_seen'?",
        1, "payslip seen", 1),
    "criteria_misspelt_hours.csv": (
        "criteria", "unknown column 'hours' (column 4); did you mean 'hours_per_week'?",
        1, "hours", 1),
    "criteria_no_header.csv": ("criteria", "the first row is not a header", 1, None, 1),
    "scores_out_of_range.csv": (
        "scores", "score must be a number between 0 and 1", 3, "score", 1),
    "scores_both_targets.csv": ("scores", "not both", 2, "municipality", 1),
    "scores_duplicate.csv": (
        "scores", "a second score for the same household and place (first on row 2)",
        3, "household_id", 1),
    "locks_two_pins.csv": (
        "locks", "the household is pinned twice (first pin on row 2)", 3, "action", 1),
    "locks_pin_and_ban.csv": (
        "locks", "the household is both pinned and banned at this municipality (row 2)",
        3, "action", 1),
    "locks_unknown_action.csv": ("locks", "action must be one of: pin, ban", 2, "action", 1),
    "locks_no_header.csv": ("locks", "the first row is not a header", 1, None, 1),
    "demand_unknown_sector.csv": ("demand", "unknown sector 'healthcare'", 2, "sector", 1),
    "demand_duplicate.csv": (
        "demand", "duplicate demand for 'Zuidoost-Brabant' and 'care' (first on row 2)",
        3, "sector", 1),
    "demand_out_of_range.csv": (
        "demand", "demand must be a number between 0 and 1; got 2", 2, "demand", 1),
    "demand_unknown_column.csv": (
        "demand", "unknown column 'sourse' (column 4); did you mean 'source'?", 1, "sourse", 1),
    "distances_negative_km.csv": (
        "distances", "km must be a number between 0 and 1,500; got -5", 2, "km", 1),
    "distances_km_1e308.csv": (
        "distances", "km must be a number between 0 and 1,500", 2, "km", 1),
    "distances_km_2000.csv": (
        "distances", "km must be a number between 0 and 1,500; got 2000", 3, "km", 1),
    "distances_self.csv": (
        "distances", "the distance from GM0772 to itself must be 0; got 100", 3, "km", 1),
    "distances_duplicate.csv": (
        "distances", "duplicate distance from 'GM0772' to 'GM0344' (first on row 2)",
        3, "to", 1),
}
# fmt: on


def test_every_malformed_file_has_a_case() -> None:
    """Each file in tests/data/malformed is covered by the parametrised test, and vice versa."""
    assert sorted(p.name for p in MALFORMED.iterdir()) == sorted(MALFORMED_CASES)


@pytest.mark.parametrize("name", sorted(MALFORMED_CASES))
def test_malformed_file(name: str, municipalities: pd.DataFrame, households: pd.DataFrame) -> None:
    """Each malformed file raises one InputError whose problems name the file as given and
    include the expected message at the expected spreadsheet row and column."""
    kind, needle, row, column, count = MALFORMED_CASES[name]
    path = str(MALFORMED / name)
    with pytest.raises(InputError) as caught:
        _loader(kind, municipalities, households)(path)
    problems = caught.value.problems
    assert len(problems) == count, caught.value.render()
    assert all(p.file == path for p in problems)
    matching = [p for p in problems if needle in p.message]
    assert matching, caught.value.render()
    assert (matching[0].row, matching[0].column) == (row, column)


def test_three_errors_reported_together(municipalities: pd.DataFrame) -> None:
    """A file with a bad size, a duplicate id and an unknown azc reports all three at once,
    sorted by row."""
    with pytest.raises(InputError) as caught:
        load_households(MALFORMED / "households_three_errors.csv", municipalities)
    problems = caught.value.problems
    assert [(p.row, p.column) for p in problems] == [(2, "size"), (3, "household_id"), (3, "azc")]
    assert "size must be a whole number between 1 and 30" in problems[0].message
    assert "duplicate household_id (first on row 2)" in problems[1].message
    assert "did you mean 'Eindhoven'?" in problems[2].message


@pytest.mark.parametrize("value", ["Fatima", "Fatima El Amrani", "1985-03-02"])
def test_household_messages_hide_personal_values(
    tmp_path: Path, municipalities: pd.DataFrame, value: str
) -> None:
    """A personal-looking value planted in numeric, vocabulary and boolean cells of household
    and criteria files never appears in any error message."""
    households_file = tmp_path / "households.csv"
    households_file.write_text(
        "household_id,size,adults,children,education,sector\n"
        f"H001,{value},{value},{value},{value},{value}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as caught:
        load_households(households_file, municipalities)
    assert len(caught.value.problems) == 5
    assert value not in caught.value.render()

    known = pd.DataFrame({"household_id": ["H001"]})
    criteria_file = tmp_path / "criteria.csv"
    criteria_file.write_text(
        "household_id,kind,municipality,hours_per_week,contract_signed,payslip_seen\n"
        f"H001,{value},Eindhoven,{value},{value},{value}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as caught:
        load_criteria(criteria_file, known, municipalities)
    assert len(caught.value.problems) == 4
    assert value not in caught.value.render()


def _write_xlsx(source: Path, target: Path) -> None:
    """Copy a CSV into a workbook the way a user types it: numbers as numbers."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    with source.open(encoding="utf-8", newline="") as handle:
        for cells in csv.reader(handle):
            typed: list[object] = []
            for cell in cells:
                try:
                    typed.append(float(cell) if "." in cell else int(cell))
                except ValueError:
                    typed.append(cell or None)
            sheet.append(typed)
    workbook.save(target)


@pytest.mark.parametrize("stem", ["households", "criteria"])
def test_csv_xlsx_parquet_give_identical_frames(
    tmp_path: Path, stem: str, municipalities: pd.DataFrame, households: pd.DataFrame
) -> None:
    """The same valid table as CSV, .xlsx and .parquet loads into identical canonical frames."""
    source = VALID / f"{stem}.csv"
    xlsx, parquet = tmp_path / f"{stem}.xlsx", tmp_path / f"{stem}.parquet"
    _write_xlsx(source, xlsx)
    pd.read_csv(source).to_parquet(parquet)

    def load(path: Path) -> pd.DataFrame:
        if stem == "households":
            return load_households(path, municipalities)
        return load_criteria(path, households, municipalities)

    expected = load(source)
    pd.testing.assert_frame_equal(load(xlsx), expected)
    pd.testing.assert_frame_equal(load(parquet), expected)


def test_semicolon_bom_file_equals_comma_file(municipalities: pd.DataFrame) -> None:
    """A Dutch-Excel CSV (BOM, ';', CRLF, padded cells, mixed-case header, an extra 'Notes'
    column skipped by ignore_columns) loads like the plain comma-separated one."""
    pd.testing.assert_frame_equal(
        load_households(
            VALID / "households_semicolon.csv", municipalities, ignore_columns=["Notes"]
        ),
        load_households(VALID / "households.csv", municipalities),
    )


def test_households_canonical_values(households: pd.DataFrame) -> None:
    """Households have every canonical column in order with the schema dtypes, resolved codes,
    lower-case vocabularies, canonical regions, and no extra columns."""
    assert list(households.columns) == [c for c, _ in schema.HOUSEHOLD_DTYPES]
    assert {c: str(t) for c, t in households.dtypes.items()} == dict(schema.HOUSEHOLD_DTYPES)
    assert isinstance(households.index, pd.RangeIndex)
    row = households.set_index("household_id").loc["H002"]
    assert row["azc"] == "GM0344"
    assert row["education"] == "higher;primary"
    assert row["sector"] == "care;other"
    assert row["preferred_municipality"] == "GM0344"
    assert row["preferred_region"] == "Midden-Utrecht"
    assert row["network"] == "GM0363;GM0034"
    h3 = households.set_index("household_id").loc["H003"]
    assert h3["azc"] == "GM1900"
    assert pd.isna(h3["adults"]) and pd.isna(h3["education"])
    assert households["size"].tolist() == [1, 5, 2, 3, 4]


def test_criteria_canonical_values(households: pd.DataFrame, municipalities: pd.DataFrame) -> None:
    """Criteria resolve municipality names, lower-case kinds and parse Dutch/English booleans;
    empty booleans and hours stay missing."""
    criteria = load_criteria(VALID / "criteria.csv", households, municipalities)
    assert {c: str(t) for c, t in criteria.dtypes.items()} == dict(schema.CRITERIA_DTYPES)
    assert criteria["kind"].tolist() == ["work", "family", "medical", "study"]
    assert criteria["municipality"].tolist() == ["GM0772", "GM0363", "GM0935", "GM0772"]
    assert criteria["contract_signed"].tolist() == [True, pd.NA, pd.NA, False]
    assert criteria["payslip_seen"].tolist() == [True, pd.NA, pd.NA, False]
    assert criteria["hours_per_week"].tolist() == [24.0, pd.NA, pd.NA, 12.5]


def test_header_only_criteria_is_an_empty_set(
    households: pd.DataFrame, municipalities: pd.DataFrame
) -> None:
    """A criteria file with only a header is a valid, empty criteria frame with all columns."""
    criteria = load_criteria(VALID / "criteria_header_only.csv", households, municipalities)
    assert len(criteria) == 0
    assert {c: str(t) for c, t in criteria.dtypes.items()} == dict(schema.CRITERIA_DTYPES)


def test_other_valid_tables(households: pd.DataFrame, municipalities: pd.DataFrame) -> None:
    """Scores, locks, demand (';' and decimal commas) and distances load with schema dtypes."""
    scores = load_scores(VALID / "scores.csv", households, municipalities)
    assert scores["municipality"].tolist() == ["GM0772", pd.NA, "GM0344"]
    assert scores["labour_market_region"].tolist() == [pd.NA, "Groot Amsterdam", pd.NA]
    locks = load_locks(VALID / "locks.csv", households, municipalities)
    assert locks["municipality"].tolist() == ["GM0772", "GM0363", "GM0034"]
    demand = load_demand(VALID / "demand.csv", municipalities)
    assert demand["labour_market_region"].tolist() == ["Zuidoost-Brabant"] * 2 + ["Groot Amsterdam"]
    assert demand["sector"].tolist() == ["care", "technology", "care"]
    assert demand["demand"].tolist() == [0.9, 0.75, 0.5]
    distances = load_distances(VALID / "distances.csv", municipalities)
    assert distances["to"].tolist() == ["GM0344", "GM0772", "GM0935"]
    for frame, dtypes in [
        (scores, schema.SCORES_DTYPES),
        (locks, schema.LOCKS_DTYPES),
        (demand, schema.DEMAND_DTYPES),
        (distances, schema.DISTANCE_DTYPES),
    ]:
        assert {c: str(t) for c, t in frame.dtypes.items()} == dict(dtypes)


def test_scenario_municipalities_load() -> None:
    """The national reference scenario has 342 municipalities, 35 regions and 12 provinces,
    with the canonical dtypes."""
    frame = load_municipalities(SCENARIO)
    assert len(frame) == 342
    assert frame["labour_market_region"].nunique() == 35
    assert frame["province"].nunique() == 12
    assert {c: str(t) for c, t in frame.dtypes.items()} == dict(schema.MUNICIPALITY_DTYPES)
    assert frame["quota"].isna().all()


def test_resolve_municipalities(municipalities: pd.DataFrame) -> None:
    """Codes and names resolve case-insensitively after trimming; empty values are missing
    but not unknown; the index of the input is kept."""
    values = pd.Series(["gm0772", "  EINDHOVEN ", "Eindhovn", "", None], index=list("abcde"))
    codes, unknown = resolve_municipalities(values, municipalities)
    assert codes.tolist() == ["GM0772", "GM0772", pd.NA, pd.NA, pd.NA]
    assert unknown.tolist() == [False, False, True, False, False]
    assert list(codes.index) == list("abcde")


def test_read_table_rows_and_strings() -> None:
    """read_table keeps every cell as a stripped string and indexes rows by spreadsheet row."""
    table = read_table(VALID / "households_semicolon.csv")
    assert list(table.index) == [2, 3, 4, 5, 6]
    assert table.columns[0] == "household_id"
    assert table.loc[5, "size"] == "3.0"
    assert table.loc[6, "azc"] == ""


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: d / "absent.csv", "file not found"),
        (lambda d: d, "is a directory"),
    ],
)
def test_missing_file_and_directory(tmp_path: Path, make: Callable, needle: str) -> None:
    """A missing path and a directory are reported as problems naming the path."""
    path = make(tmp_path)
    with pytest.raises(InputError) as caught:
        read_table(path)
    assert needle in caught.value.problems[0].message
    assert caught.value.problems[0].file == str(path)


def test_excel_problems_use_sheet_rows(tmp_path: Path, municipalities: pd.DataFrame) -> None:
    """In a workbook, a blank row is skipped but problems still name the sheet's own row."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for cells in (["Household_ID", "Size"], ["H001", 2], [], ["H002", 0]):
        sheet.append(cells)
    path = tmp_path / "households.xlsx"
    workbook.save(path)
    with pytest.raises(InputError) as caught:
        load_households(path, municipalities)
    (problem,) = caught.value.problems
    assert (problem.row, problem.column) == (4, "size")


# ---------------------------------------------------------------------------------------------
# No personal value in any message (issue 11, item 4)

PLANTED = ("Fatima El Amrani", "1985-03-02", "H-Fatima-77", "Rue de Fatima 12")


def _personal_files(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Bad personal files, each with planted personal values in as many cells as it has:
    name -> (loader kind, text)."""
    name, born, hid, street = PLANTED
    return {
        "households_values.csv": (
            "households",
            "household_id,size,adults,children,azc,education,sector,preferred_municipality,"
            "preferred_region,network\n"
            f"{hid},{name},{born},{street},{name},{born},{street},{name},{born},{street}\n"
            f"{hid},2,1,1,{street},,,,,\n",
        ),
        "households_no_header.csv": (
            "households",
            f"{hid},3,{name},{born},{street}\n{hid}2,1,{name},{born},{street}\n",
        ),
        "households_no_header_duplicates.csv": (
            "households",
            f"{hid},{name},{name},{born},{born}\n",
        ),
        "households_control.csv": (
            "households",
            f"household_id,size,gender\n{hid}\x07,2,{name}\u202e\n",
        ),
        "households_ragged.csv": ("households", f"household_id,size\n{hid},2,{name}\n"),
        "criteria_values.csv": (
            "criteria",
            "household_id,kind,municipality,hours_per_week,contract_signed,payslip_seen\n"
            f"{hid},{name},{street},{born},{name},{born}\n",
        ),
        "criteria_no_header.csv": ("criteria", f"{hid},work,{street},24,{name},{born}\n"),
        "scores_values.csv": (
            "scores",
            f"household_id,municipality,labour_market_region,score\n"
            f"{hid},{street},{name},{born}\n{hid},{street},,0.5\n{hid},{street},,0.5\n",
        ),
        "locks_values.csv": (
            "locks",
            f"household_id,municipality,action\n{hid},{street},{name}\n{hid},{born},pin\n",
        ),
        "locks_no_header.csv": ("locks", f"{hid},{name},pin\n"),
    }


def test_no_personal_value_in_any_message(tmp_path: Path, municipalities: pd.DataFrame) -> None:
    """Personal values planted in every cell kind of household, criteria, score and lock files
    (ids, numbers, words, municipality references, header-less files, control characters,
    ragged rows, duplicates) never appear in a message, while each file is still refused."""
    known = pd.DataFrame({"household_id": [PLANTED[2]]})
    loaders = {
        "households": lambda p: load_households(p, municipalities),
        "criteria": lambda p: load_criteria(p, known, municipalities),
        "scores": lambda p: load_scores(p, known, municipalities),
        "locks": lambda p: load_locks(p, known, municipalities),
    }
    for file_name, (kind, text) in _personal_files(tmp_path).items():
        path = tmp_path / file_name
        path.write_text(text, encoding="utf-8")
        with pytest.raises(InputError) as caught:
            loaders[kind](path)
        rendered = caught.value.render()
        for value in PLANTED:
            for form in (value, value.lower(), value.casefold(), value[:12]):
                assert form not in rendered, (file_name, rendered)


def test_unknown_household_ids_are_not_quoted(tmp_path: Path, municipalities: pd.DataFrame) -> None:
    """A criterion naming a household absent from the households file is refused at its row and
    column without quoting the id."""
    path = tmp_path / "criteria.csv"
    path.write_text("household_id,kind,municipality\nX-Secret-1,work,Eindhoven\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_criteria(path, pd.DataFrame({"household_id": ["H001"]}), municipalities)
    (problem,) = caught.value.problems
    assert (problem.row, problem.column) == (2, "household_id")
    assert "X-Secret-1" not in caught.value.render()


# ---------------------------------------------------------------------------------------------
# Headers: unknown columns, --ignore-columns, trimming and case-folding only


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("payslip seen", "payslip_seen"),
        ("payslip-seen", "payslip_seen"),
        ("hours", "hours_per_week"),
        ("contract", "contract_signed"),
    ],
)
def test_misspelt_optional_header_is_an_error(
    tmp_path: Path,
    households: pd.DataFrame,
    municipalities: pd.DataFrame,
    header: str,
    expected: str,
) -> None:
    """A misspelt optional column is never silently dropped: it is an error at row 1 that names
    the column and suggests the right name."""
    path = tmp_path / "criteria.csv"
    path.write_text(f"household_id,kind,municipality,{header}\nH001,work,Eindhoven,yes\n")
    with pytest.raises(InputError) as caught:
        load_criteria(path, households, municipalities)
    (problem,) = caught.value.problems
    assert (problem.row, problem.column) == (1, header)
    assert f"did you mean '{expected}'?" in problem.message
    assert "--ignore-columns" in problem.message


def test_ignore_columns_skips_only_the_listed_columns(
    tmp_path: Path, municipalities: pd.DataFrame
) -> None:
    """Listed columns (trimmed, any case) are skipped; an unlisted unknown one is still an
    error; headers are matched after trimming and case-folding, so ' SIZE ' is 'size'."""
    path = tmp_path / "households.csv"
    path.write_text("household_id, SIZE ,Remarks,extra\nH001,2,x,y\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_households(path, municipalities, ignore_columns=[" remarks "])
    assert [p.column for p in caught.value.problems] == ["extra"]
    frame = load_households(path, municipalities, ignore_columns=["REMARKS", "extra"])
    assert frame["size"].tolist() == [2]
    assert list(frame.columns) == [c for c, _ in schema.HOUSEHOLD_DTYPES]


# ---------------------------------------------------------------------------------------------
# Workbooks: sheets


def _workbook(path: Path, sheets: list[tuple[str, str, list[list[object]]]]) -> Path:
    """A workbook with (title, state, rows) sheets, in order."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, state, rows in sheets:
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
        sheet.sheet_state = state
    workbook.save(path)
    return path


def test_hidden_sheet_is_never_read_by_default(
    tmp_path: Path, municipalities: pd.DataFrame
) -> None:
    """A hidden first sheet is skipped in favour of the one visible sheet; it is read only when
    named, as book.xlsx#Sheet or with sheet=."""
    header = ["household_id", "size"]
    path = _workbook(
        tmp_path / "households.xlsx",
        [
            ("Old", "hidden", [header, *[[f"O{i}", 1] for i in range(5)]]),
            ("Households", "visible", [header, *[[f"H{i}", 1] for i in range(15)]]),
        ],
    )
    assert len(load_households(path, municipalities)) == 15
    assert len(load_households(f"{path}#Old", municipalities)) == 5
    assert len(load_households(path, municipalities, sheet="old")) == 5


def test_several_visible_sheets_need_a_name(tmp_path: Path, municipalities: pd.DataFrame) -> None:
    """Two visible sheets without a name is an error listing them; a name picks one; an
    unknown name is an error naming the sheets there are."""
    header = ["household_id", "size"]
    path = _workbook(
        tmp_path / "households.xlsx",
        [
            ("March", "visible", [header, ["H1", 2]]),
            ("April", "visible", [header, ["H2", 3], ["H3", 1]]),
        ],
    )
    with pytest.raises(InputError, match=r"has 2 visible sheets \('March', 'April'\)"):
        load_households(path, municipalities)
    assert load_households(f"{path}#April", municipalities)["size"].tolist() == [3, 1]
    assert load_households(path, municipalities, sheet="March")["size"].tolist() == [2]
    with pytest.raises(InputError, match="has no sheet 'May'; its sheets: 'March', 'April'"):
        load_households(path, municipalities, sheet="May")


# ---------------------------------------------------------------------------------------------
# Numbers: plausible ranges and overflow-safe parsing


HUGE = [
    "9223372036854775808",
    "-9223372036854775809",
    "1e308",
    "-1e308",
    "1e23",
    "1e400",
    "9" * 5000,
]


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize(
    "column", ["population", "quota", "backlog", "cap_large", "cap_single", "lat", "lon"]
)
def test_huge_numbers_in_municipalities_are_clear_errors(
    tmp_path: Path, column: str, value: str
) -> None:
    """Integers beyond int64, 1e308, 1e23 and 5,000 digits in any numeric municipality column
    give one InputError at that row and column, never OverflowError or another exception."""
    frame = pd.read_csv(VALID / "municipalities.csv", dtype=str, keep_default_na=False)
    frame.loc[1, column] = value
    path = tmp_path / "municipalities.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InputError) as caught:
        load_municipalities(path)
    (problem,) = caught.value.problems
    assert (problem.row, problem.column) == (3, column)


@pytest.mark.parametrize(
    ("column", "value", "ok"),
    [
        ("size", "30", True),
        ("size", "31", False),
        ("adults", "30", True),
        ("children", "29", True),
        ("size", "1e23", False),
        ("size", "9223372036854775808", False),
    ],
)
def test_household_size_range(
    tmp_path: Path, municipalities: pd.DataFrame, column: str, value: str, ok: bool
) -> None:
    """Household sizes are at most 30 persons; beyond, or absurdly large, is an error."""
    cells = {"household_id": "H1", "size": "30", "adults": "", "children": ""}
    cells[column] = value
    if column == "adults":
        cells["size"] = value
    if column == "children":
        cells["size"] = "30"
    path = tmp_path / "households.csv"
    path.write_text(",".join(cells) + "\n" + ",".join(cells.values()) + "\n", encoding="utf-8")
    if ok:
        assert len(load_households(path, municipalities)) == 1
    else:
        with pytest.raises(InputError, match="between 1 and 30"):
            load_households(path, municipalities)


def test_zero_self_distance_is_accepted(tmp_path: Path, municipalities: pd.DataFrame) -> None:
    """A distance of 0 from a municipality to itself is fine; only another value is refused."""
    path = tmp_path / "distances.csv"
    path.write_text("from,to,km\nEindhoven,GM0772,0\nGM0772,GM0344,1500\n", encoding="utf-8")
    assert load_distances(path, municipalities)["km"].tolist() == [0.0, 1500.0]


# ---------------------------------------------------------------------------------------------
# Municipality lookup


@pytest.fixture(scope="session")
def places() -> Places:
    """The lookup over the 342 municipalities of the national scenario."""
    return Places(load_municipalities(SCENARIO))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Den Bosch", "GM0796"),
        ("den bosch", "GM0796"),
        ("s-Hertogenbosch", "GM0796"),
        ("\u2019s-Hertogenbosch", "GM0796"),
        ("Den Haag", "GM0518"),
        ("'s Gravenhage", "GM0518"),
        ("Nuenen", "GM0820"),
        ("Bergen NH", "GM0373"),
        ("Bergen (NH)", "GM0373"),
        ("bergen (nh.)", "GM0373"),
        ("Bergen L", "GM0893"),
        ("Bergen (L)", "GM0893"),
        ("Hengelo", "GM0164"),
        ("Sudwest Fryslan", "GM1900"),
        ("S\u00daDWEST-FRYSL\u00c2N", "GM1900"),
        ("gm0772", "GM0772"),
        ("0772", "GM0772"),
        ("  Eindhoven ", "GM0772"),
    ],
)
def test_places_accept_usual_names(places: Places, text: str, code: str) -> None:
    """Codes, CBS names and the usual short names resolve regardless of case, accents,
    apostrophes and punctuation."""
    assert places.code(text) == code


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("Den Bos", "'s-Hertogenbosch"),
        ("Bosch", "'s-Hertogenbosch"),
        ("Eindhovn", "Eindhoven"),
        ("Amsterdm", "Amsterdam"),
        ("Bergen", "Bergen (L.)"),
        ("Utrecht (U)", "Utrecht"),
    ],
)
def test_places_suggestions_are_sensible(places: Places, text: str, first: str) -> None:
    """An unknown name is suggested the municipality people mean, never an unrelated one."""
    assert places.code(text) is None
    suggestions = places.suggest_municipality(text, 3)
    assert suggestions[0] == first
    assert "Stede Broec" not in suggestions


def test_bergen_alone_is_ambiguous(places: Places) -> None:
    """'Bergen' names two municipalities, so it resolves to neither and suggests both."""
    assert places.code("Bergen") is None
    assert {"Bergen (L.)", "Bergen (NH.)"} <= set(places.suggest_municipality("Bergen", 3))


# ---------------------------------------------------------------------------------------------
# Rule files


@dataclass(frozen=True)
class _Leg:
    """A nested table with a required key."""

    name: str
    km: float = field(default=1.0, metadata=limit(ge=0))


@dataclass(frozen=True)
class _Rules:
    """Every kind of field read_rules understands."""

    radius_km: float = field(default=50.0, metadata=limit(gt=0))
    count: int = 3
    strict: bool = True
    mode: Literal["a", "b"] = "a"
    names: tuple[str, ...] = ()
    shares: dict[str, float] = field(default_factory=dict)
    legs: tuple[_Leg, ...] = ()


def test_read_rules_reads_every_field_kind() -> None:
    """A good table becomes the frozen dataclass; a missing key keeps its default."""
    problems: list[Problem] = []
    rules = read_rules(
        _Rules,
        {
            "radius_km": 30,
            "mode": "b",
            "names": ["x", "y"],
            "shares": {"sy": 0.8},
            "legs": [{"name": "north", "km": 2}],
        },
        table="[hard]",
        source="p.toml",
        problems=problems,
    )
    assert problems == []
    assert rules == _Rules(30.0, 3, True, "b", ("x", "y"), {"sy": 0.8}, (_Leg("north", 2.0),))


def test_read_rules_rejects_in_one_message_shape() -> None:
    """Every bad value and unknown key is collected, each in the documented shape."""
    problems: list[Problem] = []
    read_rules(
        _Rules,
        {
            "radius_km": -5,
            "radius": 5,
            "count": 1.5,
            "strict": "yes",
            "mode": "c",
            "legs": [{"km": 1}, {"name": "s", "km": -1}],
        },
        table="[hard]",
        source="p.toml",
        problems=problems,
    )
    messages = [p.message for p in problems]
    assert "policy [hard] radius_km must be > 0; got -5" in messages
    assert any(
        m.startswith("unknown key [hard] radius (did you mean 'radius_km'?)") for m in messages
    )
    assert "policy [hard] count must be a whole number; got 1.5" in messages
    assert "policy [hard] strict must be true or false; got 'yes'" in messages
    assert "policy [hard] mode must be one of ['a', 'b']; got 'c'" in messages
    assert "policy [hard] legs[0] needs name" in messages
    assert "policy [hard] legs[1] km must be >= 0; got -1" in messages
    assert all(p.file == "p.toml" for p in problems)


# ---------------------------------------------------------------------------------------------
# The command line: --ignore-columns and --sheet on `coupler solve`


def test_solve_ignore_columns_and_sheet(tmp_path: Path) -> None:
    """`coupler solve` refuses an unknown column with a did-you-mean and writes nothing;
    --ignore-columns lets it through; a two-sheet workbook needs --sheet or FILE.xlsx#SHEET."""
    from click.testing import CliRunner

    from coupler.cli import main

    households = tmp_path / "households.csv"
    households.write_text(
        "household_id,size,azc,remarks\nH1,2,Den Bosch,x\nH2,1,Den Haag,y\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    base = ["solve", "--time-limit", "20", "--out", str(out)]

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(main, [*base, *args], catch_exceptions=False)
        return result.exit_code, result.output

    code, output = run("--households", str(households))
    assert code == 2 and "unknown column 'remarks'" in output and "Traceback" not in output
    assert not out.exists()
    code, output = run("--households", str(households), "--ignore-columns", "Remarks,other")
    assert code == 0, output
    assert pd.read_csv(out / "plan.csv")["household_id"].tolist() == ["H1", "H2"]

    book = _workbook(
        tmp_path / "households.xlsx",
        [
            ("Lists", "visible", [["sector"], ["care"]]),
            ("Cases", "visible", [["household_id", "size"], ["H7", 3]]),
        ],
    )
    code, output = run("--households", str(book))
    assert code == 2 and "--sheet NAME" in output
    for args in (
        ("--households", f"{book}#Cases"),
        ("--households", str(book), "--sheet", "Cases"),
    ):
        code, output = run(*args)
        assert code == 0, output
        assert pd.read_csv(out / "plan.csv")["household_id"].tolist() == ["H7"]


def test_public_checker_require_hides_a_header_less_first_row(tmp_path: Path) -> None:
    """Readers built on the public Checker (the ledger's decisions and requests) get the same
    protection: a personal file without a header row is refused without quoting its first row."""
    path = tmp_path / "decisions.csv"
    path.write_text(f"{PLANTED[2]},{PLANTED[0]},granted\n", encoding="utf-8")
    checker = Checker(str(path), read_table(path, allow_no_rows=True), personal=True)
    checker.require(["household_id", "decision"])
    with pytest.raises(InputError) as caught:
        checker.finish()
    (problem,) = caught.value.problems
    assert problem.row == 1 and "not a header" in problem.message
    assert all(value not in caught.value.render() for value in PLANTED)


def test_names_equal_but_for_punctuation_are_duplicates(tmp_path: Path) -> None:
    """Two municipalities whose names differ only in case, accents or punctuation would make
    a reference ambiguous, so the second is refused at its row."""
    frame = pd.read_csv(VALID / "municipalities.csv", dtype=str, keep_default_na=False)
    frame.loc[1, "name"] = "EINDHÓVEN."
    path = tmp_path / "municipalities.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InputError) as caught:
        load_municipalities(path)
    (problem,) = caught.value.problems
    assert (problem.row, problem.column) == (3, "name")
    assert "duplicate name 'eindhoven'" in problem.message


@settings(derandomize=True, max_examples=300, deadline=None)
@given(text=st.text(max_size=80), whole=st.booleans())
def test_parse_number_never_raises(text: str, whole: bool) -> None:
    """Any text parses to a number of at most 10^15 in size, or to a reason; never an
    exception (no OverflowError, no ValueError from huge integers)."""
    value, reason = parse_number(text, whole)
    assert (value is None) != (reason is None)
    if value is not None:
        assert abs(value) <= 1e15
        assert isinstance(value, int) if whole else isinstance(value, float)


@settings(derandomize=True, max_examples=200, deadline=None)
@given(
    number=st.one_of(
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=True, allow_infinity=True),
    )
)
def test_checker_number_keeps_to_its_range(number: float) -> None:
    """Whatever number a cell holds, Checker.number returns a value inside the range or
    records one problem at that row and column."""
    table = pd.DataFrame({"km": pd.array([str(number)], dtype="string")}, index=[2])
    checker = Checker("d.csv", table, personal=False)
    (value,) = checker.number("km", low=0, high=1500, required=True)
    if value is None:
        assert [(p.row, p.column) for p in checker.problems] == [(2, "km")]
    else:
        assert 0 <= value <= 1500 and not checker.problems
