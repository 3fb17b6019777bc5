"""``score.escalation_risk``: a stand-in for the federated behaviour model's escalation head.

Deployed edges publish ``score.escalation_risk`` from the federated behaviour model
(``models.behaviour``: features at a cutoff → "needs a human escalation", i.e. a complaint,
in the next 14 days). Training that model with DP across edges takes minutes, so the
decision simulation fits the strongest simple baseline of that task instead: a logistic
regression on the same profile features, squashed with ``sign(x)·log1p(|x|)`` and
standardised, on the features 14 days before the end of the history and the complaints in
those 14 days. It is scored on the features at the end. Its held-out AUC is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from client.features import FEATURE_NAMES, SubjectFeatures

logger = logging.getLogger(__name__)

#: Share of customers held out to measure the stand-in's AUC.
HOLDOUT_SHARE = 0.2


def _matrix(features: Sequence[SubjectFeatures]) -> np.ndarray:
    return np.array([[f.values[name] for name in FEATURE_NAMES] for f in features], dtype=float)


def _squash(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.sign(x) * np.log1p(np.abs(x)), dtype=float)


@dataclass(frozen=True)
class RiskModel:
    """A fitted escalation-risk stand-in and how well it ranks held-out customers.

    Parameters
    ----------
    pipeline : Pipeline or None
        Squashing, scaling and logistic regression (``None`` when the labels had one class:
        the base rate is returned for everyone).
    base_rate : float
        Share of customers who complained in the label window.
    holdout_auc : float or None
        AUC on the held-out customers (``None`` when it cannot be measured).
    """

    pipeline: Pipeline | None
    base_rate: float
    holdout_auc: float | None

    def score(self, features: Sequence[SubjectFeatures]) -> np.ndarray:
        """Probability of a complaint in the next 14 days, one per profile."""
        if self.pipeline is None or not features:
            return np.full(len(features), self.base_rate)
        return np.asarray(self.pipeline.predict_proba(_matrix(features))[:, 1], dtype=float)


def fit_risk_model(
    features: Sequence[SubjectFeatures], escalated: Sequence[bool], *, seed: int
) -> RiskModel:
    """Fit the stand-in on features at the cutoff and complaints after it.

    Parameters
    ----------
    features : Sequence[SubjectFeatures]
        Each customer's features at the cutoff.
    escalated : Sequence[bool]
        Whether each complained in the label window.
    seed : int
        Seed of the held-out split.

    Returns
    -------
    RiskModel
        The fitted model with its held-out AUC.

    Raises
    ------
    ValueError
        If the inputs differ in length.
    """
    if len(features) != len(escalated):
        raise ValueError("features and escalated must have the same length")
    y = np.asarray(escalated, dtype=int)
    base = float(y.mean()) if len(y) else 0.0
    if len(set(y.tolist())) < 2:
        return RiskModel(None, base, None)
    x = _matrix(features)
    rng = np.random.default_rng(seed)
    held = rng.random(len(y)) < HOLDOUT_SHARE
    pipeline = make_pipeline(
        FunctionTransformer(_squash), StandardScaler(), LogisticRegression(max_iter=2000)
    )
    train = ~held
    if len(set(y[train].tolist())) < 2:
        return RiskModel(None, base, None)
    pipeline.fit(x[train], y[train])
    auc = None
    if held.any() and len(set(y[held].tolist())) == 2:
        auc = float(roc_auc_score(y[held], pipeline.predict_proba(x[held])[:, 1]))
    logger.info("escalation-risk stand-in: base rate %.3f, held-out AUC %s", base, auc)
    return RiskModel(pipeline, base, auc)
