"""Fit the human-fallback threshold on this edge's held-out labelled messages.

For each held-out message (subjects the text model never trained on, with model-training
consent and an agent's label on every head the policy's live-signal rules read), the policy
decides twice with the fallback off: once from the edge's text model's signals and once from
the agent's labels. A model-driven decision is *correct* when both take the same action.
``models.decisions.fit_threshold`` then picks the lowest confidence threshold whose one-sided
95% Clopper–Pearson bound on the error of the decisions kept automated meets the target;
the policy file is written back with that threshold, its measured error rate, coverage and
sample size, which the server's console shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from models import RunConfig
from models.decisions import DecisionPolicy, Fallback, Signals, fit_threshold

from ..errors import LearningDataError
from ..learning.text import text_split
from ..store import EdgeStore
from ..text_profile import load_scorer

#: The purpose whose live-signal decisions the threshold gates.
PURPOSE = "service_routing"


@dataclass(frozen=True)
class CalibrationResult:
    """The fitted fallback and the sample it rests on."""

    fallback: Fallback
    messages: int
    gated: int
    gated_error: float

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready data."""
        return {"fallback": self.fallback.model_dump(), "messages": self.messages,
                "gated": self.gated, "gated_error": self.gated_error}  # fmt: skip


def gated_decisions(
    policy: DecisionPolicy,
    predicted: Sequence[Signals],
    truth: Sequence[dict[str, str]],
) -> tuple[list[float], list[bool]]:
    """Confidence and correctness of each model-driven decision (fallback off).

    Parameters
    ----------
    policy : DecisionPolicy
        The policy to calibrate.
    predicted : Sequence[Signals]
        The model's labels and probabilities per message.
    truth : Sequence[dict[str, str]]
        The agent's labels per message.
    """
    open_policy = DecisionPolicy(
        policy.policy.model_copy(update={"fallback": Fallback(min_confidence=0.0)}),
        policy.rules,
    )
    model_driven = {r.rule.id for r in policy.rules if r.model_driven}
    confidences: list[float] = []
    correct: list[bool] = []
    for signals, labels in zip(predicted, truth, strict=True):
        guess = open_policy.decide(PURPOSE, {}, signals)
        if guess.decided_by not in model_driven:
            continue
        known = Signals(labels, dict.fromkeys(labels, 1.0), signals.channel)
        right = open_policy.decide(PURPOSE, {}, known)
        confidences.append(guess.confidence)
        correct.append(guess.action == right.action)
    return confidences, correct


def calibrate_on_edge(
    store: EdgeStore, policy: DecisionPolicy, *, target_error: float, at: datetime
) -> CalibrationResult:
    """Fit the fallback on the edge's held-out labelled messages.

    Raises
    ------
    LearningDataError
        If the edge holds no text model or too few fully labelled held-out messages.
    """
    scorer = load_scorer(store)
    if scorer is None:
        raise LearningDataError(
            "this edge holds no text model; run 'fedprofile edge fetch-model --model text'"
        )
    heads = sorted({h for r in policy.rules if r.rule.purpose == PURPOSE for h in r.heads})
    held = [
        m for m in text_split(store, config=RunConfig(), at=at).holdout
        if all(h in m.labels for h in heads)
    ]  # fmt: skip
    if len(held) < 30:
        raise LearningDataError(
            f"{len(held)} held-out messages carry agent labels for {', '.join(heads)}; "
            "at least 30 are needed to state an error rate"
        )
    scored = scorer.score_many([m.masked_text for m in held])
    predicted = [
        Signals({h: s.heads[h].label for h in heads}, {h: s.heads[h].probability for h in heads},
                m.channel)
        for m, s in zip(held, scored, strict=True)
    ]  # fmt: skip
    truth = [{h: m.labels[h] for h in heads} for m in held]
    confidences, correct = gated_decisions(policy, predicted, truth)
    if len(confidences) < 30:
        raise LearningDataError(
            f"only {len(confidences)} held-out messages reach a live-signal rule; need 30"
        )
    fallback = fit_threshold(confidences, correct, target_error=target_error)
    error = 1.0 - sum(correct) / len(correct)
    return CalibrationResult(fallback, len(held), len(confidences), error)


def write_calibrated_policy(source: Path, fallback: Fallback, out: Path) -> None:
    """Write ``source`` with its ``fallback`` replaced to ``out`` (YAML; comments dropped)."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["fallback"] = fallback.model_dump(exclude_none=True)
    out.write_text(
        "# Calibrated by fedprofile decide calibrate; see docs/decisions.md\n"
        + yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
