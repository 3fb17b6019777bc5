"""σ calibrated to a target ε over a whole federated round plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.calibration import (
    calibrate_noise_multiplier,
    calibrated_dp_config,
    plan_steps,
    resolve_dp_config,
)
from models import parse_run_config
from privacy import DPConfig, compute_epsilon


@pytest.mark.parametrize("target", [1.0, 3.0, 8.0])
def test_calibrated_sigma_meets_the_target_tightly(target: float) -> None:
    sigma = calibrate_noise_multiplier(
        target_epsilon=target, sample_rate=0.05, steps=400, delta=1e-5, accountant="rdp"
    )
    spent = compute_epsilon([(sigma, 0.05, 400)], delta=1e-5, accountant="rdp")
    below = compute_epsilon([(sigma * 0.98, 0.05, 400)], delta=1e-5, accountant="rdp")
    assert spent <= target < below


def test_smaller_targets_need_more_noise() -> None:
    sigmas = [
        calibrate_noise_multiplier(
            target_epsilon=t, sample_rate=0.1, steps=100, delta=1e-5, accountant="rdp"
        )
        for t in (1.0, 4.0, 16.0)
    ]
    assert sigmas[0] > sigmas[1] > sigmas[2]


def test_unreachable_target_and_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="raise the target"):
        calibrate_noise_multiplier(
            target_epsilon=1e-6, sample_rate=1.0, steps=10_000, delta=1e-5, accountant="rdp"
        )
    with pytest.raises(ValueError, match="target_epsilon"):
        calibrate_noise_multiplier(target_epsilon=0.0, sample_rate=0.1, steps=1, delta=1e-5)
    with pytest.raises(ValueError, match="steps"):
        calibrate_noise_multiplier(target_epsilon=1.0, sample_rate=0.1, steps=0, delta=1e-5)


def test_plan_counts_every_round_and_smaller_edges_get_more_noise() -> None:
    dp = DPConfig(batch_size=64, local_epochs=2, accountant="rdp")
    q, steps = plan_steps(640, dp=dp, rounds=5)
    assert q == pytest.approx(0.1) and steps == 10 * 2 * 5
    small = calibrated_dp_config(dp, target_epsilon=4.0, num_examples=200, rounds=5)
    large = calibrated_dp_config(dp, target_epsilon=4.0, num_examples=2000, rounds=5)
    assert small.noise_multiplier > large.noise_multiplier
    assert large.batch_size == 64 and large.local_epochs == 2


def test_resolve_uses_run_config_target_only_when_set() -> None:
    dp = DPConfig(accountant="rdp")
    assert resolve_dp_config(dp, config=parse_run_config({}), num_examples=500) is dp
    config = parse_run_config({"target-epsilon": 5.0, "num-server-rounds": 4, "accountant": "rdp"})
    resolved = resolve_dp_config(dp, config=config, num_examples=500)
    q, steps = plan_steps(500, dp=dp, rounds=4)
    assert (
        compute_epsilon([(resolved.noise_multiplier, q, steps)], delta=dp.delta, accountant="rdp")
        <= 5.0
    )
    off = DPConfig(enabled=False)
    assert resolve_dp_config(off, config=config, num_examples=500) is off


def test_client_app_with_target_epsilon_ends_the_planned_run_at_the_target(
    tmp_path: Path,
) -> None:
    from client.app import build_client_app
    from models import METRICS_KEY, BehaviourGRU, get_weights

    from .training_factories import NOW, flower_context, flower_message, make_edge, train_content

    make_edge(tmp_path, subjects=30)
    app = build_client_app(
        {"batch-size": 8, "accountant": "rdp", "target-epsilon": 6.0, "num-server-rounds": 2},
        clock=lambda: NOW,
    )
    weights = get_weights(BehaviourGRU.from_seed(0))
    epsilons = []
    for server_round in (1, 2):
        reply = app(
            flower_message(train_content(weights, server_round=server_round), "train"),
            flower_context(node_config={"data-path": str(tmp_path)}),
        )
        assert not reply.has_error()
        epsilons.append(float(reply.content.metric_records[METRICS_KEY]["epsilon"]))
    # Half the plan spends less than the target; the whole plan ends just under it.
    assert epsilons[0] < epsilons[1] <= 6.0
    assert epsilons[1] > 5.5


def test_client_app_unreachable_target_is_an_error_reply(tmp_path: Path) -> None:
    from client.app import ERROR_BAD_CONFIG, build_client_app
    from models import BehaviourGRU, get_weights

    from .training_factories import NOW, flower_context, flower_message, make_edge, train_content

    make_edge(tmp_path, subjects=30)
    app = build_client_app(
        {"batch-size": 64, "accountant": "rdp", "target-epsilon": 1e-4, "num-server-rounds": 50},
        clock=lambda: NOW,
    )
    reply = app(
        flower_message(train_content(get_weights(BehaviourGRU.from_seed(0))), "train"),
        flower_context(node_config={"data-path": str(tmp_path)}),
    )
    assert reply.has_error() and reply.error.code == ERROR_BAD_CONFIG
    assert "cannot calibrate noise" in reply.error.reason
