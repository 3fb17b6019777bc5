"""The run config's DP settings and σ calibrated to a target ε, as the ClientApp uses them."""

from __future__ import annotations

from pathlib import Path

from client.learning.config import dp_config_from, resolve_dp_config
from models import RunConfig, parse_run_config
from privacy import DPConfig, compute_epsilon, plan_steps

from ..training_factories import NOW, flower_context, flower_message, make_edge, train_content


def test_dp_config_from_maps_the_run_config_and_zero_budget_is_none() -> None:
    dp = dp_config_from(RunConfig(noise_multiplier=0.7, max_epsilon=0.0, batch_size=32))

    assert (dp.noise_multiplier, dp.max_epsilon, dp.batch_size, dp.enabled) == (0.7, None, 32, True)
    assert dp_config_from(RunConfig(dp_mode="central")).enabled is False
    assert dp_config_from(RunConfig(max_epsilon=4.0)).max_epsilon == 4.0


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
    from models import METRICS_KEY, initial_weights

    make_edge(tmp_path, subjects=30)
    app = build_client_app(
        {"batch-size": 8, "accountant": "rdp", "target-epsilon": 6.0, "num-server-rounds": 2},
        clock=lambda: NOW,
    )
    weights = initial_weights(RunConfig())
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
    from models import initial_weights

    make_edge(tmp_path, subjects=30)
    app = build_client_app(
        {"batch-size": 64, "accountant": "rdp", "target-epsilon": 1e-4, "num-server-rounds": 50},
        clock=lambda: NOW,
    )
    reply = app(
        flower_message(train_content(initial_weights(RunConfig())), "train"),
        flower_context(node_config={"data-path": str(tmp_path)}),
    )
    assert reply.has_error() and reply.error.code == ERROR_BAD_CONFIG
    assert "cannot calibrate noise" in reply.error.reason
