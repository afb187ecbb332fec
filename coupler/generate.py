"""A realistic, seeded, deterministic generator of statushouder cases.

:func:`generate_cases` draws a batch of households and their hard criteria in the canonical
columns of :mod:`coupler.schema`. Every figure it uses is a field of :class:`GeneratorParams`
with its source (DOMAIN.md section, or "assumption" with the reason); ``docs/generator.md``
lists them in one table. The output is synthetic: pseudonymous ids, no names, no real persons.

The same municipalities, ``persons``, ``seed`` and params always give identical frames. Each
attribute draws from its own child stream of ``numpy.random.default_rng(seed)``, so changing one
probability does not reshuffle unrelated attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from coupler import schema
from coupler.errors import InputError, Problem

__all__ = ["GeneratorParams", "generate_cases", "HOUSEHOLD_TYPES", "GENDERS", "AGE_GROUPS"]

#: household_type vocabulary (DOMAIN.md section 9 reports outcomes by household type).
HOUSEHOLD_TYPES = ("single", "couple", "single-parent", "family")
#: gender of the main applicant: male, female, other/unknown.
GENDERS = ("m", "f", "x")
#: age group of the main applicant.
AGE_GROUPS = ("18-29", "30-44", "45-64", "65+")

_MAX_SIZE = 9
_EARTH_RADIUS_KM = 6371.0088

# Where people live today: DOMAIN.md section 8, azc locations with work programmes plus the
# further sites. Names are CBS spellings: "Hengelo" is "Hengelo (O.)" and "Middelburg" is
# "Middelburg (Z.)" in the municipality table; Ter Apel lies in Westerwolde.
_AZC: tuple[tuple[str, float], ...] = (
    ("Almelo", 1.0),
    ("Almere", 1.0),
    ("Amsterdam", 1.5),
    ("Apeldoorn", 1.0),
    ("Arnhem", 1.0),
    ("Leudal", 1.0),
    ("De Fryske Marren", 1.0),
    ("Eemsdelta", 1.0),
    ("'s-Hertogenbosch", 1.0),
    ("Smallingerland", 1.0),
    ("Echt-Susteren", 1.0),
    ("Gilze en Rijen", 1.0),
    ("Land van Cuijk", 1.0),
    ("Hoeksche Waard", 1.0),
    ("Hardenberg", 1.0),
    ("Harderwijk", 1.0),
    ("Dijk en Waard", 1.0),
    ("Hengelo (O.)", 1.0),
    ("Hoogeveen", 1.0),
    ("Utrechtse Heuvelrug", 1.0),
    ("Noordoostpolder", 1.0),
    ("Maastricht", 1.0),
    ("Middelburg (Z.)", 1.0),
    ("Stadskanaal", 1.0),
    ("Nijmegen", 1.0),
    ("Oisterwijk", 1.0),
    ("Deventer", 1.0),
    ("Súdwest-Fryslân", 1.0),
    ("Waadhoeke", 1.0),
    ("Beekdaelen", 1.0),
    ("Utrecht", 1.0),
    ("Wageningen", 1.0),
    ("Winterswijk", 1.0),
    ("Zeist", 1.0),
    ("Zutphen", 1.0),
    ("Coevorden", 1.0),
    # Ter Apel is the national application centre and the largest site.
    ("Westerwolde", 4.0),
    ("Dordrecht", 1.0),
    ("Eindhoven", 1.0),
    ("Venlo", 1.0),
)


@dataclass(frozen=True)
class GeneratorParams:
    """Every calibration figure of the case generator.

    Probabilities are per household unless a field says "per adult". Sequences are tuples so
    that the params stay hashable and immutable; make a variant with ``dataclasses.replace``.
    ``docs/generator.md`` gives the full table with sources.
    """

    # --- household composition -----------------------------------------------------------
    #: P(size = 1..9). Singles ~55 % (brief); mean ~1.9 persons, matching DOMAIN.md section 2
    #: (~28,000 persons in ~15,000 households = 1.87). The tail shape is an assumption.
    size_probs: tuple[float, ...] = (0.55, 0.23, 0.09, 0.065, 0.035, 0.018, 0.007, 0.003, 0.002)
    #: Size 2: P(couple); otherwise one parent with one child. Assumption.
    p_couple_if_two: float = 0.6
    #: Size >= 3: P(single parent, one adult). Assumption.
    p_single_parent: float = 0.2
    #: Size >= 4 with two parents: P(one of the children is an adult, counted as adult).
    #: Assumption: large families often travel with an adult son or daughter.
    p_adult_child: float = 0.15

    # --- main applicant (reporting only, DOMAIN.md section 9) ------------------------------
    #: P(gender = m, f, x) of the main applicant per household type (single, couple,
    #: single-parent, family). About a quarter of COA's residents are women (issue 10); single
    #: parents are mostly mothers, couples and families mostly apply through the man. Overall
    #: about 25 % women.
    gender_probs: tuple[tuple[float, ...], ...] = (
        (0.80, 0.18, 0.02),
        (0.84, 0.15, 0.01),
        (0.19, 0.80, 0.01),
        (0.84, 0.15, 0.01),
    )
    #: P(age group 18-29, 30-44, 45-64, 65+) per household type (single, couple, single-parent,
    #: family). Assumption; DOMAIN.md section 8 only says ~58 % of applicants are 18-65.
    age_probs: tuple[tuple[float, ...], ...] = (
        (0.55, 0.30, 0.12, 0.03),
        (0.35, 0.35, 0.22, 0.08),
        (0.25, 0.50, 0.23, 0.02),
        (0.15, 0.55, 0.28, 0.02),
    )

    # --- soft attributes, per adult --------------------------------------------------------
    #: P(education) per adult in schema.EDUCATION_LEVELS order. Assumption (no figure given).
    education_probs: tuple[float, ...] = (0.15, 0.22, 0.30, 0.18, 0.15)
    #: P(sector) per adult in schema.SECTORS order (care, education, technology, ict,
    #: construction, hospitality, logistics, cleaning, agriculture, retail, other). Weighted to
    #: the sectors of DOMAIN.md section 8; the numbers are an assumption.
    sector_probs: tuple[float, ...] = (
        0.06,  # care
        0.02,  # education
        0.04,  # technology
        0.02,  # ict
        0.13,  # construction
        0.16,  # hospitality
        0.15,  # logistics
        0.16,  # cleaning
        0.08,  # agriculture
        0.06,  # retail
        0.12,  # other
    )

    # --- current azc -----------------------------------------------------------------------
    #: (municipality name, relative weight). DOMAIN.md section 8; weights are an assumption.
    azc: tuple[tuple[str, float], ...] = _AZC

    # --- hard criterion: paid work (DOMAIN.md sections 3 and 8) ----------------------------
    #: P(an adult has paid work), per adult, so a household may hold several jobs. DOMAIN.md
    #: section 8 and "Wachten of Werken?" (Platform31/G40, 2024): about 4 % of asylum seekers
    #: work.
    p_work: float = 0.04
    #: DOMAIN.md section 3: work counts from 8 hours per week.
    work_hours_threshold: float = 8.0
    #: Among jobs: P(fewer hours than the threshold). Assumption: jobs are mostly part-time
    #: and temporary (DOMAIN.md section 8).
    p_work_short: float = 0.25
    #: Hours per week of short jobs (below the threshold). Assumption.
    work_hours_short: tuple[int, ...] = (2, 3, 4, 5, 6, 7)
    #: Hours per week of the other jobs and their probabilities; mostly part-time
    #: (DOMAIN.md section 8). Assumption.
    work_hours: tuple[int, ...] = (8, 12, 16, 20, 24, 28, 32, 36, 40)
    work_hours_probs: tuple[float, ...] = (0.10, 0.12, 0.16, 0.16, 0.14, 0.10, 0.10, 0.06, 0.06)
    #: Among jobs: P(no signed contract) and P(no payslip seen). Assumption: temp-agency work
    #: (DOMAIN.md section 8) often lacks one. With p_work_short about 60 % of jobs qualify.
    p_no_contract: float = 0.10
    p_no_payslip: float = 0.10
    #: Jobs lie within this radius of the azc (weighted by population)... Assumption: daily
    #: commuting by public transport or bicycle from an azc.
    work_radius_km: float = 30.0
    #: ...except this share, in a big city (weighted by population). Assumption.
    p_work_big_city: float = 0.2

    # --- hard criterion: first-degree family (DOMAIN.md section 3) -------------------------
    #: P(first-degree family in the Netherlands, including nareizigers). Brief: ~10 %;
    #: DOMAIN.md section 8 gives 23 % repeat applications or family reunification combined.
    p_family: float = 0.10
    #: Weight multiplier of big cities for family locations (established communities).
    #: Assumption.
    family_big_city_boost: float = 3.0

    # --- hard criterion: study (DOMAIN.md section 3) ---------------------------------------
    #: P(admitted to or enrolled at a school or university). Assumption (brief: ~2 %).
    p_study: float = 0.02
    #: Municipalities with a university or hogeschool (weighted by population).
    study_cities: tuple[str, ...] = (
        "Amsterdam",
        "Rotterdam",
        "Utrecht",
        "Groningen",
        "Leiden",
        "Delft",
        "Nijmegen",
        "Eindhoven",
        "Tilburg",
        "Maastricht",
        "Enschede",
        "Wageningen",
        "'s-Gravenhage",
        "Arnhem",
        "Zwolle",
        "Breda",
        "Leeuwarden",
        "'s-Hertogenbosch",
        "Haarlem",
        "Deventer",
        "Vlissingen",
        "Ede",
        "Heerlen",
        "Venlo",
        "Almere",
    )

    # --- hard criterion: medical necessity (DOMAIN.md section 3) ---------------------------
    #: P(depends on treatment at a specific hospital). Assumption (brief: ~1.5 %).
    p_medical: float = 0.015
    #: Municipalities with an academic hospital (UMC)...
    umc_cities: tuple[str, ...] = (
        "Amsterdam",
        "Rotterdam",
        "Utrecht",
        "Leiden",
        "Groningen",
        "Nijmegen",
        "Maastricht",
    )
    #: ...and with a large regional (top-clinical) hospital.
    hospital_cities: tuple[str, ...] = (
        "Zwolle",
        "Tilburg",
        "Eindhoven",
        "Nieuwegein",
        "Amersfoort",
        "Arnhem",
        "Leeuwarden",
        "Enschede",
        "'s-Hertogenbosch",
        "Breda",
        "'s-Gravenhage",
        "Dordrecht",
        "Alkmaar",
        "Apeldoorn",
        "Venlo",
        "Heerlen",
    )
    #: Relative weight of one UMC city against one regional hospital city. Assumption:
    #: specialised treatment concentrates at the UMCs.
    umc_weight: float = 3.0

    # --- soft attributes -------------------------------------------------------------------
    #: Big cities: extra weight for family, network, preferences and some jobs. Assumption.
    big_cities: tuple[str, ...] = (
        "Amsterdam",
        "Rotterdam",
        "'s-Gravenhage",
        "Utrecht",
        "Eindhoven",
        "Groningen",
        "Tilburg",
        "Almere",
        "Breda",
        "Nijmegen",
    )
    #: P(a preferred municipality). Brief: ~20 %, often big cities.
    p_preferred_municipality: float = 0.20
    #: P(a preferred labour-market region, weighted by population). Brief: ~15 %.
    p_preferred_region: float = 0.15
    #: P(a social network somewhere). Brief: ~25 %.
    p_network: float = 0.25
    #: Given a network: P(it spans two municipalities). Assumption.
    p_network_two: float = 0.4
    #: Weight multiplier of big cities for preferences and networks. Assumption.
    soft_big_city_boost: float = 3.0

    def __post_init__(self) -> None:
        problems: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("p_") and not 0.0 <= value <= 1.0:
                problems.append(f"{f.name} must be in [0, 1]; got {value}")
        for name, probs, length in (
            ("size_probs", self.size_probs, _MAX_SIZE),
            *((f"gender_probs[{i}]", row, len(GENDERS)) for i, row in enumerate(self.gender_probs)),
            ("education_probs", self.education_probs, len(schema.EDUCATION_LEVELS)),
            ("sector_probs", self.sector_probs, len(schema.SECTORS)),
            ("work_hours_probs", self.work_hours_probs, len(self.work_hours)),
            *((f"age_probs[{i}]", row, len(AGE_GROUPS)) for i, row in enumerate(self.age_probs)),
        ):
            _check_probs(problems, name, probs, length)
        for name in ("age_probs", "gender_probs"):
            if len(getattr(self, name)) != len(HOUSEHOLD_TYPES):
                problems.append(
                    f"{name} must have {len(HOUSEHOLD_TYPES)} rows; got {len(getattr(self, name))}"
                )
        if any(h >= self.work_hours_threshold for h in self.work_hours_short):
            problems.append("work_hours_short must all be below work_hours_threshold")
        if any(h < self.work_hours_threshold for h in self.work_hours):
            problems.append("work_hours must all be at least work_hours_threshold")
        if self.work_radius_km <= 0:
            problems.append(f"work_radius_km must be > 0; got {self.work_radius_km}")
        for name in ("family_big_city_boost", "umc_weight", "soft_big_city_boost"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0; got {getattr(self, name)}")
        if not self.azc or any(w <= 0 for _, w in self.azc):
            problems.append("azc must list at least one municipality, each with weight > 0")
        for name in ("study_cities", "umc_cities", "big_cities"):
            if not getattr(self, name):
                problems.append(f"{name} must not be empty")
        if problems:
            raise ValueError("GeneratorParams: " + "; ".join(problems))


def _check_probs(problems: list[str], name: str, probs: tuple[float, ...], length: int) -> None:
    if len(probs) != length:
        problems.append(f"{name} must have {length} values; got {len(probs)}")
    elif any(p < 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-9:
        problems.append(f"{name} must be non-negative and sum to 1; got sum {sum(probs):g}")


def generate_cases(
    municipalities: pd.DataFrame,
    persons: int,
    seed: int = 0,
    params: GeneratorParams | None = None,
    id_prefix: str = "H",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate a synthetic batch of households and their hard criteria.

    Parameters
    ----------
    municipalities
        The municipality table (columns ``code, name, province, labour_market_region, lat, lon,
        population``), e.g. ``scenarios/nl-2024/municipalities.csv``.
    persons
        Total number of persons; household sizes sum to exactly this (the last household is
        shortened).
    seed
        Seed for ``numpy.random.default_rng``. Same inputs and seed give identical frames.
    params
        Calibration figures; ``GeneratorParams()`` when omitted.
    id_prefix
        Prefix of the pseudonymous household ids (``H000001``, ...).

    Returns
    -------
    households, criteria
        ``households`` has the columns ``schema.HOUSEHOLD_REQUIRED + HOUSEHOLD_OPTIONAL``;
        ``criteria`` has ``schema.CRITERIA_REQUIRED + CRITERIA_OPTIONAL``, one row per
        (household, kind) and one work row per working adult, sorted by household id. Missing values are ``None`` / ``NaN`` /
        ``<NA>``.

    Raises
    ------
    InputError
        If the municipality table lacks a column, or a municipality named in ``params``
        (azc, study, hospital or big-city lists) is not in it by exact name.
    ValueError
        If ``persons < 1``.
    """
    if persons < 1:
        raise ValueError(f"persons must be >= 1; got {persons}")
    p = params if params is not None else GeneratorParams()
    muni = _Municipalities(municipalities, p)
    streams = np.random.default_rng(seed).spawn(8)
    rng_size, rng_comp, rng_person, rng_soft, rng_azc, rng_work, rng_other, rng_net = streams

    size = _draw_sizes(rng_size, persons, p.size_probs)
    n = len(size)
    adults, hh_type = _composition(rng_comp, size, p)
    children = size - adults
    azc_idx = rng_azc.choice(len(muni.azc_rows), size=n, p=muni.azc_p)
    azc_row = muni.azc_rows[azc_idx]

    gender = np.asarray(GENDERS)[_by_type(rng_person, hh_type, p.gender_probs)]
    age = np.asarray(AGE_GROUPS)[_by_type(rng_person, hh_type, p.age_probs)]
    education = _per_adult(rng_soft, adults, schema.EDUCATION_LEVELS, p.education_probs)
    sector = _per_adult(rng_soft, adults, schema.SECTORS, p.sector_probs)

    codes = muni.codes
    pref_muni = _optional(rng_soft, n, p.p_preferred_municipality, codes, muni.soft_p)
    pref_region = _optional(rng_soft, n, p.p_preferred_region, muni.regions, muni.region_p)
    network = _network(rng_net, n, p, codes, muni.soft_p)

    ids = _ids(id_prefix, n)
    households = pd.DataFrame(
        {
            "household_id": ids,
            "size": size,
            "adults": adults,
            "children": children,
            "azc": codes[azc_row],
            "education": education,
            "sector": sector,
            "preferred_municipality": pref_muni,
            "preferred_region": pref_region,
            "network": network,
            "gender": gender,
            "age_group": age,
            "household_type": np.asarray(HOUSEHOLD_TYPES)[hh_type],
        },
        columns=list(schema.HOUSEHOLD_REQUIRED + schema.HOUSEHOLD_OPTIONAL),
    )
    criteria = _criteria(rng_work, rng_other, ids, adults, azc_idx, muni, p)
    return households, criteria


# --- municipalities --------------------------------------------------------------------------


class _Municipalities:
    """The municipality table as arrays, with the name lists of the params resolved to rows."""

    def __init__(self, frame: pd.DataFrame, p: GeneratorParams) -> None:
        missing = [c for c in schema.MUNICIPALITY_REQUIRED if c not in frame.columns]
        if missing:
            raise InputError(
                Problem(file="municipalities", message=f"missing column(s): {', '.join(missing)}")
            )
        frame = frame.reset_index(drop=True)
        self.codes = frame["code"].astype(str).to_numpy(dtype=object)
        self.regions_of = frame["labour_market_region"].astype(str).to_numpy(dtype=object)
        pop = pd.to_numeric(frame["population"], errors="coerce").to_numpy(dtype=float)
        if np.isnan(pop).any() or (pop < 0).any() or pop.sum() <= 0:
            raise InputError(
                Problem(
                    file="municipalities",
                    message="population must be numbers >= 0",
                    column="population",
                )
            )
        self.pop = pop
        lat = np.radians(frame["lat"].to_numpy(dtype=float))
        lon = np.radians(frame["lon"].to_numpy(dtype=float))
        self._lat, self._lon = lat, lon
        self._by_name = _name_index(frame["name"].astype(str))

        names = [name for name, _ in p.azc]
        self.azc_rows = self.rows(names, "azc")
        w = np.array([weight for _, weight in p.azc], dtype=float)
        self.azc_p = w / w.sum()
        self.study_rows = self.rows(p.study_cities, "study_cities")
        self.umc_rows = self.rows(p.umc_cities, "umc_cities")
        self.hospital_rows = self.rows(p.hospital_cities, "hospital_cities")
        self.big_rows = self.rows(p.big_cities, "big_cities")

        is_big = np.zeros(len(frame), dtype=bool)
        is_big[self.big_rows] = True
        self.family_p = _normalise(pop * np.where(is_big, p.family_big_city_boost, 1.0))
        self.soft_p = _normalise(pop * np.where(is_big, p.soft_big_city_boost, 1.0))
        self.big_p = _normalise(np.where(is_big, pop, 0.0))
        region_pop = pd.Series(pop).groupby(self.regions_of).sum()
        self.regions = region_pop.index.to_numpy(dtype=object)
        self.region_p = _normalise(region_pop.to_numpy(dtype=float))

    def rows(self, names: tuple[str, ...] | list[str], what: str) -> np.ndarray:
        """Row numbers of ``names`` (exact match); every unknown name is an error."""
        unknown = [name for name in names if name not in self._by_name]
        if unknown:
            raise InputError(
                [
                    Problem(
                        file="municipalities",
                        message=f"generator {what}: no municipality named {name!r} (exact name)",
                        column="name",
                    )
                    for name in unknown
                ]
            )
        return np.array([self._by_name[name] for name in names], dtype=np.int64)

    def km_from(self, rows: np.ndarray) -> np.ndarray:
        """Great-circle km from each of ``rows`` to every municipality, shape (len(rows), M)."""
        lat1, lon1 = self._lat[rows, None], self._lon[rows, None]
        a = (
            np.sin((self._lat[None, :] - lat1) / 2) ** 2
            + np.cos(lat1)
            * np.cos(self._lat[None, :])
            * np.sin((self._lon[None, :] - lon1) / 2) ** 2
        )
        return 2 * _EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _name_index(names: pd.Series) -> dict[str, int]:
    dup = names[names.duplicated()].unique().tolist()
    if dup:
        raise InputError(
            Problem(file="municipalities", message=f"duplicate name(s): {dup}", column="name")
        )
    return {name: i for i, name in enumerate(names)}


def _normalise(w: np.ndarray) -> np.ndarray:
    return w / w.sum()


# --- households ------------------------------------------------------------------------------


def _draw_sizes(rng: np.random.Generator, persons: int, probs: tuple[float, ...]) -> np.ndarray:
    """Household sizes summing to exactly ``persons``; the last one is shortened."""
    sizes_vals = np.arange(1, _MAX_SIZE + 1)
    mean = float(np.dot(sizes_vals, probs))
    chunks: list[np.ndarray] = []
    total = 0
    while total < persons:
        k = int((persons - total) / mean * 1.1) + 16
        chunk = rng.choice(sizes_vals, size=k, p=probs)
        chunks.append(chunk)
        total += int(chunk.sum())
    size = np.concatenate(chunks).astype(np.int64)
    cum = np.cumsum(size)
    n = int(np.searchsorted(cum, persons)) + 1  # first household reaching `persons`
    size = size[:n].copy()
    size[-1] = persons - (cum[n - 2] if n > 1 else 0)
    return size


def _composition(
    rng: np.random.Generator, size: np.ndarray, p: GeneratorParams
) -> tuple[np.ndarray, np.ndarray]:
    """Adults per household and household type index (into HOUSEHOLD_TYPES)."""
    n = len(size)
    u = rng.random((n, 2))
    two_adults = np.where(size == 2, u[:, 0] < p.p_couple_if_two, u[:, 0] >= p.p_single_parent)
    adults = np.where(size == 1, 1, np.where(two_adults, 2, 1))
    adult_child = (size >= 4) & (adults == 2) & (u[:, 1] < p.p_adult_child)
    adults = adults + adult_child
    children = size - adults
    hh_type = np.select([size == 1, children == 0, adults == 1], [0, 1, 2], default=3).astype(
        np.int64
    )
    return adults.astype(np.int64), hh_type


def _by_type(
    rng: np.random.Generator, hh_type: np.ndarray, probs: tuple[tuple[float, ...], ...]
) -> np.ndarray:
    """One index per household drawn from the row of ``probs`` of its household type."""
    cdf = np.cumsum(np.asarray(probs, dtype=float), axis=1)
    cdf[:, -1] = 1.0
    return (cdf[hh_type] < rng.random(len(hh_type))[:, None]).sum(axis=1)


def _per_adult(
    rng: np.random.Generator, adults: np.ndarray, vocab: tuple[str, ...], probs: tuple[float, ...]
) -> np.ndarray:
    """One value per adult, ';'-joined per household."""
    width = int(adults.max())
    values = np.asarray(vocab, dtype=object)[
        rng.choice(len(vocab), size=(len(adults), width), p=probs)
    ]
    out = values[:, 0].copy()
    for k in range(1, width):
        out = np.where(adults > k, out + ";" + values[:, k], out)
    return out


def _optional(
    rng: np.random.Generator, n: int, share: float, vocab: np.ndarray, probs: np.ndarray
) -> np.ndarray:
    """A value from ``vocab`` for a ``share`` of households, ``None`` elsewhere."""
    has = rng.random(n) < share
    drawn = vocab[rng.choice(len(vocab), size=n, p=probs)]
    return _mask(drawn, has)


def _network(
    rng: np.random.Generator, n: int, p: GeneratorParams, codes: np.ndarray, probs: np.ndarray
) -> np.ndarray:
    """One or two distinct municipality codes, ';'-joined, for a share of households."""
    u = rng.random((n, 2))
    pair = codes[rng.choice(len(codes), size=(n, 2), p=probs)]
    two = (u[:, 1] < p.p_network_two) & (pair[:, 0] != pair[:, 1])
    joined = np.where(two, pair[:, 0] + ";" + pair[:, 1], pair[:, 0])
    return _mask(joined, u[:, 0] < p.p_network)


def _mask(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``values`` where ``keep``, ``None`` elsewhere (an object array)."""
    out = np.full(len(values), None, dtype=object)
    out[keep] = values[keep]
    return out


def _ids(prefix: str, n: int) -> np.ndarray:
    width = max(6, len(str(n)))
    return np.asarray([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


# --- hard criteria ---------------------------------------------------------------------------


def _sample_rows(rng: np.random.Generator, cdf: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Per-element categorical draw: element i uses the CDF row ``cdf[which[i]]``."""
    u = rng.random(len(which))
    return np.minimum((cdf[which] < u[:, None]).sum(axis=1), cdf.shape[1] - 1)


def _criteria(
    rng_work: np.random.Generator,
    rng_other: np.random.Generator,
    ids: np.ndarray,
    adults: np.ndarray,
    azc_idx: np.ndarray,
    muni: _Municipalities,
    p: GeneratorParams,
) -> pd.DataFrame:
    n = len(ids)
    codes = muni.codes
    parts: list[pd.DataFrame] = []

    # Work: each adult works with p_work (a household may hold several jobs); near the azc
    # (population-weighted within the radius), sometimes in a big city.
    width = int(adults.max())
    working = (rng_work.random((n, width)) < p.p_work) & (
        np.arange(width)[None, :] < adults[:, None]
    )
    has_work = np.nonzero(working)[0]
    k = len(has_work)
    near = np.where(muni.km_from(muni.azc_rows) <= p.work_radius_km, muni.pop, 0.0)
    near[np.arange(len(muni.azc_rows)), muni.azc_rows] += 1.0  # never an empty row
    near_cdf = np.cumsum(near / near.sum(axis=1, keepdims=True), axis=1)
    near_cdf[:, -1] = 1.0
    job_near = _sample_rows(rng_work, near_cdf, azc_idx[has_work])
    job_big = rng_work.choice(len(codes), size=k, p=muni.big_p)
    job = np.where(rng_work.random(k) < p.p_work_big_city, job_big, job_near)
    short = rng_work.random(k) < p.p_work_short
    hours = np.where(
        short,
        rng_work.choice(np.asarray(p.work_hours_short), size=k),
        rng_work.choice(np.asarray(p.work_hours), size=k, p=p.work_hours_probs),
    ).astype(float)
    contract = rng_work.random(k) >= p.p_no_contract
    payslip = rng_work.random(k) >= p.p_no_payslip
    parts.append(
        pd.DataFrame(
            {
                "hh": has_work,
                "kind": "work",
                "municipality": codes[job],
                "hours_per_week": hours,
                "contract_signed": pd.array(contract, dtype="boolean"),
                "payslip_seen": pd.array(payslip, dtype="boolean"),
            }
        )
    )

    # Family, study, medical: location-weighted draws independent of the azc.
    medical_w = np.zeros(len(codes))
    medical_w[muni.hospital_rows] = 1.0
    medical_w[muni.umc_rows] = p.umc_weight
    study_w = np.zeros(len(codes))
    study_w[muni.study_rows] = muni.pop[muni.study_rows]
    for kind, share, weights in (
        ("family", p.p_family, muni.family_p),
        ("study", p.p_study, _normalise(study_w)),
        ("medical", p.p_medical, _normalise(medical_w)),
    ):
        rows = np.flatnonzero(rng_other.random(n) < share)
        where = rng_other.choice(len(codes), size=len(rows), p=weights)
        parts.append(pd.DataFrame({"hh": rows, "kind": kind, "municipality": codes[where]}))

    crit = pd.concat(parts, ignore_index=True)
    crit["kind_order"] = crit["kind"].map({k: i for i, k in enumerate(schema.CRITERION_KINDS)})
    crit = crit.sort_values(["hh", "kind_order"], kind="stable").reset_index(drop=True)
    crit.insert(0, "household_id", ids[crit["hh"].to_numpy()])
    crit["hours_per_week"] = crit["hours_per_week"].astype(float)
    for col in ("contract_signed", "payslip_seen"):
        crit[col] = crit[col].astype("boolean")
    return crit[list(schema.CRITERIA_REQUIRED + schema.CRITERIA_OPTIONAL)]
