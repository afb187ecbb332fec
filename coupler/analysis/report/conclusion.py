"""The written conclusion at the top of a comparison: two to five plain sentences from the KPIs.

Against the first variant, each other variant is described by what changes: jobs within reach,
persons with a broken hard criterion, the spread of the municipal fill (Gini) and which
municipalities take more persons and which fewer. With one other variant that is up to four
sentences; with more, one sentence per variant (at most four) and a closing sentence naming the
variant that keeps the most jobs.
"""

from __future__ import annotations

import math
from typing import Any

#: Gini changes smaller than this read as "about as even".
GINI_SAME = 0.005


def conclusion(variants: list[dict[str, Any]]) -> list[str]:
    """Two to five sentences on what changes between the variants (the first is the base)."""
    if not variants:
        return []
    base = variants[0]
    if len(variants) == 1:
        return _alone(base)
    others = variants[1:]
    if len(others) == 1:
        return _pair(base, others[0])
    out = [_short(base, v) for v in others[:4]]
    best = max(variants, key=lambda v: (_k(v, "jobs_kept"), -_k(v, "broken_persons")))
    out.append(
        f"{best['name']} keeps the most jobs within reach ({_i(_k(best, 'jobs_kept'))} of "
        f"{_i(_k(best, 'jobs'))})."
    )
    return out[:5]


def _k(v: dict[str, Any], key: str) -> float:
    x = v["kpis"]["values"].get(key)
    return 0.0 if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def _i(x: float) -> str:
    return f"{x:,.0f}"


def _alone(v: dict[str, Any]) -> list[str]:
    return [
        f"{v['name']} keeps {_i(_k(v, 'jobs_kept'))} of {_i(_k(v, 'jobs'))} jobs within reach "
        f"and breaks a hard criterion for {_i(_k(v, 'broken_persons'))} persons.",
        f"The municipal fill has a Gini of {_k(v, 'fill_gini_municipality'):.3f} "
        "(0 = every municipality gets exactly its fair share).",
    ]


def _change(a: float, b: float, noun: str, singular: str) -> str:
    if a == b:
        return f"the same number of {noun} ({_i(a)})"
    word = "more" if b > a else "fewer"
    return f"{_i(abs(b - a))} {word} {singular if abs(b - a) == 1 else noun} ({_i(a)} -> {_i(b)})"


def _pair(base: dict[str, Any], v: dict[str, Any]) -> list[str]:
    b, n = base["name"], v["name"]
    jobs = _change(
        _k(base, "jobs_kept"), _k(v, "jobs_kept"), "jobs within reach", "job within reach"
    )
    broken = _change(
        _k(base, "broken_persons"),
        _k(v, "broken_persons"),
        "persons with a broken hard criterion",
        "person with a broken hard criterion",
    )
    out = [f"Against {b}, {n} has {jobs} and {broken}."]
    g0, g1 = _k(base, "fill_gini_municipality"), _k(v, "fill_gini_municipality")
    if abs(g1 - g0) < GINI_SAME:
        out.append(f"The fill is about as even across municipalities (Gini {g0:.3f} -> {g1:.3f}).")
    else:
        word = "less" if g1 > g0 else "more"
        out.append(f"The fill is {word} even across municipalities (Gini {g0:.3f} -> {g1:.3f}).")
    out += _who(base, v)
    return out


def _short(base: dict[str, Any], v: dict[str, Any]) -> str:
    dj = _k(v, "jobs_kept") - _k(base, "jobs_kept")
    db = _k(v, "broken_persons") - _k(base, "broken_persons")
    dg = _k(v, "fill_gini_municipality") - _k(base, "fill_gini_municipality")
    return (
        f"Against {base['name']}, {v['name']} keeps {dj:+,.0f} jobs within reach, breaks "
        f"{db:+,.0f} persons' hard criteria and changes the fill Gini by {dg:+.3f}."
    )


def _who(base: dict[str, Any], v: dict[str, Any], top: int = 3) -> list[str]:
    """Which municipalities take more persons and which fewer (the largest changes)."""
    before = {m["code"]: m for m in base["kpis"]["municipalities"]}
    delta = []
    for m in v["kpis"]["municipalities"]:
        if m["code"] in before:
            d = int(m["assigned_persons"]) - int(before[m["code"]]["assigned_persons"])
            if d:
                delta.append((d, str(m["name"])))
    if not delta:
        return ["No municipality receives a different number of persons."]
    gain = sorted((x for x in delta if x[0] > 0), key=lambda x: (-x[0], x[1]))[:top]
    loss = sorted((x for x in delta if x[0] < 0), key=lambda x: (x[0], x[1]))[:top]
    moved = sum(d for d, _ in delta if d > 0)
    out = []
    if gain:
        out.append(
            f"{_i(moved)} persons land elsewhere; {_list(gain)} absorb the most of them"
            + (f", while {_list(loss)} receive fewer." if loss else ".")
        )
    elif loss:
        out.append(f"{_list(loss)} receive fewer persons.")
    return out


def _list(items: list[tuple[int, str]]) -> str:
    parts = [f"{name} ({d:+d})" for d, name in items]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
