"""The aggregating strategy per dp-mode, and Flower's accounted central-DP wrapper under ours."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.exception import PrivacyBudgetExhausted
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    FedAvg,
    FedTrimmedAvg,
    MultiKrum,
)

from models import RunConfig
from privacy import compute_epsilon
from server.fl.central_dp import FixedSampleFedAvg, build_strategy, central_sample_size
from server.fl.strategy import ProfileStrategy
from simulations.inprocess import InProcessGrid, task_identity


def _config(**values: Any) -> RunConfig:
    return RunConfig.model_validate(values)


def _grid(nodes: int) -> InProcessGrid:
    return InProcessGrid(lambda msg, ctx: msg, node_configs=[{} for _ in range(nodes)])


def _weights(value: float = 0.0) -> ArrayRecord:
    return ArrayRecord({"w": Array(np.full(4, value, dtype=np.float32))})


def _reply(request: Message, *, weight: float = 1.0, value: float = 0.1) -> Message:
    content = RecordDict(
        {
            "arrays": _weights(value),
            "metrics": MetricRecord({"num-examples": weight, "examples-trained": 20.0}),
            "edge": ConfigRecord({"edge": "e", "channel": "app"}),
        }
    )
    return Message(content, reply_to=request)


@pytest.mark.parametrize("mode", ["local", "off"])
def test_build_strategy_without_central_dp_is_the_chosen_rule(mode: str) -> None:
    default = build_strategy(_config(dp_mode=mode, min_nodes=3), grid=_grid(3))
    plain = build_strategy(_config(dp_mode=mode, min_nodes=3, aggregation="fedavg"), grid=_grid(3))
    krum = build_strategy(
        _config(dp_mode=mode, min_nodes=5, aggregation="multikrum", tolerated_edges=1),
        grid=_grid(5),
    )

    assert type(default) is FedTrimmedAvg and default.beta == 0.2
    assert type(plain) is FedAvg
    assert (plain.min_train_nodes, plain.weighted_by_key) == (3, "num-examples")
    assert type(krum) is MultiKrum
    assert (krum.num_malicious_nodes, krum.num_nodes_to_select) == (1, 4)


@pytest.mark.parametrize("mode", ["central", "both"])
def test_build_strategy_with_central_dp_wraps_fixed_sample_fedavg_with_accountant(
    mode: str,
) -> None:
    config = _config(
        dp_mode=mode,
        central_noise_multiplier=1.5,
        central_clipping_norm=0.3,
        central_max_epsilon=3.0,
        fraction_train=0.5,
        min_nodes=2,
    )

    strategy = build_strategy(config, grid=_grid(6))

    assert isinstance(strategy, DifferentialPrivacyClientSideFixedClipping)
    assert isinstance(strategy.strategy, FixedSampleFedAvg)
    assert strategy.strategy.sample_size == strategy.num_sampled_clients == 3
    assert (strategy.noise_multiplier, strategy.clipping_norm) == (1.5, 0.3)
    assert strategy.accountant is not None
    assert strategy.accountant.config.max_epsilon == 3.0
    assert strategy.accountant.config.sampling_method.value == "no-amplification"


@pytest.mark.parametrize(
    ("connected", "fraction", "min_nodes", "expected"),
    [(10, 1.0, 2, 10), (10, 0.3, 2, 3), (10, 0.05, 2, 2), (2, 0.0, 2, 2), (7, 0.5, 5, 5)],
)
def test_central_sample_size(
    connected: int, fraction: float, min_nodes: int, expected: int
) -> None:
    config = _config(fraction_train=fraction, min_nodes=min_nodes)

    assert central_sample_size(config, connected) == expected


def test_fixed_sample_fedavg_sends_to_exactly_m_distinct_edges() -> None:
    strategy = FixedSampleFedAvg(sample_size=3, min_available_nodes=2)
    grid = _grid(5)

    with task_identity():
        messages = list(strategy.configure_train(4, _weights(), ConfigRecord(), grid))

    targets = [m.metadata.dst_node_id for m in messages]
    assert len(targets) == len(set(targets)) == 3 and set(targets) <= set(grid.contexts)
    assert all(m.metadata.message_type == "train" for m in messages)
    assert messages[0].content.config_records["config"]["server-round"] == 4


def test_fixed_sample_fedavg_rejects_empty_sample() -> None:
    with pytest.raises(ValueError, match="sample_size"):
        FixedSampleFedAvg(sample_size=0)


def _central(sigma: float, budget: float = 0.0) -> ProfileStrategy:
    config = _config(
        dp_mode="central",
        central_noise_multiplier=sigma,
        central_clipping_norm=0.5,
        central_max_epsilon=budget,
        min_nodes=2,
    )
    return ProfileStrategy(build_strategy(config, grid=_grid(2)), min_nodes=2)


def _round(strategy: ProfileStrategy, server_round: int, **reply: Any) -> dict[str, float]:
    with task_identity():
        messages = list(
            strategy.configure_train(server_round, _weights(), ConfigRecord(), _grid(2))
        )
        replies = [_reply(m, **reply) for m in messages]
        _, metrics = strategy.aggregate_train(server_round, replies)
    assert messages[0].content.config_records["config"]["clipping_norm"] == 0.5
    assert metrics is not None
    return {k: float(v) for k, v in metrics.items()}  # type: ignore[arg-type]


def test_central_epsilon_per_round_matches_the_ledger_release_sigma_q1_one_step() -> None:
    strategy = _central(2.0)

    eps = [_round(strategy, r)["central-epsilon"] for r in (1, 2, 3)]

    expected = [
        compute_epsilon([(2.0, 1.0, 1)] * n, delta=1e-5, accountant="rdp") for n in (1, 2, 3)
    ]
    assert eps == pytest.approx(expected, rel=1e-9)
    assert strategy.central_privacy() == pytest.approx((expected[-1], 1e-5))


def test_central_aggregate_is_noised_then_momentum_free_when_plain() -> None:
    strategy = _central(1.0)

    _round(strategy, 1, value=0.1)

    w = strategy.result.arrays["w"].numpy()
    assert not np.allclose(w, 0.1)  # noise std σ·C/m = 0.25 was added to the average
    assert np.all(np.abs(w - 0.1) < 0.25 * 8)


def test_central_max_epsilon_stops_before_the_release_that_would_exceed() -> None:
    four = compute_epsilon([(3.0, 1.0, 1)] * 4, delta=1e-5, accountant="rdp")  # 2.985
    strategy = _central(3.0, budget=3.0)

    eps = [_round(strategy, r)["central-epsilon"] for r in (1, 2, 3, 4)]
    with task_identity(), pytest.raises(PrivacyBudgetExhausted, match="max_epsilon"):
        strategy.configure_train(5, _weights(), ConfigRecord(), _grid(2))

    assert eps[-1] == pytest.approx(four) and max(eps) <= 3.0
    assert strategy.central_privacy()[0] <= 3.0  # type: ignore[index]


def test_central_unequal_weights_are_refused_by_the_accounted_wrapper() -> None:
    strategy = _central(1.0)

    with task_identity():
        messages = list(strategy.configure_train(1, _weights(), ConfigRecord(), _grid(2)))
        replies = [_reply(m, weight=w) for m, w in zip(messages, (10.0, 30.0), strict=True)]
        with pytest.raises(ValueError, match="equal client weights"):
            strategy.aggregate_train(1, replies)
