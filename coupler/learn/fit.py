"""Fit P(work within N years | person, household, placement region, cohort), validated by cohort.

The history is split by arrival cohort, never at random across time: the base model (scikit-learn
``HistGradientBoostingClassifier``) learns from the earliest cohorts, a calibrator
(``CalibratedClassifierCV`` on the frozen base model, isotonic or sigmoid) from the next
cohort(s), and the last cohort(s) are the test set that every reported figure comes from. The
shipped model is exactly the validated one: it is not refitted on the test cohort afterwards.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.inspection import permutation_importance
from sklearn.metrics import brier_score_loss, roc_auc_score
from threadpoolctl import threadpool_limits

from coupler.errors import InputError, Problem
from coupler.learn.features import FeatureSpec
from coupler.learn.table import outcome_column

__all__ = [
    "CohortSplit",
    "LearnedModel",
    "Validation",
    "fit_model",
    "load_model",
    "reliability",
    "MODEL_FILE",
    "MODEL_JSON",
]

Calibration = Literal["isotonic", "sigmoid"]
MODEL_FILE = "model.joblib"
MODEL_JSON = "model.json"
_IMPORTANCE_ROWS = 4000
#: Base-model settings; fixed so that a fit is deterministic and takes seconds on 40,000 rows.
#: No early stopping: its validation split would be random across time.
HGB_PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "max_iter": 400,
    "max_leaf_nodes": 4,
    "min_samples_leaf": 100,
    "l2_regularization": 1.0,
    "early_stopping": False,
}


@dataclass(frozen=True)
class CohortSplit:
    """Arrival cohorts used to train, to calibrate and to test."""

    train: tuple[int, ...]
    calibration: tuple[int, ...]
    test: tuple[int, ...]

    @classmethod
    def last(cls, cohorts: pd.Series, calibration: int = 1, test: int = 1) -> CohortSplit:
        """Test on the last ``test`` cohorts, calibrate on the ``calibration`` before them."""
        years = sorted(int(c) for c in set(cohorts))
        if calibration < 1 or test < 1 or len(years) < calibration + test + 1:
            raise InputError(
                Problem(
                    "history",
                    f"{len(years)} cohort(s) cannot be split into training, {calibration} "
                    f"calibration and {test} test cohort(s)",
                    column="cohort",
                )
            )
        cut_cal, cut_test = len(years) - test - calibration, len(years) - test
        return cls(
            train=tuple(years[:cut_cal]),
            calibration=tuple(years[cut_cal:cut_test]),
            test=tuple(years[cut_test:]),
        )

    def to_json(self) -> dict[str, list[int]]:
        return {
            "train": list(self.train),
            "calibration": list(self.calibration),
            "test": list(self.test),
        }


@dataclass(frozen=True, eq=False)
class LearnedModel:
    """A calibrated model of P(work within ``years`` years) and what it was fitted on."""

    estimator: CalibratedClassifierCV
    spec: FeatureSpec
    years: int
    split: CohortSplit
    calibration: str
    seed: int

    @property
    def score_cohort(self) -> int:
        """The cohort a new batch is scored as by default: the latest one in the history."""
        return max(self.split.test)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated P(work) of each row (person x placement region x cohort)."""
        if len(frame) == 0:
            return np.zeros(0)
        with threadpool_limits(limits=1, user_api="openmp"):
            proba = self.estimator.predict_proba(self.spec.matrix(frame))
        return np.asarray(proba[:, 1], dtype=float)


@dataclass(frozen=True, eq=False)
class Validation:
    """What the test cohort(s) say about a fitted model."""

    test: pd.DataFrame
    observed: np.ndarray
    predicted: np.ndarray
    auc: float
    brier: float
    auc_uncalibrated: float
    base_rate: float
    reliability: pd.DataFrame
    importances: pd.DataFrame
    sizes: dict[str, int]


def reliability(predicted: np.ndarray, observed: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean prediction and observed rate per equal-count bin of the predictions (deciles).

    Rows are sorted by prediction (ties in a stable order) and cut into ``bins`` groups of
    (almost) equal size; ``gap`` is mean predicted minus observed rate.
    """
    order = np.argsort(predicted, kind="stable")
    rows = []
    for k, part in enumerate(np.array_split(order, bins)):
        if len(part) == 0:
            continue
        mp, ob = float(predicted[part].mean()), float(observed[part].mean())
        rows.append(
            {"bin": k + 1, "n": len(part), "mean_predicted": mp, "observed": ob, "gap": mp - ob}
        )
    return pd.DataFrame(rows)


def _additive_cohort(spec: FeatureSpec) -> list[list[int]] | None:
    """Let the cohort act as an additive drift only, never in interaction with a feature.

    Later arrivals lie beyond the training cohorts, where trees cannot extrapolate; interactions
    with the cohort would only carry the training cohorts' noise into them. The drift level
    itself is taken up by the calibration on a later cohort.
    """
    if "cohort" not in spec.features:
        return None
    cohort = spec.features.index("cohort")
    others = [i for i in range(len(spec.features)) if i != cohort]
    return [others, [cohort]] if others else None


def fit_model(
    history: pd.DataFrame,
    regions: tuple[str, ...],
    *,
    years: int = 2,
    nationality: bool = False,
    drop: tuple[str, ...] = (),
    calibration: Calibration = "sigmoid",
    calibration_cohorts: int = 1,
    test_cohorts: int = 1,
    seed: int = 0,
) -> tuple[LearnedModel, Validation]:
    """Fit and validate a participation model on a validated history.

    Parameters
    ----------
    history
        From :func:`coupler.learn.table.load_history`.
    regions
        Every labour-market region of the scenario.
    years
        The horizon: the outcome is ``worked_<years>y``.
    nationality
        Opt in to ``nationality_group`` as a feature (off by default; DOMAIN.md section 9).
    drop
        Default features to leave out.
    calibration
        ``"sigmoid"`` (Platt: keeps the ranking, stable on a small calibration cohort) or
        ``"isotonic"`` (more flexible; needs a few thousand persons, and ties lower the AUC).
    calibration_cohorts, test_cohorts
        How many of the latest cohorts calibrate and test (see :class:`CohortSplit`).
    seed
        Seed of the base model and of the permutation importances.

    Returns
    -------
    model, validation
    """
    target = outcome_column(years)
    split = CohortSplit.last(history["cohort"], calibration_cohorts, test_cohorts)
    spec = FeatureSpec.build(history, regions, nationality=nationality, drop=drop)
    cohort = history["cohort"].to_numpy(dtype=np.int64)
    y = history[target].to_numpy(dtype=bool).astype(np.int64)
    parts = {
        name: np.isin(cohort, getattr(split, name)) for name in ("train", "calibration", "test")
    }
    for name, mask in parts.items():
        classes = set(y[mask].tolist())
        if classes != {0, 1}:
            raise InputError(
                Problem(
                    "history",
                    f"the {name} cohort(s) {list(getattr(split, name))} need both outcomes "
                    f"({target} yes and no)",
                    column=target,
                )
            )
    # One thread: OpenMP on a shared, busy machine can be 25 times slower than one core.
    with threadpool_limits(limits=1, user_api="openmp"):
        return _fit(history, spec, split, y, parts, years, calibration, seed)


def _fit(
    history: pd.DataFrame,
    spec: FeatureSpec,
    split: CohortSplit,
    y: np.ndarray,
    parts: dict[str, np.ndarray],
    years: int,
    calibration: Calibration,
    seed: int,
) -> tuple[LearnedModel, Validation]:
    x = spec.matrix(history)
    base = HistGradientBoostingClassifier(
        categorical_features=spec.categorical,
        interaction_cst=_additive_cohort(spec),
        random_state=seed,
        **HGB_PARAMS,
    )
    base.fit(x[parts["train"]], y[parts["train"]])
    calibrated = CalibratedClassifierCV(FrozenEstimator(base), method=calibration)
    calibrated.fit(x[parts["calibration"]], y[parts["calibration"]])
    model = LearnedModel(
        estimator=calibrated,
        spec=spec,
        years=years,
        split=split,
        calibration=calibration,
        seed=seed,
    )

    test = parts["test"]
    observed = y[test]
    predicted = model.predict(history[test])
    raw = base.predict_proba(x[test])[:, 1]
    # On at most 4,000 test persons (each repeat re-predicts every row through every tree);
    # the sample is drawn here so that the baseline AUC is measured on the same rows.
    rows = np.flatnonzero(test)
    if len(rows) > _IMPORTANCE_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, _IMPORTANCE_ROWS, replace=False))
    imp = permutation_importance(
        calibrated, x[rows], y[rows], scoring="roc_auc", n_repeats=3, random_state=seed
    )
    importances = pd.DataFrame(
        {
            "feature": list(spec.features),
            "importance": imp.importances_mean,
            "std": imp.importances_std,
        }
    ).sort_values("importance", ascending=False, kind="stable")
    validation = Validation(
        test=history[test].reset_index(drop=True),
        observed=observed,
        predicted=predicted,
        auc=float(roc_auc_score(observed, predicted)),
        brier=float(brier_score_loss(observed, predicted)),
        auc_uncalibrated=float(roc_auc_score(observed, raw)),
        base_rate=float(observed.mean()),
        reliability=reliability(predicted, observed),
        importances=importances.reset_index(drop=True),
        sizes={name: int(mask.sum()) for name, mask in parts.items()},
    )
    return model, validation


def versions() -> dict[str, str]:
    """Versions that a saved model depends on."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        coupler_version = version("coupler")
    except PackageNotFoundError:  # pragma: no cover - a source checkout without install
        coupler_version = "unknown"
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "joblib": joblib.__version__,
        "coupler": coupler_version,
    }


def model_files(model: LearnedModel, extra: dict[str, Any]) -> dict[str, Any]:
    """The files of a model folder: the pickled model and its JSON description."""

    def dump(path: Path) -> None:
        joblib.dump(model, path)

    description = {
        "outcome": outcome_column(model.years),
        "years": model.years,
        **model.spec.to_json(),
        "cohorts": model.split.to_json(),
        "score_cohort": model.score_cohort,
        "calibration": model.calibration,
        "base_model": {"class": "HistGradientBoostingClassifier", **HGB_PARAMS},
        "seed": model.seed,
        "versions": versions(),
        **extra,
    }
    return {MODEL_FILE: dump, MODEL_JSON: description}


def load_model(folder: str | Path) -> LearnedModel:
    """Load a model folder written by ``coupler learn``.

    Only load folders you made yourself: the model file is a pickle, and unpickling runs code.

    Raises
    ------
    InputError
        If the folder lacks its files or was written with another scikit-learn version.
    """
    folder = Path(folder)
    meta_path, model_path = folder / MODEL_JSON, folder / MODEL_FILE
    for path in (meta_path, model_path):
        if not path.is_file():
            raise InputError(
                Problem(str(folder), f"no {path.name}: not a model folder of coupler learn")
            )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(Problem(str(meta_path), "is not valid JSON")) from None
    saved = meta.get("versions", {}).get("scikit-learn")
    if saved != sklearn.__version__:
        raise InputError(
            Problem(
                str(meta_path),
                f"the model was saved with scikit-learn {saved}; this is {sklearn.__version__}. "
                "Fit it again with coupler learn",
            )
        )
    model = joblib.load(model_path)
    if not isinstance(model, LearnedModel):
        raise InputError(Problem(str(model_path), "does not hold a coupler model"))
    return model
