"""The model card: what a learned score is, how well it does, and whom it serves worse.

:func:`audit` measures calibration by group on the test cohort(s): mean predicted score and
observed rate of work per gender, age group, household type and nationality group, and names
the group where the model is worst calibrated (the largest absolute gap between the two, among
groups of at least :data:`MIN_GROUP` persons). :func:`compare_placements` solves one batch with
and without the learned scores and tabulates the change in placements by group.
:func:`card_json` and :func:`card_html` write it all down; the HTML is one self-contained file
(inline SVG, no scripts, no external resources).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from coupler.engine.solve import solve
from coupler.generate import generate_cases
from coupler.instance import Instance
from coupler.learn.fit import LearnedModel, Validation
from coupler.learn.history import HistoryParams, synthetic_members
from coupler.learn.score import Scored, score_batch
from coupler.model import build_model
from coupler.policy import Policy

__all__ = [
    "AUDIT_COLUMNS",
    "MIN_GROUP",
    "PlacementComparison",
    "audit",
    "card_html",
    "card_json",
    "compare_placements",
    "synthetic_comparison",
]

#: Group columns of the audit (DOMAIN.md section 9), in report order.
AUDIT_COLUMNS: tuple[str, ...] = ("gender", "age_group", "household_type", "nationality_group")
#: Groups smaller than this are listed but never named the worst calibrated: their gap is
#: mostly sampling noise (at 200 persons and a rate of 0.2 one standard error is 0.028).
MIN_GROUP = 200


def audit(validation: Validation, columns: tuple[str, ...] = AUDIT_COLUMNS) -> dict[str, Any]:
    """Calibration by group on the test cohort(s).

    Returns
    -------
    dict
        ``groups``: one record per (attribute, group) with ``n``, ``mean_predicted``,
        ``observed``, ``gap`` (predicted - observed) and ``abs_gap``; ``worst``: the record of
        the group with the largest ``abs_gap`` among groups of at least :data:`MIN_GROUP`
        persons (``None`` when no group is that large); ``attributes``: the columns audited
        (a column absent or empty in the history is skipped).
    """
    test = validation.test
    frame = pd.DataFrame({"predicted": validation.predicted, "observed": validation.observed})
    records: list[dict[str, Any]] = []
    used: list[str] = []
    for column in columns:
        if column not in test or test[column].isna().all():
            continue
        used.append(column)
        values = test[column].astype("string").fillna("(missing)").to_numpy()
        for group, part in frame.groupby(values, sort=True):
            mp, ob = float(part["predicted"].mean()), float(part["observed"].mean())
            records.append(
                {
                    "attribute": column,
                    "group": str(group),
                    "n": len(part),
                    "mean_predicted": mp,
                    "observed": ob,
                    "gap": mp - ob,
                    "abs_gap": abs(mp - ob),
                }
            )
    eligible = [r for r in records if r["n"] >= MIN_GROUP]
    worst = max(eligible, key=lambda r: r["abs_gap"]) if eligible else None
    return {"attributes": used, "groups": records, "worst": worst, "min_group": MIN_GROUP}


@dataclass(frozen=True, eq=False)
class PlacementComparison:
    """One batch solved without and with the learned scores.

    Attributes
    ----------
    scored
        The learned scores of the batch (members, P(work) per member and region).
    region_without, region_with
        Region index (into ``scored.regions``) of each household's municipality; -1 uncoupled.
    table
        Per (attribute, group) of the members: persons, share moved to another municipality,
        mean learned P(work) at the placement and expected persons at work, without and with.
    """

    scored: Scored
    municipality_without: np.ndarray
    municipality_with: np.ndarray
    region_without: np.ndarray
    region_with: np.ndarray
    table: pd.DataFrame


def compare_placements(
    model: LearnedModel,
    instance: Instance,
    members: pd.DataFrame,
    *,
    policy: Policy | None = None,
    columns: tuple[str, ...] = AUDIT_COLUMNS,
) -> PlacementComparison:
    """Solve ``instance`` without and with the learned scores; tabulate the change by group.

    Parameters
    ----------
    model
        The learned model.
    instance
        A batch; its own ``scores`` are replaced (none, then the learned ones).
    members
        The batch's adult members (columns of a members file; group columns are read here).
    policy
        The policy of both solves (its aggregation combines the members); ``Policy()`` when
        omitted.
    columns
        Member or household columns to tabulate by.
    """
    policy = policy or Policy()
    hh = instance.households.reset_index(drop=True)
    scored = score_batch(
        model,
        hh,
        instance.municipalities,
        members=members,
        aggregation=policy.soft.aggregation,
    )
    scores = pd.DataFrame(
        {
            "household_id": pd.array(scored.scores["household_id"], dtype="string"),
            "municipality": pd.array([None] * len(scored.scores), dtype="string"),
            "labour_market_region": pd.array(scored.scores["labour_market_region"], "string"),
            "score": scored.scores["score"].to_numpy(dtype=float),
        }
    )
    plans = []
    for variant in (instance.replace(scores=None), instance.replace(scores=scores)):
        result = solve(build_model(variant, policy))
        plans.append(
            result.plan.set_index("household_id")["municipality"]
            .reindex(hh["household_id"])
            .astype("string")
        )
    region_index = {r: i for i, r in enumerate(scored.regions)}
    muni_region = dict(
        zip(
            instance.municipalities["code"].astype(str),
            instance.municipalities["labour_market_region"].astype(str),
            strict=True,
        )
    )

    def regions_of(plan: pd.Series) -> np.ndarray:
        return np.array(
            [-1 if pd.isna(c) else region_index[muni_region[str(c)]] for c in plan],
            dtype=np.int64,
        )

    without, with_ = regions_of(plans[0]), regions_of(plans[1])
    position = pd.Series(np.arange(len(hh)), index=hh["household_id"].astype(str))
    household = position[scored.members["household_id"].astype(str)].to_numpy(dtype=np.int64)
    prob = scored.probability
    rows = np.arange(len(household))

    def at(regions: np.ndarray) -> np.ndarray:
        r = regions[household]
        return np.where(r >= 0, prob[rows, np.maximum(r, 0)], np.nan)

    p0, p1 = at(without), at(with_)
    moved = (plans[0].to_numpy()[household] != plans[1].to_numpy()[household]).astype(float)
    people = scored.members.assign(
        household_type=hh["household_type"].to_numpy()[household]
        if "household_type" in hh
        else None
    )
    records: list[dict[str, Any]] = []
    groupings = [("all", np.full(len(people), "all", dtype=object))]
    groupings += [
        (c, people[c].astype("string").fillna("(missing)").to_numpy())
        for c in columns
        if c in people and not people[c].isna().all()
    ]
    for column, values in groupings:
        for group in sorted(set(values)):
            sel = values == group
            records.append(
                {
                    "attribute": column,
                    "group": str(group),
                    "persons": int(sel.sum()),
                    "moved_share": float(moved[sel].mean()),
                    "mean_p_without": float(np.nanmean(p0[sel])),
                    "mean_p_with": float(np.nanmean(p1[sel])),
                    "expected_workers_without": float(np.nansum(p0[sel])),
                    "expected_workers_with": float(np.nansum(p1[sel])),
                }
            )
    return PlacementComparison(
        scored=scored,
        municipality_without=plans[0].to_numpy(dtype=object),
        municipality_with=plans[1].to_numpy(dtype=object),
        region_without=without,
        region_with=with_,
        table=pd.DataFrame(records),
    )


def synthetic_comparison(
    model: LearnedModel,
    municipalities: pd.DataFrame,
    demand: pd.DataFrame | None,
    *,
    persons: int,
    seed: int,
    policy: Policy | None = None,
) -> PlacementComparison:
    """:func:`compare_placements` on a generated batch with synthetic members.

    The batch comes from :func:`coupler.generate.generate_cases` and its members from
    :func:`coupler.learn.history.synthetic_members` (the history generator's person model).
    """
    households, criteria = generate_cases(municipalities, persons=persons, seed=seed)
    members, _ = synthetic_members(households, seed, HistoryParams())
    instance = Instance(
        municipalities=municipalities, households=households, criteria=criteria, demand=demand
    )
    return compare_placements(model, instance, members.drop(columns=["person_id"]), policy=policy)


def card_json(
    model: LearnedModel,
    validation: Validation,
    audit_result: dict[str, Any],
    comparison: PlacementComparison | None,
    history_info: dict[str, Any],
) -> dict[str, Any]:
    """The model card as JSON-able data (``card.json``)."""
    return {
        "model": "P(work within N years | person, household, placement region, cohort)",
        "outcome": f"worked_{model.years}y",
        "years": model.years,
        "features": list(model.spec.features),
        "nationality_used": "nationality_group" in model.spec.features,
        "data": history_info,
        "cohorts": model.split.to_json(),
        "sizes": validation.sizes,
        "calibration": model.calibration,
        "test": {
            "auc": validation.auc,
            "brier": validation.brier,
            "auc_uncalibrated": validation.auc_uncalibrated,
            "base_rate": validation.base_rate,
            "mean_predicted": float(validation.predicted.mean()),
            "max_decile_gap": float(validation.reliability["gap"].abs().max()),
        },
        "reliability": _records(validation.reliability),
        "importances": _records(validation.importances),
        "audit": audit_result,
        "placements": None if comparison is None else _records(comparison.table),
    }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({str(k): _plain(v) for k, v in row.items()})
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# --- HTML ------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:980px;color:#222;line-height:1.45}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.worst{background:#fde2e1}.note{color:#555;font-size:.9rem}
"""


def card_html(card: dict[str, Any]) -> str:
    """The model card as one self-contained HTML page (inline SVG, no external resources)."""
    t = card["test"]
    worst = card["audit"]["worst"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>coupler model card</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Model card: learned participation score</h1>",
        f"<p>{_e(card['model'])}. Outcome <code>{_e(card['outcome'])}</code>. "
        "Validated by arrival cohort: trained on earlier cohorts, calibrated on a later one, "
        "tested on the last; every figure below is from the test cohort(s).</p>",
        "<h2>Data</h2>",
        _kv(
            [
                ("history file", card["data"].get("file", "")),
                ("persons", card["data"].get("persons", "")),
                ("data period (arrival cohorts)", card["data"].get("period", "")),
                ("training cohorts", _years(card["cohorts"]["train"])),
                ("calibration cohorts", _years(card["cohorts"]["calibration"])),
                ("test cohorts", _years(card["cohorts"]["test"])),
                (
                    "persons: train / calibration / test",
                    " / ".join(str(card["sizes"][k]) for k in ("train", "calibration", "test")),
                ),
                ("features", ", ".join(card["features"])),
                ("nationality used as a feature", "yes" if card["nationality_used"] else "no"),
                ("calibration", card["calibration"]),
            ]
        ),
        "<h2>Performance on the test cohort</h2>",
        _kv(
            [
                ("AUC", f"{t['auc']:.3f}"),
                ("Brier score", f"{t['brier']:.4f}"),
                ("AUC before calibration", f"{t['auc_uncalibrated']:.3f}"),
                ("observed rate of work", f"{t['base_rate']:.3f}"),
                ("mean predicted", f"{t['mean_predicted']:.3f}"),
                ("largest decile gap |predicted - observed|", f"{t['max_decile_gap']:.3f}"),
            ]
        ),
        "<h2>Calibration</h2>",
        _calibration_svg(card["reliability"]),
        _table(card["reliability"], ["bin", "n", "mean_predicted", "observed", "gap"]),
        "<h2>Feature importance</h2>",
        '<p class="note">Permutation importance: the drop in test AUC when one feature is '
        "shuffled (mean of 3 repeats).</p>",
        _importance_svg(card["importances"]),
        "<h2>Audit: calibration by group</h2>",
    ]
    if worst is not None:
        parts.append(
            f"<p><strong>Worst calibrated group: {_e(worst['attribute'])} = "
            f"{_e(worst['group'])}</strong> (n = {worst['n']}): mean predicted "
            f"{worst['mean_predicted']:.3f}, observed {worst['observed']:.3f}, gap "
            f"{worst['gap']:+.3f}. A positive gap means the model over-predicts work for the "
            "group, a negative gap that it under-predicts.</p>"
        )
    else:
        parts.append(f"<p>No group has {card['audit']['min_group']} or more test persons.</p>")
    parts.append(
        _table(
            card["audit"]["groups"],
            ["attribute", "group", "n", "mean_predicted", "observed", "gap"],
            highlight=worst,
        )
    )
    parts.append("<h2>Change in placements when the learned score is switched on</h2>")
    if card["placements"]:
        parts.append(
            '<p class="note">One generated batch solved twice with the same policy: without '
            "the score and with it. Per group of adult members: the share placed in another "
            "municipality, and the mean learned P(work) at the placement and the expected "
            "persons at work by the model, without and with.</p>"
        )
        parts.append(
            _table(
                card["placements"],
                [
                    "attribute",
                    "group",
                    "persons",
                    "moved_share",
                    "mean_p_without",
                    "mean_p_with",
                    "expected_workers_without",
                    "expected_workers_with",
                ],
            )
        )
    else:
        parts.append("<p>Not computed (<code>--no-compare</code>).</p>")
    parts.append(
        '<p class="note">Written by coupler learn. The score proposes; a regievoerder '
        "decides. Nationality is not a feature unless the analyst opted in.</p></body></html>"
    )
    return "\n".join(parts) + "\n"


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _years(years: list[int]) -> str:
    return ", ".join(str(y) for y in years)


def _kv(rows: list[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "" if v is None else str(v)


def _table(
    records: list[dict[str, Any]], columns: list[str], highlight: dict[str, Any] | None = None
) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    rows = []
    for r in records:
        is_worst = (
            highlight is not None
            and r.get("attribute") == highlight["attribute"]
            and r.get("group") == highlight["group"]
        )
        cls = ' class="worst"' if is_worst else ""
        rows.append(
            f"<tr{cls}>" + "".join(f"<td>{_e(_fmt(r.get(c)))}</td>" for c in columns) + "</tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _calibration_svg(reliability: list[dict[str, Any]], size: int = 320) -> str:
    """Reliability diagram: observed rate against mean prediction per decile, with the diagonal."""
    pad = 40
    top = max([0.05] + [max(r["mean_predicted"], r["observed"]) for r in reliability])
    top = min(1.0, math.ceil(top * 10) / 10)
    inner = size - 2 * pad

    def x(v: float) -> float:
        return pad + inner * v / top

    def y(v: float) -> float:
        return size - pad - inner * v / top

    ticks = [top * k / 4 for k in range(5)]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 {size} {size}" role="img" aria-label="calibration plot">',
        f'<rect x="{pad}" y="{pad}" width="{inner}" height="{inner}" fill="none" stroke="#999"/>',
        f'<line x1="{x(0):.1f}" y1="{y(0):.1f}" x2="{x(top):.1f}" y2="{y(top):.1f}" '
        'stroke="#bbb" stroke-dasharray="4 3"/>',
    ]
    for v in ticks:
        out.append(
            f'<text x="{x(v):.1f}" y="{size - pad + 14}" font-size="10" text-anchor="middle">'
            f"{v:.2f}</text>"
        )
        out.append(
            f'<text x="{pad - 4}" y="{y(v) + 3:.1f}" font-size="10" text-anchor="end">{v:.2f}</text>'
        )
    points = " ".join(f"{x(r['mean_predicted']):.1f},{y(r['observed']):.1f}" for r in reliability)
    out.append(f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>')
    for r in reliability:
        out.append(
            f'<circle cx="{x(r["mean_predicted"]):.1f}" cy="{y(r["observed"]):.1f}" r="3.5" '
            f'fill="#1f77b4"><title>decile {r["bin"]}: predicted {r["mean_predicted"]:.3f}, '
            f"observed {r['observed']:.3f}</title></circle>"
        )
    out.append(
        f'<text x="{size / 2}" y="{size - 8}" font-size="11" text-anchor="middle">'
        "mean predicted (decile)</text>"
    )
    out.append(
        f'<text x="12" y="{size / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {size / 2})">observed rate</text>'
    )
    out.append("</svg>")
    return "".join(out)


def _importance_svg(importances: list[dict[str, Any]], width: int = 520) -> str:
    """Horizontal bars of permutation importance."""
    row, left = 20, 170
    height = row * len(importances) + 10
    top = max([1e-9] + [abs(r["importance"]) for r in importances])
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="feature importance">'
    ]
    for i, r in enumerate(importances):
        w = max(0.0, r["importance"]) / top * (width - left - 60)
        yy = 5 + i * row
        out.append(
            f'<text x="{left - 6}" y="{yy + 13}" font-size="11" text-anchor="end">'
            f"{_e(r['feature'])}</text>"
        )
        out.append(
            f'<rect x="{left}" y="{yy + 3}" width="{w:.1f}" height="{row - 6}" fill="#4c9a2a"/>'
        )
        out.append(
            f'<text x="{left + w + 4:.1f}" y="{yy + 13}" font-size="10">{r["importance"]:.4f}</text>'
        )
    out.append("</svg>")
    return "".join(out)
