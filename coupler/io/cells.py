"""Cell checks shared by every table reader: numbers, words, municipalities, households.

A :class:`Checker` walks the columns of one table read by :func:`coupler.io.read_table`, parses
each cell and collects a :class:`~coupler.errors.Problem` (file, spreadsheet row, column) for each
bad one; :meth:`Checker.finish` raises them together. :class:`Places` is the one lookup of
municipalities (by code or name, with the usual short names) and labour-market regions, with
suggestions for a misspelling.

A checker made with ``personal=True`` never puts a cell's text in a message: households,
criteria, scores and locks hold personal data (DOMAIN.md section 9). The messages name the file,
the row, the column and what was expected instead.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from coupler import schema
from coupler.errors import InputError, Problem

__all__ = [
    "Checker",
    "Places",
    "normalise_name",
    "parse_number",
    "resolve_municipalities",
    "short",
    "suggest",
]

_NON_FINITE = frozenset({"nan", "inf", "infinity"})
_INTEGER = re.compile(r"[+-]?\d+")
# '1.000' or '12,500,000' in a whole-number column: a thousands separator, not a decimal point.
_THOUSANDS = re.compile(r"[+-]?\d{1,3}([.,]\d{3})+")
# Dutch Excel writes decimals with a comma: '52,37'.
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+")
# No number coupler reads is anywhere near this; it keeps huge values out of int64 and float math.
_MAGNITUDE = 1e15
_APOSTROPHES = re.compile("['\u2018\u2019\u201b`\u00b4]")
_NOT_WORD = re.compile(r"[^0-9a-z]+")
_BARE_CODE = re.compile(r"(?:gm)?\s*(\d{4})")

#: Short names people use for municipalities whose CBS name is longer (normalised forms).
MUNICIPALITY_ALIASES: Mapping[str, str] = {
    "den bosch": "s hertogenbosch",
    "hertogenbosch": "s hertogenbosch",
    "den haag": "s gravenhage",
    "the hague": "s gravenhage",
    "gravenhage": "s gravenhage",
    "nuenen": "nuenen gerwen en nederwetten",
}


def short(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters, for quoting in a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalise_name(text: str) -> str:
    """A name for matching: accents, apostrophes, case and punctuation removed.

    ``"'s-Hertogenbosch"`` -> ``"s hertogenbosch"``, ``"Bergen (NH.)"`` -> ``"bergen nh"``,
    ``"Súdwest-Fryslân"`` -> ``"sudwest fryslan"``.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = _APOSTROPHES.sub("", plain.casefold())
    return _NOT_WORD.sub(" ", plain).strip()


def suggest(text: str, candidates: Mapping[str, str], n: int = 1) -> list[str]:
    """Labels of the candidates closest to ``text``, best first (at most ``n``, no repeats).

    Parameters
    ----------
    text
        What the user typed.
    candidates
        Normalised key (see :func:`normalise_name`) -> label to show. Several keys may share a
        label (aliases).
    n
        How many suggestions at most.

    Returns
    -------
    list[str]
        First names that start with what was typed, then names that contain it (or a word of it
        of four letters or more), then close spellings (:mod:`difflib`, cutoff 0.75).
    """
    key = normalise_name(text)
    if not key:
        return []
    keys = sorted(candidates)
    words = [w for w in key.split() if len(w) >= 4]
    ranked: list[str] = []
    if len(key) >= 2:
        ranked += [k for k in keys if k.startswith(key)]
    if len(key) >= 4:
        ranked += [k for k in keys if key in k or (len(k) >= 4 and k in key)]
    ranked += [k for k in keys if any(w in k.split() for w in words)]
    ranked += difflib.get_close_matches(key, keys, n=max(n, 3), cutoff=0.75)
    out: list[str] = []
    for k in ranked:
        label = candidates[k]
        if label not in out:
            out.append(label)
    return out[:n]


def _bound(x: float) -> str:
    """A range bound as people read it: '100,000,000', '0.5', '50.7'."""
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _did_you_mean(labels: Sequence[str]) -> str:
    if not labels:
        return ""
    return "; did you mean " + " or ".join(f"'{x}'" for x in labels) + "?"


class Places:
    """The one lookup of municipalities and labour-market regions.

    A municipality is found by its code (``GM0772``, ``gm0772`` or ``0772``) or by its name,
    ignoring case, accents, apostrophes and punctuation; the usual short names work too:
    ``Den Bosch``, ``Den Haag``, ``Nuenen``, ``Bergen NH`` / ``Bergen (L)``, and a name without
    its province mark when only one municipality has it (``Hengelo`` -> ``Hengelo (O.)``).

    Parameters
    ----------
    municipalities
        A frame with ``code`` and ``name`` and optionally ``labour_market_region``.
    """

    def __init__(self, municipalities: pd.DataFrame):
        codes = [str(c) for c in municipalities["code"]]
        names = [str(n) for n in municipalities["name"]]
        self.codes = {c.upper(): c for c in codes}
        self.names = dict(zip(codes, names, strict=True))
        by_key = {normalise_name(n): c for n, c in zip(names, codes, strict=True)}
        # 'Hengelo' for 'Hengelo (O.)', unless two municipalities share the stem.
        stems: dict[str, list[str]] = {}
        for n, c in zip(names, codes, strict=True):
            stem = normalise_name(n.split("(")[0])
            if stem != normalise_name(n):
                stems.setdefault(stem, []).append(c)
        aliases = {s: cs[0] for s, cs in stems.items() if len(cs) == 1 and s not in by_key}
        for alias, target in MUNICIPALITY_ALIASES.items():
            if target in by_key and alias not in by_key:
                aliases[alias] = by_key[target]
        self.by_key = by_key | aliases
        self.municipality_labels = {k: self.names[c] for k, c in self.by_key.items()} | {
            c.casefold(): self.names[c] for c in codes
        }
        self.regions: dict[str, str] = {}
        if "labour_market_region" in municipalities:
            for region in municipalities["labour_market_region"].dropna():
                self.regions.setdefault(normalise_name(str(region)), str(region).strip())

    def code(self, text: str) -> str | None:
        """The code of the municipality ``text`` names, or ``None``."""
        text = text.strip()
        found = self.codes.get(text.upper())
        if found is not None:
            return found
        bare = _BARE_CODE.fullmatch(text.casefold())
        if bare:
            return self.codes.get(f"GM{bare.group(1)}")
        return self.by_key.get(normalise_name(text))

    def region(self, text: str) -> str | None:
        """The canonical spelling of the labour-market region ``text`` names, or ``None``."""
        return self.regions.get(normalise_name(text))

    def suggest_municipality(self, text: str, n: int = 1) -> list[str]:
        """Names of the municipalities closest to ``text`` (see :func:`suggest`)."""
        return suggest(text, self.municipality_labels, n)

    def unknown_municipality(
        self, text: str, *, echo: bool = True, n: int = 1, codes: bool = False
    ) -> str:
        """``unknown municipality 'X'; did you mean 'Y'?`` (without ``'X'`` unless ``echo``).

        With ``codes`` the suggestions read ``did you mean Y (GM0000), Z (GM0001)?``.
        """
        quoted = f" '{short(text)}'" if echo else ""
        names = self.suggest_municipality(text, n)
        if codes and names:
            code_of = {name: code for code, name in self.names.items()}
            listed = ", ".join(f"{name} ({code_of[name]})" for name in names)
            return f"unknown municipality{quoted}; did you mean {listed}?"
        return f"unknown municipality{quoted}{_did_you_mean(names)}"

    def unknown_region(self, text: str, *, echo: bool = True) -> str:
        """``unknown labour_market_region 'X'; did you mean 'Y'?``."""
        quoted = f" '{short(text)}'" if echo else ""
        hint = _did_you_mean(suggest(text, self.regions))
        return f"unknown labour_market_region{quoted}{hint}"


def resolve_municipalities(
    values: pd.Series, municipalities: pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    """Map municipality references to codes.

    Parameters
    ----------
    values
        References: a code such as ``GM0772`` or a name, as :meth:`Places.code` reads them.
    municipalities
        A canonical municipalities frame (see :func:`coupler.io.load_municipalities`).

    Returns
    -------
    tuple[pd.Series, pd.Series]
        The codes (``string``, ``NA`` where the reference is unknown or empty) and a ``bool``
        mask of the unknown references; an empty or missing value is not unknown. Both keep the
        index of ``values``.
    """
    places = Places(municipalities)
    codes: list[str | None] = []
    unknown: list[bool] = []
    for value in values.tolist():
        text = "" if value is None or pd.isna(value) else str(value).strip()
        code = places.code(text) if text else None
        codes.append(code)
        unknown.append(bool(text) and code is None)
    return (
        pd.Series(codes, index=values.index, dtype="string", name=values.name),
        pd.Series(unknown, index=values.index, dtype=bool, name=values.name),
    )


def parse_number(text: str, whole: bool) -> tuple[float | int | None, str | None]:
    """The number in ``text``, or ``None`` and why it is not one.

    Never raises: ``1e308``, ``1e400`` and ``2**63`` come back as numbers (or as "not a finite
    number") for the range check to refuse, and no value above 10^15 in size is returned.
    """
    text = text.replace("\u2212", "-")  # a typographic minus sign
    if text.lower().lstrip("+-") in _NON_FINITE:
        return None, "not a finite number"
    if whole and _THOUSANDS.fullmatch(text):
        return None, "a number with a thousands separator"
    if _DECIMAL_COMMA.fullmatch(text):
        text = text.replace(",", ".")
    kind = "a whole number" if whole else "a number"
    if len(text) > 64:
        return None, f"far too long for {kind}"
    if "_" in text:  # float() accepts '1_000'; a user does not write that
        return None, f"not {kind}"
    try:
        number = float(text)
    except ValueError:
        return None, f"not {kind}"
    if not math.isfinite(number):
        return None, "not a finite number"
    if abs(number) > _MAGNITUDE:
        return None, "far too large"
    if not whole:
        return number, None
    if _INTEGER.fullmatch(text):
        return int(text), None
    if not number.is_integer():
        return None, "not a whole number"
    return int(number), None


class Checker:
    """Collects the problems of one table while its columns are parsed.

    Parameters
    ----------
    file
        The file name to put in messages.
    table
        The table as :func:`coupler.io.read_table` returns it.
    personal
        The table holds personal data: no message quotes one of its cells.
    """

    def __init__(self, file: str, table: pd.DataFrame, *, personal: bool):
        self.file = file
        self.table = table
        self.personal = personal
        self.rows: list[int] = [int(r) for r in table.index]
        self.problems: list[Problem] = []

    def add(self, message: str, row: int | None = None, column: str | None = None) -> None:
        """Record a problem."""
        self.problems.append(Problem(self.file, message, row=row, column=column))

    def has(self, column: str) -> bool:
        """Whether the table has ``column``."""
        return column in self.table.columns

    def require(self, columns: Iterable[str]) -> None:
        """A problem for each of ``columns`` missing from the header.

        In a personal table whose first row names none of ``columns``, that row is taken to be
        data: one problem says there is no header, quoting nothing.
        """
        columns = list(columns)
        if self.personal and columns and not any(self.has(c) for c in columns):
            self.add(
                "the first row is not a header: it names none of the required columns "
                f"({', '.join(columns)}); add a header row naming the columns",
                row=1,
            )
            return
        found = ", ".join(f"'{c}'" for c in self.table.columns) or "none"
        for column in columns:
            if not self.has(column):
                self.add(f"missing required column '{column}' (found: {found})", column=column)

    def columns(
        self, required: Sequence[str], optional: Sequence[str], ignore: Collection[str] = ()
    ) -> None:
        """Check the header: every required column present, no column coupler does not know.

        A column not in ``required`` or ``optional`` is a problem with a did-you-mean, unless
        its name (trimmed, case-folded) is in ``ignore``. In a personal table whose first row
        names none of these columns, that row is data, not a header: the problem then says so
        and quotes nothing.
        """
        known = (*required, *optional)
        header = list(self.table.columns)
        if self.personal and not any(c in header for c in known):
            self.add(
                "the first row is not a header: it names none of the columns coupler reads "
                f"({', '.join(known)}); add a header row naming the columns",
                row=1,
            )
            return
        self.require(required)
        skip = {str(c).strip().casefold() for c in ignore}
        labels = {normalise_name(c): c for c in known}
        for index, name in enumerate(header, start=1):
            if name in known or name in skip:
                continue
            hint = _did_you_mean(suggest(name, labels))
            self.add(
                f"unknown column '{short(name)}' (column {index}){hint}; known columns: "
                f"{', '.join(known)}; rename or remove it, or skip it with --ignore-columns "
                "(coupler solve)",
                row=1,
                column=name,
            )

    def cells(self, column: str) -> list[str]:
        """The cells of ``column`` as strings (all ``""`` when the column is absent)."""
        if not self.has(column):
            return [""] * len(self.rows)
        return [str(v) for v in self.table[column].tolist()]

    def finish(self) -> None:
        """Raise every problem found so far, sorted by row."""
        if self.problems:
            self.problems.sort(key=lambda p: -1 if p.row is None else p.row)
            raise InputError(self.problems)

    def frame(
        self, columns: Mapping[str, list[Any]], dtypes: Sequence[tuple[str, str]]
    ) -> pd.DataFrame:
        """:meth:`finish`, then the canonical frame of the parsed ``columns`` (:func:`frame`)."""
        self.finish()
        return frame(columns, dtypes)

    def _quote(self, text: str) -> str:
        """``'text' `` for a message, or nothing in a personal table."""
        return "" if self.personal else f"'{short(text)}' "

    # --- typed columns ---------------------------------------------------------------------

    def text(self, column: str, *, required: bool = False) -> list[str | None]:
        """The stripped text of each cell, ``None`` for an empty one."""
        out: list[str | None] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            if not text and required and self.has(column):
                self.add(f"{column} must not be empty", row, column)
            out.append(text or None)
        return out

    def number(
        self,
        column: str,
        *,
        whole: bool = False,
        low: float | None = None,
        high: float | None = None,
        required: bool = False,
        where: str = "",
    ) -> list[Any]:
        """Numbers in [``low``, ``high``]; ``where`` explains the range, e.g. '(inside the NL)'."""
        kind = "a whole number" if whole else "a number"
        if low is not None and high is not None:
            wanted = f"{kind} between {_bound(low)} and {_bound(high)}"
        elif low is not None:
            wanted = f"{kind} >= {_bound(low)}"
        elif high is not None:
            wanted = f"{kind} <= {_bound(high)}"
        else:
            wanted = kind
        if where:
            wanted += f" {where}"
        out: list[Any] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            value: Any = None
            if not text:
                if required and self.has(column):
                    self.add(f"{column} is empty; it must be {wanted}", row, column)
            else:
                value, reason = parse_number(text, whole)
                if reason is not None:
                    if self.personal:
                        finite = ", not NaN or infinity" if "finite" in reason else ""
                        self.add(f"{column} must be {wanted}{finite}", row, column)
                    else:
                        self.add(
                            f"'{short(text)}' is {reason}; {column} must be {wanted}", row, column
                        )
                elif (low is not None and value < low) or (high is not None and value > high):
                    got = "" if self.personal else f"; got {short(text)}"
                    self.add(f"{column} must be {wanted}{got}", row, column)
                    value = None
            out.append(value)
        return out

    def boolean(self, column: str) -> list[bool | None]:
        """``True``/``False`` from the words of ``schema.TRUE_WORDS``/``FALSE_WORDS``."""
        words = ", ".join(sorted(schema.TRUE_WORDS | schema.FALSE_WORDS))
        out: list[bool | None] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            word = text.lower()
            if not word:
                out.append(None)
            elif word in schema.TRUE_WORDS:
                out.append(True)
            elif word in schema.FALSE_WORDS:
                out.append(False)
            else:
                echo = "" if self.personal else f"'{short(text)}' is not yes or no; "
                self.add(f"{echo}{column} must be yes or no (one of: {words})", row, column)
                out.append(None)
        return out

    def choice(
        self, column: str, allowed: Sequence[str], *, multi: bool = False, required: bool = False
    ) -> list[str | None]:
        """Lower-cased values from ``allowed``; ``multi`` accepts a ';'-separated list."""
        listed = ", ".join(allowed)
        wanted = f"';'-separated values from: {listed}" if multi else f"one of: {listed}"
        out: list[str | None] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            parts = [p.strip().lower() for p in text.split(";")] if multi else [text.lower()]
            parts = [p for p in parts if p]
            if not parts:
                if required and self.has(column):
                    self.add(f"{column} must not be empty; it must be {wanted}", row, column)
                out.append(None)
                continue
            bad = [p for p in parts if p not in allowed]
            if bad:
                echo = "" if self.personal else f"unknown {column} '{short(bad[0])}'; "
                self.add(f"{echo}{column} must be {wanted}", row, column)
                out.append(None)
            else:
                out.append(";".join(parts))
        return out

    def municipality(
        self, column: str, places: Places, *, multi: bool = False, required: bool = False
    ) -> list[str | None]:
        """Codes for references by code or name; ``multi`` accepts a ';'-separated list."""
        out: list[str | None] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            parts = [p.strip() for p in text.split(";")] if multi else [text]
            parts = [p for p in parts if p]
            if not parts:
                if required and self.has(column):
                    self.add(f"{column} must not be empty", row, column)
                out.append(None)
                continue
            codes = []
            for part in parts:
                code = places.code(part)
                if code is None:
                    message = places.unknown_municipality(part, echo=not self.personal)
                    self.add(message, row, column)
                codes.append(code)
            out.append(None if None in codes else ";".join(c for c in codes if c))
        return out

    def region(self, column: str, places: Places, *, required: bool = False) -> list[str | None]:
        """Canonical labour-market region names."""
        out: list[str | None] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            region = places.region(text) if text else None
            if not text:
                if required and self.has(column):
                    self.add(f"{column} must not be empty", row, column)
            elif region is None:
                self.add(places.unknown_region(text, echo=not self.personal), row, column)
            out.append(region)
        return out

    def household(self, column: str, known: Iterable[str], *, what: str) -> list[str | None]:
        """Household ids that exist in ``known``; ``what`` names the row, e.g. 'criterion'."""
        known = set(known)
        out: list[str | None] = []
        for row, text in zip(self.rows, self.cells(column), strict=True):
            if not text:
                if self.has(column):
                    self.add(f"{column} must not be empty", row, column)
                out.append(None)
            elif text not in known:
                self.add(
                    f"{what} points to a household {self._quote(text)}that is not in the "
                    "households file",
                    row,
                    column,
                )
                out.append(None)
            else:
                out.append(text)
        return out

    def unique_together(
        self,
        parts: Sequence[Sequence[Hashable | None]],
        column: str,
        describe: Callable[[Any], str],
    ) -> None:
        """:meth:`unique` on tuples of ``parts``, skipping rows where any part is missing."""
        keys = [None if None in key else key for key in zip(*parts, strict=True)]
        self.unique(keys, column, describe)

    def unique(
        self,
        keys: Sequence[Hashable | None],
        column: str,
        describe: Callable[[Any], str],
    ) -> None:
        """Report each repeated key at its later row, naming the first row."""
        first: dict[Hashable, int] = {}
        for row, key in zip(self.rows, keys, strict=True):
            if key is None:
                continue
            if key in first:
                self.add(f"{describe(key)} (first on row {first[key]})", row, column)
            else:
                first[key] = row


def frame(columns: Mapping[str, list[Any]], dtypes: Sequence[tuple[str, str]]) -> pd.DataFrame:
    """The canonical frame: columns in schema order with their dtypes and a RangeIndex."""
    length = len(next(iter(columns.values()))) if columns else 0
    data = {
        name: pd.array(columns.get(name, [None] * length), dtype=dtype) for name, dtype in dtypes
    }
    return pd.DataFrame(data, index=pd.RangeIndex(length))
