"""The canonical input tables: their columns, types and vocabularies.

Every reader in :mod:`coupler.io` turns a user's file into a frame with exactly these columns
(optional ones filled with missing values) so that later stages never guess.
"""

from __future__ import annotations

from typing import Final

#: Hard-criterion kinds (DOMAIN.md section 3).
CRITERION_KINDS: Final = ("work", "family", "study", "medical")

#: Education levels, lowest first. A household may list one per adult, separated by ';'.
EDUCATION_LEVELS: Final = ("none", "primary", "secondary", "vocational", "higher")

#: Sectors used by the labour-demand table (DOMAIN.md section 8). A household may list one per
#: adult, separated by ';'.
SECTORS: Final = (
    "care",
    "education",
    "technology",
    "ict",
    "construction",
    "hospitality",
    "logistics",
    "cleaning",
    "agriculture",
    "retail",
    "other",
)

#: Netherlands bounding box (WGS84) used to reject coordinates outside the country.
NL_LAT: Final = (50.70, 53.60)
NL_LON: Final = (3.30, 7.25)

MUNICIPALITY_REQUIRED: Final = (
    "code",
    "name",
    "province",
    "labour_market_region",
    "lat",
    "lon",
    "population",
)
#: quota/backlog in persons; cap_large / cap_single: dwellings for large households
#: (size >= policy large_household_size) and for single persons, counted in households.
MUNICIPALITY_OPTIONAL: Final = ("quota", "backlog", "cap_large", "cap_single")

HOUSEHOLD_REQUIRED: Final = ("household_id", "size")
#: network: municipality code(s) where the household has a network, ';'-separated.
#: gender / age_group / household_type are only used to report outcomes by group.
HOUSEHOLD_OPTIONAL: Final = (
    "adults",
    "children",
    "azc",
    "education",
    "sector",
    "preferred_municipality",
    "preferred_region",
    "network",
    "gender",
    "age_group",
    "household_type",
)

CRITERIA_REQUIRED: Final = ("household_id", "kind", "municipality")
CRITERIA_OPTIONAL: Final = ("hours_per_week", "contract_signed", "payslip_seen")

#: Participation scores: household_id plus exactly one of municipality / labour_market_region.
SCORES_REQUIRED: Final = ("household_id", "score")

#: Locks: action is 'pin' (couple here) or 'ban' (never couple here).
LOCKS_REQUIRED: Final = ("household_id", "municipality", "action")
LOCK_ACTIONS: Final = ("pin", "ban")

#: Labour demand: labour_market_region x sector -> demand index in [0, 1].
DEMAND_REQUIRED: Final = ("labour_market_region", "sector", "demand")
#: source: where a figure comes from (free text, not used).
DEMAND_OPTIONAL: Final = ("source",)

#: Distance matrix (long form): from, to, km.
DISTANCE_REQUIRED: Final = ("from", "to", "km")

TRUE_WORDS: Final = frozenset({"1", "true", "yes", "y", "ja", "j", "t"})
FALSE_WORDS: Final = frozenset({"0", "false", "no", "n", "nee", "f"})

# --- Added for coupler.io: the exact column order and dtype of every canonical frame. ---

#: A municipality code as CBS writes it: 'GM' and four digits.
MUNICIPALITY_CODE_PATTERN: Final = r"^GM\d{4}$"

#: Scores name exactly one of these per row.
SCORES_TARGETS: Final = ("municipality", "labour_market_region")

#: Plausible ranges of the numbers in the input tables (docs/inputs.md); a value outside is an
#: error, never a silent overflow.
MAX_HOUSEHOLD_SIZE: Final = 30
MAX_HOURS_PER_WEEK: Final = 80
#: Population, quota, backlog (either sign) and dwelling capacities.
MAX_COUNT: Final = 10**8
MAX_KM: Final = 1500

#: File types :func:`coupler.io.read_table` understands (lower-case suffixes).
TABLE_SUFFIXES: Final = (".csv", ".txt", ".xlsx", ".parquet")

#: Column -> pandas dtype of each canonical frame, in column order.
MUNICIPALITY_DTYPES: Final = (
    ("code", "string"),
    ("name", "string"),
    ("province", "string"),
    ("labour_market_region", "string"),
    ("lat", "float64"),
    ("lon", "float64"),
    ("population", "int64"),
    ("quota", "Int64"),
    ("backlog", "Int64"),
    ("cap_large", "Int64"),
    ("cap_single", "Int64"),
)
HOUSEHOLD_DTYPES: Final = (
    ("household_id", "string"),
    ("size", "int64"),
    ("adults", "Int64"),
    ("children", "Int64"),
    ("azc", "string"),
    ("education", "string"),
    ("sector", "string"),
    ("preferred_municipality", "string"),
    ("preferred_region", "string"),
    ("network", "string"),
    ("gender", "string"),
    ("age_group", "string"),
    ("household_type", "string"),
)
CRITERIA_DTYPES: Final = (
    ("household_id", "string"),
    ("kind", "string"),
    ("municipality", "string"),
    ("hours_per_week", "Float64"),
    ("contract_signed", "boolean"),
    ("payslip_seen", "boolean"),
)
SCORES_DTYPES: Final = (
    ("household_id", "string"),
    ("municipality", "string"),
    ("labour_market_region", "string"),
    ("score", "float64"),
)
LOCKS_DTYPES: Final = (
    ("household_id", "string"),
    ("municipality", "string"),
    ("action", "string"),
)
DEMAND_DTYPES: Final = (
    ("labour_market_region", "string"),
    ("sector", "string"),
    ("demand", "float64"),
)
DISTANCE_DTYPES: Final = (
    ("from", "string"),
    ("to", "string"),
    ("km", "float64"),
)


#: The MIP backends, in registry order (engine/backends.py maps each to its module).
BACKEND_NAMES: tuple[str, ...] = ("highs", "ortools", "cbc")
