"""Score subjects with the latest global behaviour model received from the server.

Scoring runs entirely on the edge over each subject's most recent events. A score is only
produced when the model has shown, on this edge's own held-out subjects, that it ranks
better than chance by a margin (``min_auc``): a poorly trained model's output is not
published as a profile field. Which scores may be stored or uploaded is then decided by the
caller (``client.profile``) under the subject's consent.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

from models import BehaviourGRU, SequenceSpec

from .store import EdgeStore

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


@dataclass(frozen=True, slots=True)
class ModelQuality:
    """How the latest global model did on this edge's held-out, consented subjects."""

    server_round: int
    purchase_auc: float
    escalation_auc: float
    num_examples: int


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
        return None


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
    passed = set()
    if quality.purchase_auc >= min_auc:
        passed.add(PURCHASE_PROPENSITY)
    if quality.escalation_auc >= min_auc:
        passed.add(ESCALATION_RISK)
    return passed


def score_subjects(
    store: EdgeStore,
    *,
    model: str = "behaviour",
    spec: SequenceSpec | None = None,
    min_auc: float | None = MIN_AUC,
) -> dict[str, dict[str, float]]:
    """Return purchase propensity and escalation risk (0..1) for every subject with events.

    Parameters
    ----------
    store : EdgeStore
        The edge's store holding the latest global model (``store.load_global_model``).
    model : str
        Name of the stored global model.
    spec : SequenceSpec or None
        History length used for scoring; the default spec when ``None``.
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
        net = BehaviourGRU.from_bytes(data)
    except ValueError:
        logger.warning(
            "stored global model %s (round %d) is unreadable; no scores", model, server_round
        )
        return {}
    spec = spec or SequenceSpec()
    subjects: list[str] = []
    tokens: list[list[int]] = []
    for subject, events in store.events_by_subject().items():
        encoded = spec.encode(events)
        if encoded:
            subjects.append(subject)
            tokens.append(encoded)
    purchase: list[float] = []
    escalation: list[float] = []
    for start in range(0, len(tokens), _CHUNK):
        p, q = net.score(tokens[start : start + _CHUNK], max_len=spec.max_len)
        purchase.extend(p.tolist())
        escalation.extend(q.tolist())
    logger.info(
        "scored %d subjects with global model %s (round %d)", len(subjects), model, server_round
    )
    return {
        subject: {
            name: value
            for name, value in ((PURCHASE_PROPENSITY, float(p)), (ESCALATION_RISK, float(q)))
            if name in publish
        }
        for subject, p, q in zip(subjects, purchase, escalation, strict=True)
    }
