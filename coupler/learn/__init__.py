"""Learn the participation score from past outcomes, score a batch, and audit the model.

history  a synthetic history of past arrivals with a known generating process
table    the history and members tables, validated like every input
features the model's features and design matrix; members read from households
fit      the cohort-validated, calibrated model; model folders
score    household x region scores aggregated from every adult member
card     the model card: performance, calibration plot, importances, audit by group
"""

from __future__ import annotations

import importlib
from typing import Any

# Submodule of each public name. They are imported on first use (PEP 562), so that importing a
# light part (``coupler.learn.history``, the command line) does not load scikit-learn (0.6 s).
_WHERE = {
    "audit": "card",
    "card_html": "card",
    "card_json": "card",
    "compare_placements": "card",
    "LearnedModel": "fit",
    "Validation": "fit",
    "fit_model": "fit",
    "load_model": "fit",
    "HistoryParams": "history",
    "World": "history",
    "generate_history": "history",
    "synthetic_members": "history",
    "Scored": "score",
    "aggregate": "score",
    "score_batch": "score",
    "load_history": "table",
    "load_members": "table",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)


__all__ = [
    "HistoryParams",
    "LearnedModel",
    "Scored",
    "Validation",
    "World",
    "aggregate",
    "audit",
    "card_html",
    "card_json",
    "compare_placements",
    "fit_model",
    "generate_history",
    "load_history",
    "load_members",
    "load_model",
    "score_batch",
    "synthetic_members",
]
