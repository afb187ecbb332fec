"""The report's matplotlib plots, each returned as inline SVG text."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pandas as pd

from coupler.analysis.kpi import KPI_LABELS


def svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def figure(w: float = 5.0, h: float = 3.2) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.fonttype"] = "none"
    plt.rcParams["svg.hashsalt"] = "coupler"
    return plt.subplots(figsize=(w, h))


def bars(variants: list[dict[str, Any]]) -> str:
    """Jobs held, jobs within reach and broken persons per variant."""
    fig, ax = figure()
    names = [v["name"] for v in variants]
    kept = [v["kpis"]["values"].get("jobs_kept") or 0 for v in variants]
    jobs = [v["kpis"]["values"].get("jobs") or 0 for v in variants]
    broken = [v["kpis"]["values"].get("broken_persons") or 0 for v in variants]
    xs = np.arange(len(names))
    ax.bar(xs - 0.27, jobs, 0.27, label="jobs held", color="#bbb")
    ax.bar(xs, kept, 0.27, label="jobs within reach", color="#2b8a3e")
    ax.bar(xs + 0.27, broken, 0.27, label="persons broken", color="#c92a2a")
    ax.set_xticks(xs, names, rotation=15, ha="right", fontsize=8)
    ax.set_title("Jobs and broken hard criteria")
    ax.legend(fontsize=7)
    return svg(fig)


def fill(variants: list[dict[str, Any]]) -> str:
    """Box plot of the municipal fill shares per variant."""
    fig, ax = figure()
    data = []
    for v in variants:
        s = np.array(
            [m["fill_share"] for m in v["kpis"]["municipalities"] if m["fill_share"] is not None],
            float,
        )
        data.append(s)
    ax.boxplot(data, showfliers=False)
    ax.set_xticks(
        np.arange(1, len(variants) + 1),
        [v["name"] for v in variants],
        rotation=15,
        ha="right",
        fontsize=8,
    )
    ax.axhline(1.0, color="#888", lw=0.8, ls="--")
    ax.axhline(0.9, color="#c92a2a", lw=0.8, ls=":")
    ax.set_title("Fill share per municipality (1 = fair share)")
    return svg(fig)


def groups(variants: list[dict[str, Any]]) -> str:
    """Mean soft score per household by group and variant ('' without group columns)."""
    frames = [
        pd.DataFrame(v["kpis"]["groups"]).assign(variant=v["name"])
        for v in variants
        if v["kpis"]["groups"]
    ]
    if not frames:
        return ""
    g = pd.concat(frames, ignore_index=True)
    g["label"] = g["column"] + "=" + g["group"]
    pivot = g.pivot_table(index="label", columns="variant", values="mean_score", sort=True)
    fig, ax = figure(5.5, 3.6)
    width = 0.8 / max(1, len(pivot.columns))
    for i, col in enumerate([v["name"] for v in variants if v["name"] in pivot.columns]):
        ax.barh(np.arange(len(pivot)) + i * width, pivot[col].to_numpy(), width, label=col)
    ax.set_yticks(np.arange(len(pivot)) + 0.4 - width / 2, pivot.index, fontsize=7)
    ax.set_title("Mean soft score per household, by group")
    ax.legend(fontsize=7)
    return svg(fig)


def weight_label(row: pd.Series, columns: list[str]) -> str:
    """'labour 1, network 0.5': the weights of a sweep point that vary across the sweep."""
    return ", ".join(f"{c[2:]} {row[c]:g}" for c in columns)


def front(table: pd.DataFrame, x: str, y: str) -> str:
    """The sweep's points, the Pareto front joined, each front point labelled with its weights."""
    fig, ax = figure(6.0, 4.0)
    on = table["on_front"].astype(bool)
    ax.scatter(table.loc[~on, x], table.loc[~on, y], color="#aaa", label="dominated")
    f = table[on].sort_values(x)
    ax.plot(f[x], f[y], "o-", color="#1c7ed6", label="Pareto front")
    varying = [c for c in table.columns if c.startswith("w_") and table[c].nunique() > 1]
    for i, (_, r) in enumerate(f.iterrows()):
        ax.annotate(
            weight_label(r, varying),
            (r[x], r[y]),
            xytext=(6, 8 if i % 2 == 0 else -12),
            textcoords="offset points",
            fontsize=7,
            color="#1c4f8a",
        )
    ax.set_xlabel(KPI_LABELS.get(x, x))
    ax.set_ylabel(KPI_LABELS.get(y, y))
    ax.legend(fontsize=7)
    ax.set_title("Weight settings")
    return svg(fig)
