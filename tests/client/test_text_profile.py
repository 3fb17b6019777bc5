"""Text-derived profile signals: agent labels first, the gated model for the rest, incremental."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from client.learning.loop import train_round
from client.learning.source import ModelQuality
from client.profile import build_profiles
from client.scoring import record_model_quality
from client.store import EdgeStore, StoredEvent, StoredMessage
from client.text_profile import TEXT_MODEL, WINDOW_DAYS, text_signals_for
from models.learners import TextLearner
from models.text import DEFAULT_HEADS, TextModelConfig
from models.weights import get_weights, weights_to_bytes
from privacy.config import DPConfig
from simulations.labeled import masked_messages

from .edge_factories import NOW

DAY = 86_400.0
T = NOW.timestamp()
ANGRY = "ps_" + "a" * 64
QUIET = "ps_" + "b" * 64
CONFIG = TextModelConfig(vocabulary=3000, buckets=2048)


@pytest.fixture(scope="module")
def trained_weights() -> bytes:
    """A text model trained without noise on generated masked messages (all three heads)."""
    learner = TextLearner(CONFIG)
    texts, labels = masked_messages(1500, seed=11)
    targets = {
        h: np.array([names.index(x) for x in labels[h]]) for h, names in DEFAULT_HEADS.items()
    }
    model = learner.new_model(seed=0)
    train_round(model, learner.encode(texts, targets), learner=learner, seed=0,
                dp=DPConfig(enabled=False, batch_size=64, local_epochs=6,
                            learning_rate=2.0))  # fmt: skip
    return weights_to_bytes(get_weights(model))


def _message(n: int, subject: str, days_ago: float, text: str, **labels: str) -> StoredMessage:
    return StoredMessage(f"m{n}", subject, "desk", T - days_ago * DAY, "zh", text, {}, labels)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[EdgeStore]:
    with EdgeStore(tmp_path / "edge.sqlite") as s:
        s.add_events([StoredEvent("e1", ANGRY, "page_view", "web", T - DAY),
                      StoredEvent("e2", QUIET, "page_view", "web", T - DAY)])  # fmt: skip
        s.add_messages([
            _message(1, ANGRY, 20, "x", intent="complaint", emotion="negative", urgency="urgent"),
            _message(2, ANGRY, 10, "y", intent="return", emotion="neutral", urgency="urgent"),
            _message(3, ANGRY, WINDOW_DAYS + 5, "z", intent="purchase", emotion="negative"),
            _message(4, QUIET, 3, "在吗？请问<CN_MOBILE>这个号码绑定的订单什么时候发货？"),
        ])  # fmt: skip
        yield s


def _keep(store: EdgeStore, weights: bytes, *, version: str, auc: float = 0.9) -> None:
    store.save_global_model(TEXT_MODEL, server_round=3, weights=weights, version=version,
                            architecture=CONFIG.model_dump(mode="json"))  # fmt: skip
    record_model_quality(store, TEXT_MODEL, ModelQuality(
        server_round=3, head_aucs=dict.fromkeys(DEFAULT_HEADS, auc), num_examples=100))  # fmt: skip


def test_agent_labels_give_signals_without_any_model(store: EdgeStore) -> None:
    signals, report = text_signals_for(store, now=NOW)

    assert report.model_version is None and report.scored == 0
    assert set(signals) == {ANGRY}  # QUIET's message has no label and there is no model
    angry = signals[ANGRY]
    assert (angry.last_intent, angry.last_intent_source) == ("return", "agent")
    assert angry.negative_emotion_share == 0.5  # the message outside the window is ignored
    assert (angry.urgent_contacts, angry.messages) == (2, 2)


def test_the_model_scores_unlabelled_messages_once_per_version(
    store: EdgeStore, trained_weights: bytes
) -> None:
    _keep(store, trained_weights, version="text:v1")

    signals, report = text_signals_for(store, now=NOW)
    again, second = text_signals_for(store, now=NOW)
    _keep(store, trained_weights, version="text:v2")
    _, third = text_signals_for(store, now=NOW)

    assert report.model_version == "text:v1"
    assert report.published_heads == ("intent", "emotion", "urgency")
    assert report.scored == 3  # the window's messages; the old one is not scored
    assert (second.scored, third.scored) == (0, 3)  # nothing new; a new version rescores
    quiet = signals[QUIET]
    assert quiet.last_intent == "inquiry" and quiet.last_intent_source == "model"
    assert quiet.last_intent_confidence is not None and 0.3 < quiet.last_intent_confidence <= 1
    assert signals[ANGRY].last_intent_source == "agent"  # the agent's label wins
    assert again == signals
    scores = list(store.message_scores(since=T - 40 * DAY, until=T))
    assert {s.model_version for s in scores} == {"text:v2"}


def test_a_model_below_the_quality_gate_is_not_used(
    store: EdgeStore, trained_weights: bytes
) -> None:
    _keep(store, trained_weights, version="text:v1", auc=0.55)

    signals, report = text_signals_for(store, now=NOW)

    assert report.published_heads == () and report.scored == 0
    assert QUIET not in signals


def test_profiles_carry_catalogued_text_fields(store: EdgeStore, trained_weights: bytes) -> None:
    _keep(store, trained_weights, version="text:v1")
    signals, _ = text_signals_for(store, now=NOW)

    report = build_profiles(store=store, now=NOW, text=signals)

    fields = {(f.subject, f.field): f for f in store.profile_fields()}
    assert report.text_signals == 2
    assert fields[(ANGRY, "text.last_intent")].value == "return"
    assert fields[(ANGRY, "text.negative_emotion_share_30d")].value == 0.5
    assert fields[(ANGRY, "text.urgent_contacts_30d")].value == 2
    assert fields[(ANGRY, "text.messages_30d")].value == 2
    assert fields[(QUIET, "text.last_intent")].value == "inquiry"
    assert report.skipped_invalid == {}


def test_a_message_ingested_now_changes_the_fields_at_the_next_touched_run(
    store: EdgeStore,
) -> None:
    build_profiles(store=store, now=NOW, text=text_signals_for(store, now=NOW)[0])
    store.add_messages([_message(9, ANGRY, 0.5, "w", intent="purchase", urgency="low")])
    later = NOW + timedelta(hours=1)
    touched = store.touched_subjects(since=int(store.get_meta("profiles_built_seq") or 0))

    signals, _ = text_signals_for(store, now=later, subjects=touched)
    report = build_profiles(store=store, now=later, text=signals, subjects=touched)

    assert touched == [ANGRY] and report.subjects == 1
    fields = {f.field: f.value for f in store.profile_fields(subject=ANGRY)}
    assert fields["text.last_intent"] == "purchase"
    assert fields["text.messages_30d"] == 3
