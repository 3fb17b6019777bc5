from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp import Grid
from flwr.serverapp.exception import PrivacyBudgetExhausted
from flwr.serverapp.strategy import FedAvg, Strategy

from models import ERROR_BUDGET_EXHAUSTED
from server.fl.strategy import (
    ProfileStrategy,
    aggregate_metrics,
    edge_rows,
)

from ...client.training_factories import flower_message


def _content(**metrics: float) -> RecordDict:
    return RecordDict({"metrics": MetricRecord(dict(metrics))})


def test_aggregate_metrics_rules_per_key() -> None:
    replies = [
        _content(
            **{
                "num-examples": 10,
                "train-loss": 1.0,
                "epsilon": 2.0,
                "delta": 1e-5,
                "subjects-included": 12,
                "subjects-excluded": 1,
                "budget-exhausted": 0.0,
            }
        ),
        _content(
            **{
                "num-examples": 30,
                "train-loss": 3.0,
                "epsilon": 5.0,
                "delta": 1e-6,
                "subjects-included": 40,
                "subjects-excluded": 4,
                "budget-exhausted": 1.0,
            }
        ),
    ]

    out = dict(aggregate_metrics(replies, "num-examples"))

    assert out == {
        "num-examples": 40.0,
        "train-loss": pytest.approx(2.5),
        "epsilon": 5.0,
        "delta": 1e-5,
        "subjects-included": 52.0,
        "subjects-excluded": 5.0,
        "budget-exhausted": 1.0,
    }


def test_aggregate_metrics_zero_weights_fall_back_to_plain_mean() -> None:
    replies = [
        _content(**{"num-examples": 0, "eval-auc": 0.4}),
        _content(**{"num-examples": 0, "eval-auc": 0.8}),
    ]

    out = dict(aggregate_metrics(replies, "num-examples"))

    assert out == {"num-examples": 0.0, "eval-auc": pytest.approx(0.6)}


def test_aggregate_metrics_no_replies_is_empty() -> None:
    assert dict(aggregate_metrics([], "num-examples")) == {}


def test_edge_rows_from_replies_and_errors() -> None:
    request = flower_message(RecordDict(), "train")
    ok = Message(
        RecordDict(
            {
                "metrics": MetricRecord({"num-examples": 3, "epsilon": 1.5}),
                "edge": ConfigRecord({"channel": "sms", "edge": "sms-1"}),
            }
        ),
        reply_to=request,
    )
    refused = Message(
        Error(ERROR_BUDGET_EXHAUSTED, "privacy budget ... exceeded"), reply_to=request
    )

    rows = edge_rows([ok, refused])

    assert rows == [
        {"edge": "sms-1", "channel": "sms", "num-examples": 3.0, "epsilon": 1.5},
        {
            "edge": None,
            "channel": None,
            "error_code": ERROR_BUDGET_EXHAUSTED,
            "reason": "privacy budget ... exceeded",
        },
    ]


def test_aggregate_metrics_means_weighted_by_examples_trained_when_present() -> None:
    replies = [
        _content(**{"num-examples": 1, "examples-trained": 10, "train-loss": 1.0}),
        _content(**{"num-examples": 1, "examples-trained": 30, "train-loss": 3.0}),
    ]

    out = dict(aggregate_metrics(replies, "num-examples"))

    assert out == {"num-examples": 2.0, "examples-trained": 40.0, "train-loss": pytest.approx(2.5)}


def _record(values: dict[str, list[float]]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.asarray(v, dtype=np.float32)) for k, v in values.items()})


class FakeInner(Strategy):
    """Returns fixed aggregates (stands in for FedAvg or the DP wrapper's noised average)."""

    def __init__(self, outputs: list[ArrayRecord | None]) -> None:
        self.outputs = outputs
        self.configured = 0

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.configured += 1
        return []

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        arrays = self.outputs.pop(0)
        return arrays, None if arrays is None else MetricRecord({"num-examples": 1})

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return []

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        return None

    def summary(self) -> None:
        pass


def _train_round(
    strategy: ProfileStrategy, server_round: int, global_w: list[float], replies: list[Message]
) -> Any:
    strategy.configure_train(server_round, _record({"w": global_w}), ConfigRecord(), None)  # type: ignore[arg-type]
    return strategy.aggregate_train(server_round, replies)


def _ok(edge: str = "web-1") -> Message:
    request = flower_message(RecordDict(), "train")
    content = RecordDict(
        {
            "metrics": MetricRecord({"num-examples": 1}),
            "edge": ConfigRecord({"channel": "web", "edge": edge}),
        }
    )
    return Message(content, reply_to=request)


def _refused() -> Message:
    request = flower_message(RecordDict(), "train")
    return Message(Error(ERROR_BUDGET_EXHAUSTED, "budget"), reply_to=request)


def test_server_step_plain_settings_return_the_inner_aggregate_unchanged() -> None:
    averaged = _record({"w": [1.0, 2.0]})
    strategy = ProfileStrategy(FakeInner([averaged]))

    arrays, _ = _train_round(strategy, 1, [0.0, 0.0], [_ok()])

    assert arrays is averaged


def test_server_momentum_applies_after_the_inner_aggregate_as_fedavgm() -> None:
    # The inner output stands for the DP wrapper's noised average: momentum post-processes it.
    inner = FakeInner([_record({"w": [1.0, -1.0]}), _record({"w": [3.0, -3.0]})])
    strategy = ProfileStrategy(inner, server_learning_rate=2.0, server_momentum=0.5)

    first, _ = _train_round(strategy, 1, [0.0, 0.0], [_ok()])
    second, _ = _train_round(strategy, 2, list(first["w"].numpy()), [_ok()])

    # v1 = 1, w1 = 0 + 2*1 = 2 ; v2 = 0.5*1 + (3-2) = 1.5, w2 = 2 + 2*1.5 = 5
    assert np.allclose(first["w"].numpy(), [2.0, -2.0])
    assert np.allclose(second["w"].numpy(), [5.0, -5.0])
    assert strategy.result.arrays is second


@pytest.mark.parametrize(
    ("replies", "aggregated", "min_nodes", "stops"),
    [
        (["ok", "refused"], True, 2, True),  # one edge left: below min-nodes
        (["ok", "ok", "refused"], True, 2, False),  # two edges still train
        (["ok", "ok", "refused"], False, 2, True),  # the accounted wrapper skipped the round
        (["refused", "refused"], False, 1, True),
        (["ok", "ok"], True, 2, False),  # no refusal: never a budget stop
    ],
)
def test_budget_refusals_stop_the_run_when_the_round_falls_short(
    replies: list[str], aggregated: bool, min_nodes: int, stops: bool
) -> None:
    output = _record({"w": [1.0]}) if aggregated else None
    strategy = ProfileStrategy(FakeInner([output]), min_nodes=min_nodes)
    messages = [_ok() if r == "ok" else _refused() for r in replies]

    _train_round(strategy, 1, [0.0], messages)

    assert strategy.budget_refusals == replies.count("refused")
    if stops:
        with pytest.raises(PrivacyBudgetExhausted, match="max-epsilon"):
            strategy.configure_train(2, _record({"w": [0.0]}), ConfigRecord(), None)  # type: ignore[arg-type]
    else:
        strategy.configure_train(2, _record({"w": [0.0]}), ConfigRecord(), None)  # type: ignore[arg-type]
        assert strategy.stop_reason is None


def test_round_callback_gets_train_rows_and_no_central_epsilon_without_central_dp() -> None:
    seen: list[Any] = []
    strategy = ProfileStrategy(FakeInner([_record({"w": [1.0]})]), on_round=seen.append)

    _train_round(strategy, 1, [0.0], [_ok("sms-1"), _refused()])

    (summary,) = seen
    assert (summary.server_round, summary.phase) == (1, "train")
    assert [row["edge"] for row in summary.edges] == ["sms-1", None]
    assert "central-epsilon" not in summary.metrics and strategy.central_privacy() is None


@pytest.mark.parametrize(
    ("kwargs"),
    [
        {"server_learning_rate": 0.0},
        {"server_learning_rate": -1.0},
        {"server_momentum": 1.0},
        {"server_momentum": -0.1},
        {"min_nodes": 0},
    ],
)
def test_profile_strategy_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ProfileStrategy(FedAvg(), **kwargs)  # type: ignore[arg-type]


class NamingInner(FakeInner):
    """Records the ``model-version`` each configure call sends; edges report ε and δ."""

    def __init__(self, outputs: list[ArrayRecord | None]) -> None:
        super().__init__(outputs)
        self.sent: list[tuple[str, object]] = []

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.sent.append(("train", config.get("model-version")))
        return []

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        arrays = self.outputs.pop(0)
        metrics = MetricRecord({"num-examples": 1, "epsilon": 2.5, "delta": 1e-5})
        return arrays, None if arrays is None else metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.sent.append(("evaluate", config.get("model-version")))
        return []

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        return MetricRecord({"eval-auc": 0.7})


class FakePublisher:
    def __init__(self) -> None:
        self.releases: list[Any] = []
        self.evaluations: list[tuple[str, dict[str, float]]] = []

    def publish(self, release: Any) -> str:
        self.releases.append(release)
        return f"behaviour:v{len(self.releases)}"

    def record_evaluation(self, *, label: str, metrics: Any) -> None:
        self.evaluations.append((label, dict(metrics)))


def _evaluate_round(strategy: ProfileStrategy, server_round: int) -> None:
    strategy.configure_evaluate(server_round, _record({"w": [0.0]}), ConfigRecord(), None)  # type: ignore[arg-type]
    strategy.aggregate_evaluate(server_round, [])


def test_configs_name_the_model_sent_and_each_aggregate_is_published() -> None:
    inner = NamingInner([_record({"w": [1.0]}), None])  # round 2: no aggregate
    publisher = FakePublisher()
    strategy = ProfileStrategy(inner, model_version="seed:0", publisher=publisher,
                               server_learning_rate=2.0)  # fmt: skip

    _train_round(strategy, 1, [0.0], [_ok()])
    _evaluate_round(strategy, 1)
    _train_round(strategy, 2, [2.0], [_ok()])
    _evaluate_round(strategy, 2)

    assert inner.sent == [("train", "seed:0"), ("evaluate", "behaviour:v1"),
                          ("train", "behaviour:v1"), ("evaluate", "behaviour:v1")]  # fmt: skip
    (release,) = publisher.releases
    assert release.server_round == 1 and (release.epsilon, release.delta) == (2.5, 1e-5)
    assert np.allclose(release.arrays["w"].numpy(), [2.0])  # after the server step
    # Round 2 published nothing: its evaluation (of v1 again) is not attached to v1.
    assert publisher.evaluations == [("behaviour:v1", {"eval-auc": 0.7})]


def test_without_a_publisher_aggregates_are_named_by_round() -> None:
    inner = NamingInner([_record({"w": [1.0]})])
    strategy = ProfileStrategy(inner, model_version="seed:7")

    _train_round(strategy, 1, [0.0], [_ok()])
    _evaluate_round(strategy, 1)

    assert inner.sent == [("train", "seed:7"), ("evaluate", "seed:7+r1")]


def test_no_model_version_sends_no_key() -> None:
    inner = NamingInner([_record({"w": [1.0]})])

    _train_round(ProfileStrategy(inner), 1, [0.0], [_ok()])

    assert inner.sent == [("train", None)]
