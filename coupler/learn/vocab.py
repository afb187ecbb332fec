"""Vocabularies of the learning tables (lower case), shared by the generator and the loaders."""

from __future__ import annotations

from coupler import schema
from coupler.generate import AGE_GROUPS, GENDERS, HOUSEHOLD_TYPES

__all__ = ["HORIZONS", "LANGUAGE_LEVELS", "NATIONALITY_GROUPS", "VOCABULARIES"]

#: Outcome horizons in years: ``worked_1y``, ``worked_2y``, ``worked_3y``.
HORIZONS: tuple[int, ...] = (1, 2, 3)
#: Proficiency in Dutch or English at intake (never the mother tongue: DOMAIN.md section 9).
LANGUAGE_LEVELS: tuple[str, ...] = ("none", "basic", "good")
#: Nationality groups of the synthetic history (audit only; not a default feature).
NATIONALITY_GROUPS: tuple[str, ...] = (
    "syria",
    "eritrea",
    "afghanistan",
    "iraq-iran",
    "turkey",
    "yemen",
    "other",
)
#: Person features with a fixed vocabulary. ``nationality_group`` is free text.
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "gender": GENDERS,
    "age_group": AGE_GROUPS,
    "education": schema.EDUCATION_LEVELS,
    "sector": schema.SECTORS,
    "language": LANGUAGE_LEVELS,
    "household_type": HOUSEHOLD_TYPES,
}
