"""Fitting the human-fallback threshold on an edge's held-out labelled messages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from client.decisions.calibrate import (
    calibrate_on_edge,
    gated_decisions,
    write_calibrated_policy,
)
from client.errors import LearningDataError
from client.learning.loop import train_round
from client.store import EdgeStore, StoredConsent, StoredMessage
from client.text_profile import TEXT_MODEL
from consent import (
    ConsentEvent,
    ConsentStatus,
    Purpose,
    load_default_catalogue,
    load_default_purposes,
)
from models.decisions import DEFAULT_POLICY_PATH, DecisionPolicy, Signals
from models.learners import TextLearner
from models.text import DEFAULT_HEADS, TextModelConfig
from models.weights import get_weights, weights_to_bytes
from privacy.config import DPConfig
from simulations.labeled import masked_messages

from ..edge_factories import NOW

POLICY = DecisionPolicy.load(
    DEFAULT_POLICY_PATH,
    field_purposes={f.name: [p.value for p in f.purposes] for f in load_default_catalogue()},
    purposes=[p.name.value for p in load_default_purposes()],
)
CONFIG = TextModelConfig(vocabulary=3000, buckets=2048)


def test_a_decision_is_correct_when_the_truth_takes_the_same_action() -> None:
    calm = {"intent": "inquiry", "emotion": "neutral", "urgency": "normal"}
    angry = {"intent": "complaint", "emotion": "negative", "urgency": "urgent"}
    predicted = [Signals(calm, dict.fromkeys(calm, 0.9)), Signals(calm, dict.fromkeys(calm, 0.6))]
    confidences, correct = gated_decisions(POLICY, predicted, [calm, angry])
    assert confidences == [0.9, 0.6] and correct == [True, False]


def test_calibration_on_an_edge_writes_a_measured_threshold(tmp_path: Path) -> None:
    texts, labels = masked_messages(1600, seed=5)
    learner = TextLearner(CONFIG)
    targets = {h: np.array([n.index(x) for x in labels[h]]) for h, n in DEFAULT_HEADS.items()}
    model = learner.new_model(seed=0)
    dp = DPConfig(enabled=False, batch_size=64, local_epochs=4, learning_rate=2.0)
    first = learner.encode(texts[:1000], {h: t[:1000] for h, t in targets.items()})
    train_round(model, first, learner=learner, seed=0, dp=dp)
    with EdgeStore(tmp_path / "edge.sqlite") as store:
        subjects = [f"ps_{i:064x}" for i in range(600)]
        store.add_messages(
            StoredMessage(f"m{i}", subjects[i - 1000], "desk", NOW.timestamp() - 3600, "zh",
                          texts[i], {}, {h: labels[h][i] for h in DEFAULT_HEADS})
            for i in range(1000, 1600)
        )  # fmt: skip
        with pytest.raises(LearningDataError, match="no text model"):
            calibrate_on_edge(store, POLICY, target_error=0.1, at=NOW)
        store.save_global_model(TEXT_MODEL, server_round=1,
                                weights=weights_to_bytes(get_weights(model)), version="text:v1",
                                architecture=CONFIG.model_dump(mode="json"))  # fmt: skip
        with pytest.raises(LearningDataError, match="held-out"):  # nobody consented yet
            calibrate_on_edge(store, POLICY, target_error=0.1, at=NOW)
        store.add_consents(
            StoredConsent(f"c{i}", ConsentEvent(
                subject=s, purpose=Purpose.MODEL_TRAINING, status=ConsentStatus.GRANTED,
                occurred_at=NOW - timedelta(days=2), notice_version="v1", channel="desk"))
            for i, s in enumerate(subjects)
        )  # fmt: skip
        result = calibrate_on_edge(store, POLICY, target_error=0.1, at=NOW)
    fb = result.fallback
    assert result.gated >= 30 and fb.fitted_on == result.gated
    assert fb.error_rate is None or fb.error_rate <= 0.1
    out = tmp_path / "calibrated.yaml"
    write_calibrated_policy(DEFAULT_POLICY_PATH, fb, out)
    written = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert written["fallback"]["min_confidence"] == fb.min_confidence
    assert written["fallback"]["fitted_on"] == result.gated
    assert len(written["rules"]) == len(POLICY.rules)
