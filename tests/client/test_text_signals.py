"""The edge's in-process message scoring: labels, probabilities, the model version."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from client.learning.loop import train_round
from client.text_signals import MessageScorer
from models.learners import TextLearner
from models.text import EMOTIONS, INTENTS, URGENCIES, TextModelConfig
from privacy.config import DPConfig
from simulations.labeled import masked_messages

HEADS = {"intent": len(INTENTS), "emotion": len(EMOTIONS), "urgency": len(URGENCIES)}


@pytest.fixture(scope="module")
def trained() -> tuple[MessageScorer, list[str], dict[str, list[str]]]:
    """A text model trained without noise on 1,500 generated masked messages."""
    learner = TextLearner(TextModelConfig(vocabulary=4000, buckets=4096, heads=HEADS))
    texts, labels = masked_messages(1800, seed=3)
    targets = {
        "intent": np.array([INTENTS.index(x) for x in labels["intent"][:1500]]),
        "emotion": np.array([EMOTIONS.index(x) for x in labels["emotion"][:1500]]),
        "urgency": np.array([URGENCIES.index(x) for x in labels["urgency"][:1500]]),
    }
    model = learner.new_model(seed=0)
    train_round(model, learner.encode(texts[:1500], targets), learner=learner, seed=0,
                dp=DPConfig(enabled=False, batch_size=64, local_epochs=8,
                            learning_rate=2.0))  # fmt: skip
    scorer = MessageScorer(model, model_version="test-1")  # type: ignore[arg-type]
    return scorer, texts[1500:], {k: v[1500:] for k, v in labels.items()}


def test_each_head_answers_a_label_with_probabilities_that_sum_to_one(
    trained: tuple[MessageScorer, list[str], dict[str, list[str]]],
) -> None:
    scorer, texts, _ = trained

    signals = scorer.score(texts[0])

    assert signals.model_version == "test-1"
    assert set(signals.heads) == {"intent", "emotion", "urgency"}
    for head, names in (("intent", INTENTS), ("emotion", EMOTIONS), ("urgency", URGENCIES)):
        score = signals.heads[head]
        assert set(score.probabilities) == set(names)
        assert math.isclose(sum(score.probabilities.values()), 1.0, rel_tol=1e-6)
        assert score.probability == max(score.probabilities.values())
        assert score.probabilities[score.label] == score.probability


def test_scores_carry_the_signal_on_held_out_messages(
    trained: tuple[MessageScorer, list[str], dict[str, list[str]]],
) -> None:
    scorer, texts, labels = trained

    signals = scorer.score_many(texts)

    hits = [s.heads["intent"].label == y for s, y in zip(signals, labels["intent"], strict=True)]
    intent = np.mean(hits)
    majority = max(labels["intent"].count(x) for x in INTENTS) / len(texts)
    assert intent > majority + 0.3  # far above guessing the commonest intent
    urgent = [y == "urgent" for y in labels["urgency"]]
    scores = [s.heads["urgency"].probabilities["urgent"] for s in signals]
    assert roc_auc_score(urgent, scores) > 0.8  # urgency is read from the words and tone


def test_one_by_one_equals_one_pass(
    trained: tuple[MessageScorer, list[str], dict[str, list[str]]],
) -> None:
    scorer, texts, _ = trained

    single = [scorer.score(t) for t in texts[:20]]
    batched = scorer.score_many(texts[:20])

    for one, many in zip(single, batched, strict=True):
        for head, score in one.heads.items():
            assert score.label == many.heads[head].label
            for name, p in score.probabilities.items():  # padding changes float sums only
                assert p == pytest.approx(many.heads[head].probabilities[name], abs=1e-5)


def test_label_names_must_fit_every_head(
    trained: tuple[MessageScorer, list[str], dict[str, list[str]]],
) -> None:
    scorer, _, _ = trained
    with pytest.raises(ValueError, match="emotion"):
        MessageScorer(scorer.model, model_version="x",
                      labels={"intent": INTENTS, "emotion": ("negative", "positive"),
                              "urgency": URGENCIES})  # fmt: skip
