"""Simulated edges: the ClientApp's handlers on in-memory partitions (``PartitionSource``)."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import pytest
from flwr.app import Context, Message
from torch.utils.data import TensorDataset

from client.app import ERROR_BUDGET_EXHAUSTED, ERROR_NO_EDGE_DATA, build_client_app
from client.learning.memory_source import LEDGER_STATE, PartitionSource
from models import METRICS_KEY, TextLearner, TextModelConfig, get_weights
from privacy import compute_epsilon

from ..training_factories import flower_context, flower_message, train_content

LEARNER = TextLearner(TextModelConfig(vocabulary=50, heads={"label": 2}))
TEXTS = ["很好，很满意", "太差了，失望", "不错，推荐", "质量差，退货"] * 10


def _partitions() -> list[TensorDataset]:
    labels = np.array([1, 0, 1, 0] * 10)
    data = LEARNER.encode(TEXTS, {"label": labels})
    return [
        TensorDataset(*(t[:20] for t in data.tensors)),
        TensorDataset(*(t[20:] for t in data.tensors)),
    ]


def _send(app: Any, context: Context, *, server_round: int = 1) -> Message:
    weights = get_weights(LEARNER.new_model(0))
    return app(flower_message(train_content(weights, server_round=server_round), "train"), context)


OVERRIDES = {"task": "text", "text-vocabulary": 50, "batch-size": 5, "accountant": "rdp"}


def test_ledger_composes_across_rounds_in_context_state() -> None:
    app = build_client_app(
        OVERRIDES, source=PartitionSource(learner=LEARNER, partitions=_partitions())
    )
    context = flower_context(node_config={"partition-id": 1})

    first = _send(app, context, server_round=1)
    second = _send(app, context, server_round=2)

    eps = [float(r.content.metric_records[METRICS_KEY]["epsilon"]) for r in (first, second)]
    q = 1 / 4  # 20 examples, batch 5
    assert eps[0] == pytest.approx(compute_epsilon([(1.0, q, 4)], delta=1e-5, accountant="rdp"))
    assert eps[1] == pytest.approx(compute_epsilon([(1.0, q, 4)] * 2, delta=1e-5, accountant="rdp"))
    assert LEDGER_STATE in context.state.config_records


def test_budget_refuses_the_round_that_would_exceed_it() -> None:
    one = compute_epsilon([(1.0, 0.25, 4)], delta=1e-5, accountant="rdp")
    two = compute_epsilon([(1.0, 0.25, 4)] * 2, delta=1e-5, accountant="rdp")
    app = build_client_app(
        OVERRIDES | {"max-epsilon": (one + two) / 2},
        source=PartitionSource(learner=LEARNER, partitions=_partitions()),
    )
    context = flower_context(node_config={"partition-id": 0})

    replies = [_send(app, context, server_round=r) for r in (1, 2, 3)]

    assert not replies[0].has_error()
    assert float(replies[0].content.metric_records[METRICS_KEY]["budget-exhausted"]) == 1.0
    assert [r.error.code for r in replies[1:]] == [ERROR_BUDGET_EXHAUSTED] * 2


def test_unknown_partition_is_an_error_reply_saying_why() -> None:
    app = build_client_app(
        OVERRIDES, source=PartitionSource(learner=LEARNER, partitions=_partitions())
    )

    reply = _send(app, flower_context(node_config={"partition-id": 9}))

    assert reply.has_error() and reply.error.code == ERROR_NO_EDGE_DATA
    assert "partition-id 9" in reply.error.reason


def test_seeded_noise_repeats_exactly_and_default_noise_does_not() -> None:
    def weights_after(seeded: bool) -> np.ndarray:
        source = PartitionSource(learner=LEARNER, partitions=_partitions(), seeded_noise=seeded)
        app = build_client_app(OVERRIDES, source=source)
        with pytest.warns(UserWarning) if seeded else contextlib.nullcontext():
            reply = _send(app, flower_context(node_config={"partition-id": 0}))
        return reply.content.array_records["arrays"]["heads.label.weight"].numpy()

    assert np.array_equal(weights_after(True), weights_after(True))
    assert not np.array_equal(weights_after(False), weights_after(False))


def test_empty_partitions_and_mismatched_holdouts_are_refused() -> None:
    parts = _partitions()
    empty = TensorDataset(*(t[:0] for t in parts[0].tensors))

    with pytest.raises(ValueError, match="at least one example"):
        PartitionSource(learner=LEARNER, partitions=[parts[0], empty])
    with pytest.raises(ValueError, match="one dataset per partition"):
        PartitionSource(learner=LEARNER, partitions=parts, holdouts=[parts[0]])
