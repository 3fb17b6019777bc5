"""Baseline settings of a simulation report: the strongest simple models, and the oracle.

Each baseline is trained centrally and without noise on the pooled training examples of
every edge and scored on the same held-out set as our settings, so the report can state
how far federated DP is from the **best** of them:

* text: ``tfidf-lr`` (``simulations.baselines.text``);
* behaviour: ``logreg`` and ``gbdt`` on the behaviour features
  (``simulations.baselines.tabular``) and ``bgnbd``, the BG/NBD repeat-purchase model
  (``simulations.baselines.bgnbd``) on each customer's purchase history before the cutoff.

On a synthetic population the generator knows every user's latent purchase rate, so
``oracle_metrics`` also reports the Bayes-optimal (oracle) AUC of the held-out labels.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from client.learning.loop import main_auc
from models.behaviour import BEHAVIOUR_FEATURES, BehaviourExample

from .baselines.bgnbd import fit_bgnbd, probability_of_purchase
from .baselines.tabular import gradient_boosting_scores, logistic_regression_scores
from .baselines.text import tfidf_logistic_regression
from .metrics import classification_metrics
from .runs import SettingResult
from .task_data import BehaviourTask, TextTask

logger = logging.getLogger(__name__)

_INDEX = {name: i for i, name in enumerate(BEHAVIOUR_FEATURES)}


def _binary(probabilities: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 0.0, 1.0)
    return np.stack([1.0 - p, p], axis=1)


def _result(
    name: str, labels: np.ndarray, probabilities: np.ndarray, started: float, **extra: Any
) -> SettingResult:
    return SettingResult(
        setting=name,
        target_epsilon=None,
        metrics=classification_metrics(labels, probabilities),
        seconds=round(time.perf_counter() - started, 2),
        extra=dict(extra),
        baseline=True,
    )


def text_baselines(task: TextTask, *, seed: int) -> list[SettingResult]:
    """Return the ``tfidf-lr`` setting of a text task."""
    started = time.perf_counter()
    train_texts, train_labels = task.train_texts()
    test_texts, test_labels = task.test_texts()
    fitted = tfidf_logistic_regression(
        train_texts, train_labels, test_texts, num_classes=task.num_classes, seed=seed
    )
    return [_result("tfidf-lr", test_labels, fitted.probabilities, started, c=fitted.c)]


def feature_matrix(examples: list[BehaviourExample]) -> tuple[np.ndarray, np.ndarray]:
    """Return the examples' raw feature rows and purchase labels (the baselines' inputs)."""
    features = np.array([e.features for e in examples], dtype=np.float64)
    labels = np.array([e.purchase for e in examples], dtype=np.int64)
    return features.reshape(len(examples), len(BEHAVIOUR_FEATURES)), labels


def repeat_purchase_history(features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return BG/NBD's ``(x, t_x, T)`` in days from behaviour feature rows.

    ``x`` = purchase days after the first, ``T`` = days since the first purchase (since the
    first event for customers who never purchased), ``t_x`` = days from the first to the
    last purchase.
    """
    days = features[:, _INDEX["purchase_days_total"]]
    first = features[:, _INDEX["first_purchase_days"]]
    last = features[:, _INDEX["last_purchase_days"]]
    tenure = features[:, _INDEX["history_days"]]
    bought = features[:, _INDEX["purchases_total"]] > 0
    x = np.where(bought, np.maximum(days - 1.0, 0.0), 0.0)
    age = np.where(bought, first, tenure)
    recency = np.where(x > 0, np.clip(first - last, 0.0, age), 0.0)
    return x, recency, np.maximum(age, 0.0)


def behaviour_baselines(
    task: BehaviourTask, *, window_days: float, seed: int
) -> list[SettingResult]:
    """Return the ``logreg``, ``gbdt`` and ``bgnbd`` settings of a behaviour task."""
    train_x, train_y = feature_matrix(task.pooled_train())
    test_x, test_y = feature_matrix(task.held_out())
    out: list[SettingResult] = []
    started = time.perf_counter()
    scores = logistic_regression_scores(train_x, train_y, test_x, seed=seed)
    out.append(_result("logreg", test_y, _binary(scores), started))
    started = time.perf_counter()
    scores = gradient_boosting_scores(train_x, train_y, test_x, seed=seed)
    out.append(_result("gbdt", test_y, _binary(scores), started))
    started = time.perf_counter()
    x, recency, age = repeat_purchase_history(train_x)
    params = fit_bgnbd(frequency=x, recency=recency, T=age)
    x, recency, age = repeat_purchase_history(test_x)
    scores = probability_of_purchase(params, t=window_days, frequency=x, recency=recency, T=age)
    out.append(
        _result(
            "bgnbd",
            test_y,
            _binary(scores),
            started,
            params={"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b},
            converged=params.converged,
        )
    )
    return out


def oracle_metrics(task: BehaviourTask) -> dict[str, Any] | None:
    """Return the oracle AUC of the held-out labels (synthetic data), else ``None``."""
    if not task.oracle:
        return None
    held = task.held_out()
    known = [e for e in held if e.subject in task.oracle]
    if not known:
        return None
    labels = np.array([e.purchase for e in known], dtype=np.int64)
    probabilities = _binary(np.array([task.oracle[e.subject] for e in known]))
    return {
        "auc": main_auc(labels, probabilities),
        "held_out": len(known),
        "note": "Bayes-optimal score from the generator's latent purchase rates",
    }
