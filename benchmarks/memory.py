"""Which structures dominate memory: array sizes of the model and its full MIP, per tier.

``python -m benchmarks memory --tier tiny,monthly`` builds each tier (seed 0), lists the model's
arrays by ``nbytes`` and the peak traced allocation of :func:`coupler.build_model`, and
extrapolates the dense (household x municipality) arrays to the other tiers by household count.
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benchmarks.workloads import WORKLOADS, Workload


def model_arrays(model: Any) -> dict[str, int]:
    """nbytes of every numpy array the model holds (dense per-pair arrays dominate)."""
    out = {}
    for name in ("value", "forbidden", "size", "cap", "pinned", "target", "is_large"):
        out[name] = int(getattr(model, name).nbytes)
    out["hard.allowed"] = int(model.allowed.nbytes)
    out["breaks (cached)"] = int(model.breaks.nbytes)
    out["instance.distance_km"] = int(model.instance.distance_km.nbytes)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def measure(w: Workload, seed: int = 0) -> dict[str, Any]:
    """Build ``w`` once under tracemalloc; array sizes and the traced peak of build_model."""
    from coupler import build_model

    with tempfile.TemporaryDirectory() as tmp:
        inst, policy = w.prepare(seed, Path(tmp)).load()
    tracemalloc.start()
    t = time.perf_counter()
    model = build_model(inst, policy)
    seconds = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    arrays = model_arrays(model)
    return {
        "tier": w.name,
        "households": inst.n_households,
        "municipalities": inst.n_municipalities,
        "pairs": inst.n_households * inst.n_municipalities,
        "build_model_peak_traced_mb": peak / 2**20,
        "build_seconds_traced": seconds,
        "arrays": arrays,
    }


def report(tiers: list[str]) -> str:
    """Markdown lines with the measurement and the extrapolation to every registered tier."""
    lines = []
    per_pair = None
    hh_per_person = 1 / 1.9
    for name in tiers:
        m = measure(WORKLOADS[name])
        dense = sum(
            v
            for k, v in m["arrays"].items()
            if k not in ("size", "cap", "pinned", "target", "is_large", "instance.distance_km")
        )
        per_pair = dense / m["pairs"]
        hh_per_person = m["households"] / WORKLOADS[name].persons
        peak_per_pair = m["build_model_peak_traced_mb"] * 2**20 / m["pairs"]
        lines.append(
            f"- `{name}`: {m['households']:,} households x {m['municipalities']} municipalities = "
            f"{m['pairs']:,} pairs; build_model traced peak "
            f"{m['build_model_peak_traced_mb']:,.0f} MB; "
            "arrays: "
            + ", ".join(f"{k} {v / 2**20:,.1f} MB" for k, v in m["arrays"].items() if v >= 2**16)
        )
    if per_pair is not None:
        lines.append(
            f"- per (household, municipality) pair: {per_pair:.1f} bytes of dense model arrays, "
            f"{peak_per_pair:.0f} bytes traced peak while building; full-MIP CSR of the baselines "
            f"~{full_mip_bytes(1, 1):.0f} bytes"
        )
        for name, w in WORKLOADS.items():
            hh = w.persons * hh_per_person
            pairs = hh * 342
            lines.append(
                f"  - `{name}` (~{hh:,.0f} households, {pairs / 1e6:.1f} M pairs): model arrays "
                f"~{pairs * per_pair / 2**20:,.0f} MB, "
                f"build peak ~{pairs * peak_per_pair / 2**20:,.0f} MB, "
                f"full MIP ~{full_mip_bytes(int(hh)) / 2**20:,.0f} MB"
            )
    return "\n".join(lines)


def full_mip_bytes(households: int, municipalities: int = 342) -> float:
    """Rough bytes of the plain baselines' full MIP: CSR with ~3 nonzeros per pair column
    (assignment, capacity, fill row), float64 values and int32 indices, plus column arrays."""
    cols = households * municipalities
    nnz = 3 * cols
    return float(nnz * (8 + 4) + cols * (8 * 4 + 1))
