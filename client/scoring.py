"""Score subjects with the latest global behaviour model received from the server.

Scoring runs entirely on the edge: each subject's features as of ``now`` (the same
``client.learning.behaviour`` code the model was trained on, with ``now`` as the cutoff) go
through the model, which predicts the next label window. A score is only produced when the
model has shown, on this edge's own held-out subjects, that it ranks better than chance by
a margin (``min_auc``): a poorly trained model's output is not published as a profile
field. Which scores may be stored or uploaded is then decided by the caller
(``client.profile``) under the subject's consent.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from datetime import datetime

from models.behaviour import BEHAVIOUR_FEATURES, BehaviourModel, batch_examples

from .learning.behaviour import examples_at
from .learning.source import ModelQuality
from .learning.store_source import MAX_TOKENS
from .store import EdgeStore, StoredMessage

logger = logging.getLogger(__name__)

#: Score names returned per subject.
PURCHASE_PROPENSITY = "purchase_propensity"
ESCALATION_RISK = "escalation_risk"
#: Subjects scored per forward pass (bounds memory on large edges).
_CHUNK = 512
#: Default quality gate: held-out AUC a head needs before its scores are published.
MIN_AUC = 0.6
#: Fewest held-out examples an AUC must rest on to be trusted.
MIN_EVAL_EXAMPLES = 30


def _quality_key(model: str) -> str:
    return f"model_quality.{model}"


def record_model_quality(store: EdgeStore, model: str, quality: ModelQuality) -> None:
    """Keep the held-out evaluation of the latest global model in the store's metadata."""
    store.set_meta(_quality_key(model), json.dumps(asdict(quality), sort_keys=True))


def model_quality(store: EdgeStore, model: str = "behaviour") -> ModelQuality | None:
    """Return the recorded held-out evaluation of the latest global model, if any."""
    raw = store.get_meta(_quality_key(model))
    if raw is None:
        return None
    try:
        return ModelQuality(**json.loads(raw))
    except (TypeError, ValueError):
        return None  # unreadable or an older layout: as if never evaluated


def publishable_scores(quality: ModelQuality | None, *, min_auc: float | None) -> set[str]:
    """Return the score names whose head passed the quality gate (all when ``min_auc`` is None).

    Parameters
    ----------
    quality : ModelQuality or None
        The latest held-out evaluation; ``None`` when the model was never evaluated here.
    min_auc : float or None
        Required held-out AUC; ``None`` disables the gate.

    Returns
    -------
    set[str]
        Subset of ``{"purchase_propensity", "escalation_risk"}``.
    """
    if min_auc is None:
        return {PURCHASE_PROPENSITY, ESCALATION_RISK}
    if quality is None or quality.num_examples < MIN_EVAL_EXAMPLES:
        return set()
    heads = {"purchase": PURCHASE_PROPENSITY, "escalation": ESCALATION_RISK}
    return {score for head, score in heads.items() if quality.head_aucs.get(head, 0.0) >= min_auc}


def score_subjects(
    store: EdgeStore,
    *,
    now: datetime,
    model: str = "behaviour",
    min_auc: float | None = MIN_AUC,
) -> dict[str, dict[str, float]]:
    """Return purchase propensity and escalation risk (0..1) for every subject with history.

    Parameters
    ----------
    store : EdgeStore
        The edge's store holding the latest global model (``store.load_global_model``).
    now : datetime
        The moment the scores describe: features from everything up to ``now``, a
        prediction for the label window after it (timezone-aware).
    model : str
        Name of the stored global model.
    min_auc : float or None
        Quality gate: a head's scores are produced only if its held-out AUC on this edge
        (recorded at the last evaluate round, on at least ``MIN_EVAL_EXAMPLES`` subjects)
        reaches this value. ``None`` disables the gate.

    Returns
    -------
    dict[str, dict[str, float]]
        ``{pseudonym: {score name: value}}`` holding the scores that passed the gate;
        ``{}`` when none passed, or the edge has no global model yet or it cannot be read.
    """
    saved = store.load_global_model(model)
    if saved is None:
        return {}
    publish = publishable_scores(model_quality(store, model), min_auc=min_auc)
    if not publish:
        logger.info("global model %s has not passed the quality gate; no scores", model)
        return {}
    server_round, data = saved
    try:
        net = BehaviourModel.from_bytes(data)
    except ValueError:
        logger.warning(
            "stored global model %s (round %d) is unreadable; no scores", model, server_round
        )
        return {}
    if net.config.num_features != len(BEHAVIOUR_FEATURES):
        logger.warning("stored global model %s has another feature layout; no scores", model)
        return {}
    messages: dict[str, list[StoredMessage]] = {}
    for message in store.iter_messages():
        messages.setdefault(message.subject, []).append(message)
    max_len = MAX_TOKENS if net.config.sequence else 0
    examples = examples_at(
        store.events_by_subject(),
        cutoff=now,
        window_days=1.0,
        messages_by_subject=messages,
        max_len=max_len,
    )
    out: dict[str, dict[str, float]] = {}
    for start in range(0, len(examples), _CHUNK):
        chunk = examples[start : start + _CHUNK]
        batch = batch_examples(chunk, num_features=len(BEHAVIOUR_FEATURES), max_len=max(max_len, 1))
        purchase, escalation = net.score(batch)
        for example, p, q in zip(chunk, purchase, escalation, strict=True):
            values = ((PURCHASE_PROPENSITY, float(p)), (ESCALATION_RISK, float(q)))
            out[example.subject] = {name: v for name, v in values if name in publish}
    logger.info("scored %d subjects with global model %s (round %d)", len(out), model, server_round)
    return out
