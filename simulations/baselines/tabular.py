"""Non-private tabular baselines on the behaviour features: logistic regression, boosting.

Both see exactly the features the behaviour model sees (``models.BEHAVIOUR_FEATURES``:
recency, frequency, monetary, tenure, purchase days and gaps, rhythm, category and channel
mix, contact history), pooled centrally and without noise: the strongest simple models a
data scientist would fit first.

* ``logreg``: ``sign(x)·log1p(|x|)`` (the model's own squashing), standardised, then
  scikit-learn's ``LogisticRegressionCV`` (the regularisation chosen by 5-fold
  cross-validated AUC on the training set);
* ``gbdt``: scikit-learn's ``HistGradientBoostingClassifier`` on the raw features, with
  early stopping on a validation split of the training set.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegressionCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

logger = logging.getLogger(__name__)


def _squash(features: np.ndarray) -> np.ndarray:
    squashed: np.ndarray = np.sign(features) * np.log1p(np.abs(features))
    return squashed


def _two_classes(labels: np.ndarray) -> bool:
    return len(np.unique(labels)) == 2


def logistic_regression_scores(
    train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, *, seed: int
) -> np.ndarray:
    """Fit the ``logreg`` baseline and return P(class 1) for the test rows.

    Parameters
    ----------
    train_features, test_features : np.ndarray
        ``(n, features)`` raw feature values.
    train_labels : np.ndarray
        ``(n,)`` 0/1 labels.
    seed : int
        Seeds the cross-validation folds' solver.

    Returns
    -------
    np.ndarray
        ``(m,)`` probabilities; the training base rate when one class is missing.
    """
    if not _two_classes(train_labels):
        return np.full(len(test_features), float(np.mean(train_labels)))
    model = make_pipeline(
        FunctionTransformer(_squash),
        StandardScaler(),
        LogisticRegressionCV(
            Cs=10,
            cv=5,
            scoring="roc_auc",
            max_iter=2000,
            random_state=seed,
            use_legacy_attributes=False,
            l1_ratios=(0.0,),  # plain L2 (the 1.10 default; explicit, so no FutureWarning)
        ),
    )
    model.fit(train_features, train_labels)
    return np.asarray(model.predict_proba(test_features)[:, 1], dtype=np.float64)


def gradient_boosting_scores(
    train_features: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray, *, seed: int
) -> np.ndarray:
    """Fit the ``gbdt`` baseline and return P(class 1) for the test rows.

    Parameters
    ----------
    train_features, test_features : np.ndarray
        ``(n, features)`` raw feature values.
    train_labels : np.ndarray
        ``(n,)`` 0/1 labels.
    seed : int
        Seeds the validation split and the boosting.

    Returns
    -------
    np.ndarray
        ``(m,)`` probabilities; the training base rate when one class is missing.
    """
    if not _two_classes(train_labels):
        return np.full(len(test_features), float(np.mean(train_labels)))
    model = HistGradientBoostingClassifier(
        early_stopping=True, validation_fraction=0.2, random_state=seed
    )
    model.fit(train_features, train_labels)
    return np.asarray(model.predict_proba(test_features)[:, 1], dtype=np.float64)
