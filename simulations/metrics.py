"""Utility metrics of a classifier on the held-out test set: accuracy, macro-F1 and ROC AUC.

scikit-learn's metrics (``accuracy_score``, ``f1_score`` with macro averaging over the classes
present in the labels or the predictions, ``roc_auc_score``). AUC is the binary AUC of class 1,
or for more classes the unweighted mean of one-vs-rest AUCs over the classes present in the
labels (0.5 when fewer than two classes are present), the same rule the edges use
(``client.learning.loop.main_auc``).
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from client.learning.loop import main_auc

logger = logging.getLogger(__name__)


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
        ``accuracy``, ``macro_f1`` and ``auc``; zeros and AUC 0.5 for empty input.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return {"accuracy": 0.0, "macro_f1": 0.0, "auc": 0.5}
    predicted = np.asarray(probabilities).argmax(axis=1)
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, average="macro", zero_division=0.0)),
        "auc": main_auc(labels, np.asarray(probabilities, dtype=np.float64)),
    }
