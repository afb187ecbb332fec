"""Vectorised local search: move whole households where that raises the objective.

A move sends household h from its municipality a to another municipality b among its candidate
pairs. Its exact gain is the change in soft score plus the fill weight times the change in the
fill shortfall at a and b. Each round evaluates every candidate move at once with numpy, then
applies the best moves that touch disjoint municipalities (so the evaluated gains stay exact),
until no move gains. Moves never exceed a capacity, use a forbidden pair, break another hard
criterion, or touch side constraints (the search is only used without them).
"""

from __future__ import annotations

import numpy as np

from coupler.model import CouplingModel


def improve(
    model: CouplingModel,
    assignment: np.ndarray,
    pair_h: np.ndarray,
    pair_m: np.ndarray,
    *,
    max_rounds: int = 200,
) -> np.ndarray:
    """Return an assignment at least as good as ``assignment`` (a copy; the input is unchanged)."""
    a = np.asarray(assignment, dtype=np.int64).copy()
    n_m = model.n_municipalities
    size = model.size.astype(np.float64)
    lam = model.fill_weight
    target = model.target
    cap = model.cap.astype(np.float64)
    keep = ~model.forbidden[pair_h, pair_m]
    ph, pm = pair_h[keep], pair_m[keep]
    brk = model.breaks[ph, pm]
    val = model.value[ph, pm]
    for _ in range(max_rounds):
        coupled = a >= 0
        load = np.bincount(a[coupled], weights=size[coupled], minlength=n_m)
        src = a[ph]
        ok = (src >= 0) & (src != pm)
        k = size[ph]
        ok &= load[pm] + k <= cap[pm] + 1e-9
        # A move may not break a criterion the household meets now.
        ok &= ~brk | model.breaks[ph, np.maximum(src, 0)]
        if not ok.any():
            break
        i = np.flatnonzero(ok)
        h, b, s, kk = ph[i], pm[i], src[i], k[i]
        gain = val[i] - model.value[h, s]
        if lam:
            d_b = np.maximum(target[b] - load[b] - kk, 0) - np.maximum(target[b] - load[b], 0)
            d_a = np.maximum(target[s] - load[s] + kk, 0) - np.maximum(target[s] - load[s], 0)
            gain -= lam * (d_a + d_b)
        good = gain > 1e-9
        if not good.any():
            break
        h, b, s, gain = h[good], b[good], s[good], gain[good]
        # Best moves first; accept those whose source and destination are untouched this round
        # and whose household has not moved yet.
        order = np.argsort(-gain, kind="stable")
        h, b, s = h[order], b[order], s[order]
        # One candidate per household (its best), then one per destination, then per source.
        _, first = np.unique(h, return_index=True)
        sel = np.sort(first)
        h, b, s = h[sel], b[sel], s[sel]
        touched = np.zeros(n_m, dtype=bool)
        applied = 0
        for hh, bb, ss in zip(h.tolist(), b.tolist(), s.tolist(), strict=True):
            if touched[bb] or touched[ss]:
                continue
            touched[bb] = touched[ss] = True
            a[hh] = bb
            applied += 1
            if touched.all():
                break
        if applied == 0:
            break
    return a
