"""The human-fallback threshold, fitted on held-out data with a stated error rate.

Selective prediction: among held-out decisions whose confidence is at least ``t``, count the
wrong ones. :func:`fit_threshold` picks the lowest ``t`` (so the most decisions stay
automated) whose one-sided 95% Clopper-Pearson upper bound on that error rate is within the
target. The probabilities need not be calibrated for the bound to hold: it is measured on the
decisions themselves. Below ``t`` the decision goes to a human.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import beta

from .policy import Fallback

#: At least this many held-out decisions above the threshold.
MIN_ACCEPTED = 30


def error_upper_bound(errors: int, n: int, level: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper bound on an error rate seen as ``errors`` of ``n``."""
    if n == 0:
        return 1.0
    if errors >= n:
        return 1.0
    return float(beta.ppf(level, errors + 1, n - errors))


def fit_threshold(
    confidences: Sequence[float],
    correct: Sequence[bool],
    *,
    target_error: float,
    min_accepted: int = MIN_ACCEPTED,
) -> Fallback:
    """Fit the lowest confidence threshold whose error bound meets ``target_error``.

    Parameters
    ----------
    confidences : Sequence[float]
        Held-out decisions' confidences.
    correct : Sequence[bool]
        Whether each held-out decision was right.
    target_error : float
        The error rate automated decisions may have (upper 95% bound).
    min_accepted : int
        The fewest held-out decisions the threshold may keep automated.

    Returns
    -------
    Fallback
        ``min_confidence`` with the measured ``error_rate`` and ``coverage`` (share kept
        automated) on ``fitted_on`` decisions. When no threshold meets the target the
        threshold is above every confidence (1.0 + tiny is not representable, so 1.0 with
        coverage of only certain decisions) and the measured figures say so.

    Raises
    ------
    ValueError
        If the inputs differ in length or are empty, or the target is not in (0, 1).
    """
    if len(confidences) != len(correct) or not confidences:
        raise ValueError("confidences and correct must be non-empty and of the same length")
    if not 0.0 < target_error < 1.0:
        raise ValueError("target_error must be between 0 and 1")
    conf = np.asarray(confidences, dtype=float)
    wrong = ~np.asarray(correct, dtype=bool)
    order = np.argsort(-conf, kind="stable")
    conf, wrong = conf[order], wrong[order]
    cumulative_wrong = np.cumsum(wrong)
    best: int | None = None
    for i in range(len(conf)):
        if i + 1 < len(conf) and conf[i + 1] == conf[i]:
            continue  # a threshold keeps every decision with the same confidence
        n = i + 1
        if n >= min_accepted and error_upper_bound(int(cumulative_wrong[i]), n) <= target_error:
            best = i
    if best is None:
        return Fallback(min_confidence=1.0, target_error=target_error, error_rate=None,
                        coverage=float(np.mean(conf >= 1.0)), fitted_on=len(conf))  # fmt: skip
    n = best + 1
    return Fallback(
        min_confidence=float(conf[best]),
        target_error=target_error,
        error_rate=float(cumulative_wrong[best] / n),
        coverage=n / len(conf),
        fitted_on=len(conf),
    )
