"""The update guard: what a broken or malicious edge's reply can no longer do to the model."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from models import METRIC_NUM_EXAMPLES, RunConfig
from server.fl.central_dp import guard_settings
from server.fl.robust import GuardSettings, guard_replies

from ...client.training_factories import flower_message

GLOBAL = {"w": np.zeros(2, dtype=np.float32)}


def _reply(weights: list[float], count: float, edge: str = "web"):  # type: ignore[no-untyped-def]
    content = RecordDict(
        {
            "arrays": ArrayRecord({"w": Array(np.asarray(weights, dtype=np.float32))}),
            "metrics": MetricRecord({METRIC_NUM_EXAMPLES: count, "train_loss": 0.5}),
            "edge-info": ConfigRecord({"edge": edge}),
        }
    )
    return flower_message(content, "train")


def _weights(reply) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.asarray(reply.content["arrays"]["w"].numpy(), dtype=np.float64)


def _count(reply) -> float:  # type: ignore[no-untyped-def]
    return float(reply.content["metrics"][METRIC_NUM_EXAMPLES])


def _fedavg(replies) -> np.ndarray:  # type: ignore[no-untyped-def]
    counts = np.asarray([_count(r) for r in replies])
    stacked = np.stack([_weights(r) for r in replies])
    return (counts[:, None] * stacked).sum(axis=0) / counts.sum()


def _issue_round():  # type: ignore[no-untyped-def]
    """The issue's example: nine honest edges reach [1, 1]; one reports 100,000 examples."""
    honest = [_reply([1.0 + 0.01 * i, 1.0 - 0.01 * i], 500 + 10 * i) for i in range(9)]
    return [*honest, _reply([-1100.0, 1100.0], 100_000, edge="broken")]


def test_plain_fedavg_is_moved_by_one_inflated_edge() -> None:
    """The failure the guard exists for (no guard: as FedAvg aggregates)."""
    averaged = _fedavg(_issue_round())
    assert np.abs(averaged - 1.0).max() > 500


def test_capped_weights_and_bounded_norms_keep_the_honest_average() -> None:
    settings = GuardSettings(weight_key=METRIC_NUM_EXAMPLES, norm_factor=3.0, weight_cap=2.0)
    kept, notes = guard_replies(_issue_round(), GLOBAL, settings)
    # Bounded FedAvg: the broken edge still pulls, but by less than one honest norm...
    assert np.abs(_fedavg(kept) - 1.0).max() < float(np.linalg.norm([1.0, 1.0]))
    # ...and the default rule (Flower's trimmed mean, beta 0.2) drops it per coordinate.
    from scipy.stats import trim_mean

    trimmed = trim_mean(np.stack([_weights(r) for r in kept]), 0.2, axis=0)
    assert np.abs(trimmed - 1.0).max() < 0.05
    broken = [n for n in notes if n.index == 9]
    assert {n.action for n in broken} == {"clipped", "weight-capped"}
    assert all(n.index == 9 for n in notes), "honest edges are left alone"
    assert _count(kept[9]) == pytest.approx(2.0 * np.median([*range(500, 590, 10), 100_000]))
    honest_norm = float(np.linalg.norm([1.0, 1.0]))
    assert float(np.linalg.norm(_weights(kept[9]))) == pytest.approx(3.0 * honest_norm, rel=0.01)
    assert "edge-info" in kept[9].content.config_records, "the edge's identity is kept"


def test_a_reply_with_nan_or_the_wrong_shape_is_excluded_with_its_reason() -> None:
    replies = [
        _reply([1.0, 1.0], 10),
        _reply([float("nan"), 1.0], 10),
        flower_message(
            RecordDict(
                {
                    "arrays": ArrayRecord({"w": Array(np.ones(3, dtype=np.float32))}),
                    "metrics": MetricRecord({METRIC_NUM_EXAMPLES: 10}),
                }
            ),
            "train",
        ),
        _reply([1.0, 1.0], -5),
    ]
    kept, notes = guard_replies(replies, GLOBAL, GuardSettings(weight_key=METRIC_NUM_EXAMPLES))
    assert len(kept) == 1
    reasons = {n.index: n.reason for n in notes}
    assert [n.action for n in notes] == ["excluded"] * 3
    assert "non-finite" in reasons[1]
    assert "shape" in reasons[2]
    assert "positive" in reasons[3]


def test_central_dp_clips_to_the_clipping_norm_equalises_weights_and_zeroes_bad_updates() -> None:
    replies = [
        _reply([0.3, 0.4], 1),  # norm 0.5: within C = 1
        _reply([30.0, 40.0], 100_000),  # an edge that did not clip, inflating its count
        _reply([float("inf"), 0.0], 1),
    ]
    settings = GuardSettings(weight_key=METRIC_NUM_EXAMPLES, central_norm=1.0)
    kept, notes = guard_replies(replies, GLOBAL, settings)
    assert len(kept) == 3, "the accounted wrapper needs every sampled reply"
    assert np.allclose(_weights(kept[0]), [0.3, 0.4])
    assert float(np.linalg.norm(_weights(kept[1]))) == pytest.approx(1.0, rel=1e-6)
    assert [_count(r) for r in kept] == [1, 1, 1]
    assert np.allclose(_weights(kept[2]), 0.0)
    actions = {(n.index, n.action) for n in notes}
    assert actions == {(1, "clipped"), (1, "weight-equalised"), (2, "zeroed")}


def test_error_replies_pass_through_for_the_strategy_to_drop() -> None:
    from flwr.app import Error

    error = flower_message(RecordDict(), "train")
    failed = type(error)(Error(code=7, reason="no data"), reply_to=error)
    kept, notes = guard_replies([failed, _reply([1.0, 1.0], 3)], GLOBAL, GuardSettings("n"))
    assert kept[0] is failed and notes == [n for n in notes if n.index == 1]


def test_guard_settings_follow_the_dp_mode() -> None:
    local = guard_settings(RunConfig(dp_mode="local", update_norm_bound=4.0, weight_cap=1.5))
    assert (local.norm_factor, local.weight_cap, local.central_norm) == (4.0, 1.5, None)
    central = guard_settings(RunConfig(dp_mode="central", central_clipping_norm=0.7))
    assert central.central_norm == 0.7


def test_robust_aggregation_resolves_per_dp_mode_and_central_refuses_other_rules() -> None:
    assert RunConfig(dp_mode="local").aggregation_rule == "trimmed-mean"
    assert RunConfig(dp_mode="central").aggregation_rule == "fedavg"
    multikrum = RunConfig(dp_mode="off", aggregation="multikrum", min_nodes=5)
    assert multikrum.aggregation_rule == "multikrum"
    with pytest.raises(ValueError, match="cannot run under dp-mode 'central'"):
        RunConfig(dp_mode="central", aggregation="median")


def test_krum_family_refuses_too_few_edges_for_the_tolerated_attackers() -> None:
    with pytest.raises(ValueError, match="needs at least 5 edges per round"):
        RunConfig(aggregation="krum", min_nodes=3)
    with pytest.raises(ValueError, match="needs at least 7 edges"):
        RunConfig(aggregation="bulyan", min_nodes=6)
    assert RunConfig(aggregation="multikrum", min_nodes=5).aggregation_rule == "multikrum"


def test_under_secure_aggregation_quality_flags_are_recorded_not_acted_on() -> None:
    secure = guard_settings(RunConfig(dp_mode="central", secure_aggregation=True, min_nodes=3))
    assert secure.quality == "flag"
    assert guard_settings(RunConfig(dp_mode="central")).quality == "exclude"
