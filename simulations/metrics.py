"""Utility metrics of a classifier on the held-out test set: accuracy, macro-F1 and ROC AUC.

Pure NumPy (no scikit-learn on the machine). AUC is the Mann-Whitney statistic computed
from ranks (ties count half), so it is exact and O(n log n); for more than two classes it
is the unweighted mean of one-vs-rest AUCs over the classes present in the labels.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Return 1-based ranks with ties given their average rank."""
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(scores)]))
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return ranks


def binary_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Return the ROC AUC of ``scores`` for binary ``labels`` (0.5 if a class is missing).

    Parameters
    ----------
    labels : np.ndarray
        0/1 (or boolean) labels.
    scores : np.ndarray
        Scores, higher meaning class 1.

    Returns
    -------
    float
        AUC in [0, 1].
    """
    positive = np.asarray(labels).astype(bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = _ranks(np.asarray(scores, dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def macro_f1(labels: np.ndarray, predicted: np.ndarray, *, num_classes: int) -> float:
    """Return the unweighted mean F1 over the classes present in labels or predictions.

    Parameters
    ----------
    labels, predicted : np.ndarray
        Integer class indices.
    num_classes : int
        Number of classes.

    Returns
    -------
    float
        Macro-F1 in [0, 1]; 0 for empty input.
    """
    scores: list[float] = []
    for cls in range(num_classes):
        true = labels == cls
        pred = predicted == cls
        if not true.any() and not pred.any():
            continue
        tp = float(np.sum(true & pred))
        denominator = float(true.sum() + pred.sum())
        scores.append(2.0 * tp / denominator if denominator else 0.0)
    return float(np.mean(scores)) if scores else 0.0


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Return accuracy, macro-F1 and AUC of class probabilities.

    Parameters
    ----------
    labels : np.ndarray
        ``(n,)`` integer class indices.
    probabilities : np.ndarray
        ``(n, num_classes)`` probabilities (or any scores; argmax is the prediction).

    Returns
    -------
    dict[str, float]
        ``accuracy``, ``macro_f1`` and ``auc`` (binary: of class 1; more classes: macro
        one-vs-rest over the classes present).
    """
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = probabilities.shape[1]
    if len(labels) == 0:
        return {"accuracy": 0.0, "macro_f1": 0.0, "auc": 0.5}
    predicted = probabilities.argmax(axis=1)
    if num_classes == 2:
        auc = binary_auc(labels == 1, probabilities[:, 1])
    else:
        present = [c for c in range(num_classes) if (labels == c).any() and (labels != c).any()]
        aucs = [binary_auc(labels == c, probabilities[:, c]) for c in present]
        auc = float(np.mean(aucs)) if aucs else 0.5
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "macro_f1": macro_f1(labels, predicted, num_classes=num_classes),
        "auc": auc,
    }
