"""A synthetic history of past arrivals with a known generating process.

:func:`generate_history` draws past statushouders (adults only: the outcome is work), the
municipality each household was placed in, the arrival cohort and whether each person worked
within one, two and three years. The probability of work is known exactly:

.. code-block:: text

    P(worked within N years) = logistic(eta_N)
    eta_N = intercept_N                                  (calibration per horizon)
          + gender + age + education + language + household_type
          + female_carer        (women in single-parent or family households)
          + nationality         (NOT a feature of the default model: the audit must find it)
          + demand_slope  x (demand[region, sector] - demand_centre) x match[education]
          + urban_slope   x urban[region] x skill[education]     (the interaction to find)
          + urban_level   x urban[region]
          + network       x (the household knows people in the placement region)
          + drift         x (cohort - reference_cohort)
          + u,  u ~ Normal(0, noise_sd) per person (unobserved employability)

``demand`` is the scenario's labour-demand table (region x sector); ``urban[region]`` is
``2 x (share of the region's inhabitants living in a municipality of at least urban_size) - 1``.
Outcomes are nested: one uniform draw per person, ``worked_Ny = U < P_N`` with
``P_1 < P_2 < P_3``. Every coefficient is a field of :class:`HistoryParams`; docs/learn.md lists
them with the Dutch figures they are calibrated to.

The same municipalities, demand, ``persons``, ``seed`` and params always give identical frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from coupler import schema
from coupler.generate import AGE_GROUPS, GENDERS, HOUSEHOLD_TYPES, generate_cases
from coupler.learn.features import network_regions
from coupler.learn.vocab import HORIZONS, LANGUAGE_LEVELS, NATIONALITY_GROUPS

__all__ = [
    "HistoryParams",
    "World",
    "generate_history",
    "synthetic_members",
]


@dataclass(frozen=True)
class HistoryParams:
    """Every figure of the history generator (docs/learn.md gives sources and reasons).

    Coefficients are on the logit scale. Tuples follow the vocabularies: ``GENDERS`` (m, f, x),
    ``AGE_GROUPS``, ``schema.EDUCATION_LEVELS``, ``LANGUAGE_LEVELS``, ``HOUSEHOLD_TYPES`` and
    ``NATIONALITY_GROUPS``.
    """

    #: Arrival cohorts (year of the residence permit) and their relative sizes: permits in
    #: thousands, rounded (CBS Asiel en integratie; the 2016 peak, the 2020 corona dip).
    cohorts: tuple[int, ...] = (2016, 2017, 2018, 2019, 2020, 2021, 2022)
    cohort_weights: tuple[float, ...] = (35.0, 20.0, 12.0, 12.0, 10.0, 24.0, 30.0)
    #: Intercepts of eta for 1, 2 and 3 years, tuned so that the reference cohort works at about
    #: 8 %, 18 % and 28 % (CBS: 6 % of the 2014 cohort and 12 % of the 2017 cohort had a job
    #: two years after the permit; "worked within" counts anyone who worked at all).
    intercepts: tuple[float, ...] = (-2.05, -1.05, -0.4)
    reference_cohort: int = 2019
    #: Logit change per cohort year: later cohorts find work faster (CBS: the 2017 cohort had
    #: twice the two-year rate of the 2014 cohort; a tighter labour market since 2021).
    drift: float = 0.04
    gender: tuple[float, ...] = (0.0, -1.1, -0.5)
    age: tuple[float, ...] = (0.3, 0.0, -0.7, -2.5)
    education: tuple[float, ...] = (-0.6, -0.3, 0.0, 0.3, 0.4)
    language: tuple[float, ...] = (-0.5, 0.0, 0.5)
    household_type: tuple[float, ...] = (0.0, 0.0, -0.4, -0.1)
    #: Extra effect for women in single-parent or family households (care for children).
    female_carer: float = -0.5
    nationality: tuple[float, ...] = (0.0, -0.5, -0.1, 0.0, 0.3, -0.1, 0.0)
    #: P(nationality group) per household: rough shares of permits 2014-2022 (CBS: over half
    #: Syrian, 16 % Eritrean; then Afghanistan, Iraq, Iran, Turkey, Yemen).
    nationality_probs: tuple[float, ...] = (0.50, 0.16, 0.07, 0.07, 0.09, 0.05, 0.06)
    #: P(language level none, basic, good) per education level (assumption).
    language_probs: tuple[tuple[float, ...], ...] = (
        (0.70, 0.25, 0.05),
        (0.50, 0.40, 0.10),
        (0.30, 0.50, 0.20),
        (0.20, 0.50, 0.30),
        (0.10, 0.40, 0.50),
    )
    #: Regional demand for the person's sector: slope, centre and how much the person's
    #: education lets them use it.
    demand_slope: float = 2.0
    demand_centre: float = 0.55
    match: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.0)
    #: The hidden interaction: higher education pays in urban regions, little education in
    #: rural ones. ``skill`` per education level.
    urban_slope: float = 0.7
    skill: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.2, 1.0)
    urban_level: float = 0.15
    #: Municipalities of at least this many inhabitants count as urban.
    urban_size: int = 100_000
    network: float = 0.5
    noise_sd: float = 0.2
    #: P(a household with a network was placed at its network municipality); otherwise the
    #: placement is drawn in proportion to population, as the taakstelling divides it.
    p_network_placement: float = 0.4
    #: Demand assumed for a (region, sector) pair the demand table does not list.
    default_demand: float = 0.5

    def __post_init__(self) -> None:
        problems: list[str] = []
        for name, values, length in (
            ("cohort_weights", self.cohort_weights, len(self.cohorts)),
            ("intercepts", self.intercepts, len(HORIZONS)),
            ("gender", self.gender, len(GENDERS)),
            ("age", self.age, len(AGE_GROUPS)),
            ("education", self.education, len(schema.EDUCATION_LEVELS)),
            ("language", self.language, len(LANGUAGE_LEVELS)),
            ("household_type", self.household_type, len(HOUSEHOLD_TYPES)),
            ("nationality", self.nationality, len(NATIONALITY_GROUPS)),
            ("nationality_probs", self.nationality_probs, len(NATIONALITY_GROUPS)),
            ("match", self.match, len(schema.EDUCATION_LEVELS)),
            ("skill", self.skill, len(schema.EDUCATION_LEVELS)),
            ("language_probs", self.language_probs, len(schema.EDUCATION_LEVELS)),
        ):
            if len(values) != length:
                problems.append(f"{name} must have {length} values; got {len(values)}")
        if not self.cohorts or any(w <= 0 for w in self.cohort_weights):
            problems.append("cohorts must not be empty and cohort_weights must be > 0")
        if list(self.intercepts) != sorted(self.intercepts):
            problems.append("intercepts must not decrease with the horizon (outcomes are nested)")
        for name, probs in (
            ("nationality_probs", self.nationality_probs),
            *((f"language_probs[{i}]", row) for i, row in enumerate(self.language_probs)),
        ):
            if any(p < 0 for p in probs) or abs(sum(probs) - 1.0) > 1e-9:
                problems.append(f"{name} must be non-negative and sum to 1")
        if self.noise_sd < 0:
            problems.append(f"noise_sd must be >= 0; got {self.noise_sd}")
        if not 0 <= self.p_network_placement <= 1:
            problems.append("p_network_placement must be in [0, 1]")
        if problems:
            raise ValueError("HistoryParams: " + "; ".join(problems))


class World:
    """The place side of the generating process: regions, their demand and urban index.

    Parameters
    ----------
    municipalities
        Canonical municipalities (``code``, ``labour_market_region``, ``population``).
    demand
        Canonical demand table (``labour_market_region``, ``sector``, ``demand``) or ``None``
        (every pair then has ``params.default_demand``).
    params
        The generating process.
    """

    def __init__(
        self, municipalities: pd.DataFrame, demand: pd.DataFrame | None, params: HistoryParams
    ) -> None:
        self.params = params
        m = municipalities.reset_index(drop=True)
        self.codes = m["code"].astype(str).to_numpy(dtype=object)
        region_names = m["labour_market_region"].astype(str).to_numpy(dtype=object)
        self.regions = np.asarray(sorted(set(region_names)), dtype=object)
        self.region_index = {r: i for i, r in enumerate(self.regions)}
        self.region_of = np.array([self.region_index[r] for r in region_names], dtype=np.int64)
        self.population = m["population"].to_numpy(dtype=float)
        urban_pop = np.bincount(
            self.region_of,
            weights=np.where(self.population >= params.urban_size, self.population, 0.0),
            minlength=len(self.regions),
        )
        total = np.bincount(self.region_of, weights=self.population, minlength=len(self.regions))
        self.urban = 2.0 * urban_pop / np.maximum(total, 1.0) - 1.0
        self.demand = np.full((len(self.regions), len(schema.SECTORS)), params.default_demand)
        if demand is not None and len(demand):
            r = pd.Index(self.regions).get_indexer(demand["labour_market_region"].astype(str))
            s = pd.Index(schema.SECTORS).get_indexer(demand["sector"].astype(str))
            keep = (r >= 0) & (s >= 0)
            self.demand[r[keep], s[keep]] = demand["demand"].to_numpy(dtype=float)[keep]

    def region_of_codes(self, codes: np.ndarray) -> np.ndarray:
        """Region index of each municipality code (every code must be known)."""
        index = pd.Index(self.codes).get_indexer(codes)
        if (index < 0).any():
            raise ValueError("unknown municipality code")
        return self.region_of[index]

    def logit(self, members: pd.DataFrame, region: np.ndarray, cohort: np.ndarray) -> np.ndarray:
        """eta without the intercept and the person noise, per member row.

        ``members`` has the columns of :func:`synthetic_members` plus ``network`` (0/1);
        ``region`` is a region index per row, ``cohort`` a year per row.
        """
        p = self.params

        def idx(column: str, vocab: tuple[str, ...]) -> np.ndarray:
            out = pd.Index(vocab).get_indexer(members[column].astype(str))
            if (out < 0).any():
                raise ValueError(f"{column}: a value outside the vocabulary")
            return out

        g = idx("gender", GENDERS)
        a = idx("age_group", AGE_GROUPS)
        e = idx("education", schema.EDUCATION_LEVELS)
        s = idx("sector", schema.SECTORS)
        lang = idx("language", LANGUAGE_LEVELS)
        h = idx("household_type", HOUSEHOLD_TYPES)
        n = idx("nationality_group", NATIONALITY_GROUPS)
        carer = (g == GENDERS.index("f")) & np.isin(
            h, [HOUSEHOLD_TYPES.index("single-parent"), HOUSEHOLD_TYPES.index("family")]
        )
        urban = self.urban[region]
        eta = (
            np.asarray(p.gender)[g]
            + np.asarray(p.age)[a]
            + np.asarray(p.education)[e]
            + np.asarray(p.language)[lang]
            + np.asarray(p.household_type)[h]
            + p.female_carer * carer
            + np.asarray(p.nationality)[n]
            + p.demand_slope * (self.demand[region, s] - p.demand_centre) * np.asarray(p.match)[e]
            + p.urban_slope * urban * np.asarray(p.skill)[e]
            + p.urban_level * urban
            + p.network * members["network"].to_numpy(dtype=float)
            + p.drift * (np.asarray(cohort, dtype=float) - p.reference_cohort)
        )
        return np.asarray(eta, dtype=float)

    def probability(
        self,
        members: pd.DataFrame,
        region: np.ndarray,
        cohort: np.ndarray,
        noise: np.ndarray,
        years: int,
    ) -> np.ndarray:
        """The true P(worked within ``years`` years) of each member row at ``region``."""
        if years not in HORIZONS:
            raise ValueError(f"years must be one of {HORIZONS}; got {years}")
        eta = self.params.intercepts[HORIZONS.index(years)] + self.logit(members, region, cohort)
        return _logistic(eta + noise)


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def synthetic_members(
    households: pd.DataFrame, seed: int = 0, params: HistoryParams | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """The adult members of generated households, with synthetic person attributes.

    Parameters
    ----------
    households
        Canonical households (``household_id``, ``adults``, ``education``, ``sector``,
        ``gender``, ``age_group``, ``household_type``), e.g. from
        :func:`coupler.generate.generate_cases`.
    seed
        Seed of the member draws.
    params
        The generating process.

    Returns
    -------
    members, noise
        ``members``: one row per adult with ``person_id``, ``household_id``, ``gender``,
        ``age_group``, ``education``, ``sector``, ``language``, ``household_type``,
        ``nationality_group`` (the columns of a ``--members`` file, plus household type).
        ``noise``: each member's unobserved employability ``u`` (truth only; never a feature).
        The main applicant (first adult) keeps the household's gender and age group; a partner
        has the other gender (m/f at random for x) and mostly the same age group; a third
        adult is an adult child (18-29, m/f at random).
    """
    p = params if params is not None else HistoryParams()
    rng_person, rng_lang, rng_nat, rng_noise = np.random.default_rng(seed).spawn(4)
    hh = households.reset_index(drop=True)
    adults = hh["adults"].fillna(1).to_numpy(dtype=np.int64)
    row = np.repeat(np.arange(len(hh)), adults)
    rank = np.arange(len(row)) - np.repeat(np.cumsum(adults) - adults, adults)

    def nth(column: str) -> np.ndarray:
        lists = hh[column].fillna("").astype(str).str.split(";").to_numpy()
        return np.asarray(
            [
                lists[r][k] if k < len(lists[r]) else lists[r][0]
                for r, k in zip(row, rank, strict=True)
            ],
            dtype=object,
        )

    head_gender = hh["gender"].astype(str).to_numpy(dtype=object)[row]
    u = rng_person.random((len(row), 2))
    # A partner has the other gender; for "x" (or a child) m or f at random.
    random_mf = np.where(u[:, 0] < 0.5, "m", "f").astype(object)
    other = np.where(head_gender == "m", "f", np.where(head_gender == "f", "m", random_mf))
    child_gender = random_mf
    gender = np.select([rank == 0, rank == 1], [head_gender, other], default=child_gender)

    head_age = hh["age_group"].astype(str).to_numpy(dtype=object)[row]
    a = pd.Index(AGE_GROUPS).get_indexer(head_age)
    step = np.where(u[:, 1] < 0.8, 0, np.where(u[:, 1] < 0.9, -1, 1))
    partner_age = np.asarray(AGE_GROUPS, dtype=object)[np.clip(a + step, 0, len(AGE_GROUPS) - 1)]
    age = np.select([rank == 0, rank == 1], [head_age, partner_age], default=AGE_GROUPS[0])

    education = nth("education")
    e = pd.Index(schema.EDUCATION_LEVELS).get_indexer(education)
    cdf = np.cumsum(np.asarray(p.language_probs), axis=1)
    cdf[:, -1] = 1.0
    language_idx = (cdf[e] < rng_lang.random(len(row))[:, None]).sum(axis=1)
    nat = rng_nat.choice(len(NATIONALITY_GROUPS), size=len(hh), p=p.nationality_probs)
    members = pd.DataFrame(
        {
            "person_id": _ids("P", len(row)),
            "household_id": hh["household_id"].astype(str).to_numpy(dtype=object)[row],
            "gender": gender.astype(object),
            "age_group": age.astype(object),
            "education": education,
            "sector": nth("sector"),
            "language": np.asarray(LANGUAGE_LEVELS, dtype=object)[language_idx],
            "household_type": hh["household_type"].astype(str).to_numpy(dtype=object)[row],
            "nationality_group": np.asarray(NATIONALITY_GROUPS, dtype=object)[nat][row],
        }
    )
    noise = rng_noise.normal(0.0, p.noise_sd, size=len(row))
    return members, noise


def _ids(prefix: str, n: int) -> np.ndarray:
    width = max(7, len(str(n)))
    return np.asarray([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)


def generate_history(
    municipalities: pd.DataFrame,
    demand: pd.DataFrame | None,
    persons: int,
    seed: int = 0,
    params: HistoryParams | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate a history of past arrivals and, apart, their true probabilities of work.

    Parameters
    ----------
    municipalities, demand
        The scenario (e.g. :func:`coupler.scenario.load_scenario` of the embedded nl-2024).
    persons
        Adults in the history (rows); the households of the last cohort are cut to fit.
    seed
        Seed of every draw. Same inputs and seed give identical frames.
    params
        The generating process; ``HistoryParams()`` when omitted.

    Returns
    -------
    history, truth
        ``history``: one row per person in the columns of
        :data:`coupler.learn.table.HISTORY_COLUMNS` (outcomes 0/1). ``truth``: ``person_id``
        and ``p_work_1y``, ``p_work_2y``, ``p_work_3y``, the exact probabilities the outcomes
        were drawn from. Learning never reads the truth.
    """
    if persons < 1:
        raise ValueError(f"persons must be >= 1; got {persons}")
    p = params if params is not None else HistoryParams()
    world = World(municipalities, demand, p)
    rng_cases, rng_members, rng_place, rng_outcome = np.random.default_rng(seed).spawn(4)
    case_seed = int(rng_cases.integers(2**31))
    # Adults are about 70 % of persons in a generated batch; draw enough and cut.
    households, _ = generate_cases(
        municipalities, persons=int(persons * 1.6) + 10, seed=case_seed, id_prefix="A"
    )
    members, noise = synthetic_members(households, int(rng_members.integers(2**31)), p)
    members, noise = members.iloc[:persons].reset_index(drop=True), noise[:persons]
    hh = households[households["household_id"].isin(set(members["household_id"]))]
    hh = hh.reset_index(drop=True)
    n_h = len(hh)

    weights = np.asarray(p.cohort_weights, dtype=float)
    cohort_h = np.asarray(p.cohorts)[
        rng_place.choice(len(p.cohorts), size=n_h, p=weights / weights.sum())
    ]
    pop = world.population / world.population.sum()
    place_h = world.codes[rng_place.choice(len(world.codes), size=n_h, p=pop)]
    first_network = hh["network"].fillna("").astype(str).str.split(";").str[0].to_numpy()
    at_network = (first_network != "") & (rng_place.random(n_h) < p.p_network_placement)
    place_h = np.where(at_network, first_network, place_h)
    region_h = world.region_of_codes(place_h)
    known = network_regions(hh["network"], world.codes, world.region_of, len(world.regions))
    network_h = known[np.arange(n_h), region_h].astype(np.int64)

    pos = pd.Series(np.arange(n_h), index=hh["household_id"].astype(str))
    h_of = pos[members["household_id"]].to_numpy(dtype=np.int64)
    # Households enter in cohort order, so persons can be read from first to last arrival.
    members = members.assign(network=network_h[h_of])
    region = region_h[h_of]
    cohort = cohort_h[h_of]
    draw = rng_outcome.random(len(members))
    truth = pd.DataFrame({"person_id": members["person_id"]})
    history = pd.DataFrame(
        {
            "person_id": members["person_id"],
            "household_id": members["household_id"],
            "cohort": cohort,
            "municipality": place_h[h_of],
            "labour_market_region": world.regions[region],
            "gender": members["gender"],
            "age_group": members["age_group"],
            "education": members["education"],
            "sector": members["sector"],
            "language": members["language"],
            "household_type": members["household_type"],
            "nationality_group": members["nationality_group"],
            "network": members["network"],
        }
    )
    for years in HORIZONS:
        prob = world.probability(members, region, cohort, noise, years)
        truth[f"p_work_{years}y"] = prob
        history[f"worked_{years}y"] = (draw < prob).astype(np.int64)
    order = np.lexsort((np.arange(len(history)), history["cohort"].to_numpy()))
    return (
        history.iloc[order].reset_index(drop=True),
        truth.iloc[order].reset_index(drop=True),
    )
