"""One reader for rule files: a TOML table -> a frozen dataclass.

Policy, agreements, omkoppeling and kansrijk rules are all TOML tables that map onto small
frozen dataclasses. :func:`read_rules` does that mapping once, the same way for each:

* a missing key takes the field's default;
* an unknown key is a problem with a did-you-mean (``unknown key [hard] radius; did you mean
  'radius_km'?``);
* each value is checked against the field's annotation -- ``bool``, ``int``, ``float``, ``str``,
  ``Literal[...]``, ``tuple[str, ...]``, ``tuple[float, ...]``, ``dict[str, float]`` (and the
  like), or ``tuple[SomeDataclass, ...]`` for an array of tables;
* a field may carry a range with :func:`limit`, checked in the same pass.

Every rejected value has one message shape: ``policy [hard] radius_km must be > 0; got -5``.
Problems are collected, never raised one at a time, so one run reports every mistake.

Example::

    @dataclass(frozen=True)
    class HardRules:
        radius_km: float = field(default=50.0, metadata=limit(gt=0))
        priority: tuple[str, ...] = ("medical", "family", "work", "study")

    problems: list[Problem] = []
    raw = read_toml(path)
    hard = read_rules(HardRules, raw.get("hard", {}), table="[hard]", source=path.name,
                      problems=problems)
    if problems:
        raise PolicyError(problems)
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from coupler.errors import PolicyError, Problem
from coupler.io.cells import normalise_name, suggest

__all__ = ["limit", "read_rules", "read_toml"]

T = TypeVar("T")

_RULE = "coupler.rule"


def limit(
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
) -> dict[str, Any]:
    """Field metadata for a number's range, e.g. ``field(default=50.0, metadata=limit(gt=0))``.

    A NaN or infinite value is refused by every range.
    """
    parts: list[tuple[str, float, Callable[[float, float], bool]]] = []
    if gt is not None:
        parts.append(("> ", gt, lambda v, b: v > b))
    if ge is not None:
        parts.append((">= ", ge, lambda v, b: v >= b))
    if lt is not None:
        parts.append(("< ", lt, lambda v, b: v < b))
    if le is not None:
        parts.append(("<= ", le, lambda v, b: v <= b))
    text = " and ".join(f"{op}{bound:g}" for op, bound, _ in parts)

    def check(value: float) -> bool:
        return math.isfinite(value) and all(ok(value, bound) for _, bound, ok in parts)

    return {_RULE: (check, text)}


def read_toml(path: str | Path) -> dict[str, Any]:
    """The tables of a TOML file.

    Raises
    ------
    PolicyError
        The file is missing, not UTF-8 or not valid TOML (one line, naming the file).
    """
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(Problem(path.name, "file not found")) from None
    except IsADirectoryError:
        raise PolicyError(Problem(path.name, "is a directory, not a file")) from None
    except UnicodeDecodeError:
        raise PolicyError(Problem(path.name, "is not UTF-8 text")) from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(Problem(path.name, f"is not valid TOML: {exc}")) from None


def read_rules(
    cls: type[T],
    values: Any,
    *,
    table: str,
    source: str,
    problems: list[Problem],
    prefix: str = "policy",
) -> T:
    """Build the frozen dataclass ``cls`` from one TOML table.

    Parameters
    ----------
    cls
        A dataclass whose fields all have defaults.
    values
        The table as :mod:`tomllib` gives it (a dict); anything else is a problem.
    table
        How the table is named in messages, e.g. ``"[hard]"`` or ``"[[pool]] #2"``.
    source
        The file name for :class:`~coupler.errors.Problem`.
    problems
        Where problems are appended.
    prefix
        The first word of a rejected value's message (``policy`` in
        ``policy [hard] radius_km must be > 0; got -5``).

    Returns
    -------
    T
        ``cls`` with every good value set; a bad or unknown key leaves the default (the
        problem is recorded), so callers raise once after reading every table.
    """
    built = _build(cls, values, table, source, problems, prefix)
    if built is None:
        raise PolicyError(problems)
    return built


def _build(
    cls: type[T], values: Any, table: str, source: str, problems: list[Problem], prefix: str
) -> T | None:
    """``cls`` from ``values``, or ``None`` when a key without a default is missing."""
    head = f"{prefix} {table}".strip()
    if not isinstance(values, Mapping):
        problems.append(Problem(source, f"{head} must be a table; got {values!r}"))
        values = {}
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    labels = {normalise_name(k): k for k in known}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            close = suggest(str(key), labels)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(
                Problem(source, f"unknown key {table} {key}{hint}; known: {', '.join(known)}")
            )
            continue
        where = f"{head} {key}"
        ok, parsed = _convert(hints[key], value, where, source, problems, prefix)
        if not ok:
            continue
        rule = known[key].metadata.get(_RULE)
        if rule is not None and not rule[0](parsed):
            problems.append(Problem(source, f"{where} must be {rule[1]}; got {value!r}"))
            continue
        kwargs[key] = parsed
    required = [
        name
        for name, f in known.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    absent = [name for name in required if name not in values]
    if absent:
        problems.append(Problem(source, f"{head} needs {', '.join(absent)}"))
    if any(name not in kwargs for name in required):
        return None
    try:
        return cls(**kwargs)
    except PolicyError as exc:  # a dataclass that checks itself in __post_init__
        problems.extend(Problem(source, p.message) for p in exc.problems)
        return None


def _convert(
    kind: Any, value: Any, where: str, source: str, problems: list[Problem], prefix: str
) -> tuple[bool, Any]:
    """(True, value as ``kind``) or (False, None) with a problem recorded."""

    def bad(wanted: str) -> tuple[bool, Any]:
        problems.append(Problem(source, f"{where} must be {wanted}; got {value!r}"))
        return False, None

    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is Literal:
        if value not in args or isinstance(value, bool):
            return bad(f"one of {list(args)}")
        return True, value
    if origin in (typing.Union, types.UnionType):
        # Optional / unions: the first member that takes the value without a problem.
        for member in args:
            if member is type(None):
                continue
            trial: list[Problem] = []
            ok, parsed = _convert(member, value, where, source, trial, prefix)
            if ok:
                return True, parsed
        return bad(" or ".join(_describe(a) for a in args if a is not type(None)))
    if kind is bool:
        return (True, value) if isinstance(value, bool) else bad("true or false")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return bad("a whole number")
        return True, value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return bad("a number")
        return True, float(value)
    if kind is str:
        return (True, value) if isinstance(value, str) else bad("a string")
    if origin is tuple:
        item = args[0] if args else Any
        if dataclasses.is_dataclass(item):
            if not isinstance(value, list):
                return bad("an array of tables")
            out = []
            for i, entry in enumerate(value):
                before = len(problems)
                built = _build(item, entry, f"{where}[{i}]", source, problems, "")
                if built is not None and len(problems) == before:
                    out.append(built)
            return True, tuple(out)
        if not isinstance(value, list):
            return bad(f"a list of {_describe(item)}s")
        out = []
        for entry in value:
            ok, parsed = _convert(item, entry, where, source, [], prefix)
            if not ok:
                return bad(f"a list of {_describe(item)}s")
            out.append(parsed)
        return True, tuple(out)
    if origin in (dict, Mapping) or kind is dict:
        key_kind, item = args if args else (str, Any)
        if not isinstance(value, Mapping):
            return bad("a table")
        out_map = {}
        for k, v in value.items():
            if key_kind is int and isinstance(k, str) and k.strip().lstrip("-").isdigit():
                k = int(k)  # TOML table keys are text; a year such as "2025" is a whole number
            ok_k, parsed_k = _convert(key_kind, k, where, source, [], prefix)
            ok_v, parsed_v = _convert(item, v, f"{where}.{k}", source, problems, prefix)
            if not ok_k:
                return bad(f"a table of {_describe(item)}s")
            if ok_v:
                out_map[parsed_k] = parsed_v
        return True, out_map
    if kind is Any:
        return True, value
    raise TypeError(f"read_rules cannot read a field of type {kind!r}")


def _describe(kind: Any) -> str:
    names = {bool: "true or false", int: "whole number", float: "number", str: "string"}
    if typing.get_origin(kind) is Literal:
        return f"one of {list(typing.get_args(kind))}"
    return names.get(kind, getattr(kind, "__name__", str(kind)))
