"""The human fallback, fitted on held-out contacts with a stated error rate.

On a calibration set of contacts (other working days than the evaluation, same population)
the rules + models arm decides each contact twice, with the human fallback switched off:
once from the text model's signals and once from the message's true labels. A model-driven
decision is *correct* when it takes the same action (queue, skill, priority, entry) as the
same rules on the true labels. ``models.decisions.fit_threshold`` then picks the lowest
confidence threshold whose one-sided 95% Clopper–Pearson bound on the error of the
decisions kept automated is within the target; below it a human decides.

The threshold governs only decisions whose deciding rule is model-driven (what
``DecisionPolicy.decide`` gates), so those are the decisions it is fitted on. A model error
that makes no rule fire (the default queue) is outside the gate; the share of all
calibration contacts decided as on the true labels is reported beside the fit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.decisions import Arm, DecisionPolicy, Fallback, fit_threshold

from .contacts import Contact
from .population import Customer
from .routers import PolicyRouter, with_fallback
from .text_signals import ScoredMessage

#: Thresholds at which the calibration curve is reported.
CURVE_POINTS = 41
#: Other targets the same held-out decisions are fitted to, for the report.
OTHER_TARGETS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.2)


@dataclass(frozen=True)
class Calibration:
    """The fitted fallback and what it was fitted on.

    Parameters
    ----------
    fallback : Fallback
        Threshold, measured error rate and coverage (``fit_threshold``'s answer).
    contacts : int
        Calibration contacts.
    gated : int
        Of them, decisions whose deciding rule is model-driven (the fit's sample).
    gated_error : float
        Error rate of those decisions with no fallback at all.
    agreement : float
        Share of all calibration contacts routed as on the true labels (no fallback).
    curve : tuple[tuple[float, float, float], ...]
        ``(threshold, coverage, error rate)`` over a grid of thresholds.
    other_targets : tuple[Fallback, ...]
        The fit at each of ``OTHER_TARGETS`` on the same decisions (what a stricter or
        looser target would cost).
    """

    fallback: Fallback
    contacts: int
    gated: int
    gated_error: float
    agreement: float
    curve: tuple[tuple[float, float, float], ...]
    other_targets: tuple[Fallback, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """Plain JSON values for ``metrics.json``."""
        return {
            "min_confidence": self.fallback.min_confidence,
            "target_error": self.fallback.target_error,
            "error_rate": self.fallback.error_rate,
            "coverage": self.fallback.coverage,
            "fitted_on": self.fallback.fitted_on,
            "contacts": self.contacts,
            "gated_decisions": self.gated,
            "gated_error_without_fallback": self.gated_error,
            "agreement_with_true_labels": self.agreement,
            "other_targets": [
                {
                    "target_error": f.target_error,
                    "min_confidence": f.min_confidence,
                    "error_rate": f.error_rate,
                    "coverage": f.coverage,
                }
                for f in self.other_targets
            ],
            "curve": [{"threshold": t, "coverage": c, "error_rate": e} for t, c, e in self.curve],
        }


def _curve(confidence: np.ndarray, wrong: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    points = []
    for t in np.linspace(0.0, 1.0, CURVE_POINTS):
        kept = confidence >= t
        error = float(wrong[kept].mean()) if kept.any() else 0.0
        points.append((round(float(t), 4), round(float(kept.mean()), 4), round(error, 4)))
    return tuple(points)


def calibrate_fallback(
    policy: DecisionPolicy,
    *,
    arm: Arm,
    contacts: Sequence[Contact],
    customers: Sequence[Customer],
    scored: Mapping[str, ScoredMessage],
    target_error: float,
) -> Calibration:
    """Fit the human-fallback threshold of ``arm`` on held-out ``contacts``.

    Parameters
    ----------
    policy : DecisionPolicy
        The policy whose rules are calibrated (its own threshold is ignored).
    arm : Arm
        The arm whose decisions are calibrated (rules + models).
    contacts : Sequence[Contact]
        Calibration contacts, disjoint from the evaluation contacts.
    customers : Sequence[Customer]
        The population.
    scored : Mapping[str, ScoredMessage]
        The text model's signals of the calibration contacts.
    target_error : float
        Error rate the automated decisions may have (upper 95% bound).

    Returns
    -------
    Calibration
        The fitted fallback and the figures behind it.

    Raises
    ------
    ValueError
        If there are no contacts, or no model-driven decision among them.
    """
    if not contacts:
        raise ValueError("calibration needs contacts")
    raw = with_fallback(policy, Fallback(min_confidence=0.0))
    model = PolicyRouter("model", raw, arm=arm, customers=customers, signals="model", scored=scored)
    truth = PolicyRouter("truth", raw, arm=arm, customers=customers, signals="truth")
    driven = {r.rule.id for r in policy.rules if r.model_driven}
    confidence: list[float] = []
    correct: list[bool] = []
    agree = 0
    for contact in contacts:
        mine, right = model.route(contact), truth.route(contact)
        same = mine.action == right.action
        agree += same
        if mine.rule in driven:
            confidence.append(mine.confidence)
            correct.append(same)
    if not confidence:
        raise ValueError("no calibration contact got a model-driven decision")
    fallback = fit_threshold(confidence, correct, target_error=target_error)
    wrong = ~np.asarray(correct, dtype=bool)
    return Calibration(
        fallback=fallback,
        contacts=len(contacts),
        gated=len(confidence),
        gated_error=round(float(wrong.mean()), 4),
        agreement=round(agree / len(contacts), 4),
        curve=_curve(np.asarray(confidence, dtype=float), wrong),
        other_targets=tuple(
            fit_threshold(confidence, correct, target_error=t) for t in OTHER_TARGETS
        ),
    )
