"""Learn the participation score from past outcomes, score a batch, and audit the model.

history  a synthetic history of past arrivals with a known generating process
table    the history and members tables, validated like every input
features the model's features and design matrix; members read from households
fit      the cohort-validated, calibrated model; model folders
score    household x region scores aggregated from every adult member
card     the model card: performance, calibration plot, importances, audit by group
"""

from __future__ import annotations

from coupler.learn.card import audit, card_html, card_json, compare_placements
from coupler.learn.fit import LearnedModel, Validation, fit_model, load_model
from coupler.learn.history import HistoryParams, World, generate_history, synthetic_members
from coupler.learn.score import Scored, aggregate, score_batch
from coupler.learn.table import load_history, load_members

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
