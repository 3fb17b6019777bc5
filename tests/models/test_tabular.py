from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from opacus.validators import ModuleValidator

from models import get_weights
from models.tabular import (
    DEFAULT_NUM_FEATURES,
    IGNORE_TARGET,
    TABULAR_TARGETS,
    TabularMLP,
    TabularModelConfig,
    encode_features,
    squash,
    tabular_loss,
)
from privacy.bookkeeping import unsupported_layers

NAMES = ("recency_days", "monetary_90d", "complaint_rate")


def _rows() -> list[dict[str, float]]:
    return [
        {"recency_days": 3.0, "monetary_90d": 1200.0, "complaint_rate": 0.0},
        {"recency_days": 365.0, "monetary_90d": 0.0, "complaint_rate": 0.5, "extra": 9.0},
    ]


def test_default_config_matches_edge_features_and_targets() -> None:
    config = TabularModelConfig()

    assert config.num_features == DEFAULT_NUM_FEATURES == 18
    assert config.num_targets == len(TABULAR_TARGETS) == 2


@pytest.mark.parametrize(("x", "y"), [(0.0, 0.0), (math.e - 1, 1.0), (-(math.e - 1), -1.0)])
def test_squash_is_signed_log1p(x: float, y: float) -> None:
    assert float(squash(torch.tensor([x]))) == pytest.approx(y)


def test_squash_is_monotone_and_tames_large_values() -> None:
    x = torch.tensor([-1e6, -10.0, -1.0, 0.0, 1.0, 10.0, 1e6])

    y = squash(x)

    assert bool((y[1:] > y[:-1]).all())
    assert float(y.abs().max()) < 15.0


def test_encode_features_orders_columns_and_ignores_extra_keys() -> None:
    out = encode_features(_rows(), feature_names=NAMES)

    assert out.dtype == torch.float32
    assert out.tolist() == [[3.0, 1200.0, 0.0], [365.0, 0.0, 0.5]]


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"recency_days": 1.0, "monetary_90d": 2.0}, "lacks feature 'complaint_rate'"),
        ({"recency_days": float("nan"), "monetary_90d": 2.0, "complaint_rate": 0.0}, "non-finite"),
        ({"recency_days": float("inf"), "monetary_90d": 2.0, "complaint_rate": 0.0}, "non-finite"),
    ],
)
def test_encode_features_refuses_missing_or_non_finite_values(
    row: dict[str, float], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        encode_features([row], feature_names=NAMES)


@pytest.mark.parametrize("hidden", [(), (8,), (32, 16)])
def test_forward_shape_and_architecture_round_trip(hidden: tuple[int, ...]) -> None:
    config = TabularModelConfig(num_features=3, hidden_sizes=hidden, num_targets=2)
    model = TabularMLP.from_seed(0, config)

    logits = model(encode_features(_rows(), feature_names=NAMES))
    rebuilt = TabularMLP.from_weights(get_weights(model))
    from_bytes = TabularMLP.from_bytes(model.to_bytes())

    assert logits.shape == (2, 2)
    assert rebuilt.config == config == from_bytes.config
    torch.testing.assert_close(rebuilt(torch.ones(1, 3)), model(torch.ones(1, 3)))


def test_from_weights_refuses_foreign_weights() -> None:
    with pytest.raises(ValueError, match="TabularMLP"):
        TabularMLP.from_weights({"embedding.weight": np.zeros((3, 2))})


def test_from_seed_is_deterministic() -> None:
    first, second, other = TabularMLP.from_seed(4), TabularMLP.from_seed(4), TabularMLP.from_seed(5)

    for a, b in zip(first.parameters(), second.parameters(), strict=True):
        assert torch.equal(a, b)
    assert not torch.equal(first.layers[0].weight, other.layers[0].weight)


def test_tabular_loss_sums_targets_and_skips_unknown_ones() -> None:
    logits = torch.tensor([[0.5, -1.0], [2.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, IGNORE_TARGET]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    per_example = tabular_loss(logits, targets=targets, reduction="none")

    torch.testing.assert_close(per_example[0], bce(logits[0], targets[0], reduction="sum"))
    torch.testing.assert_close(per_example[1], bce(logits[1, :1], targets[1, :1], reduction="sum"))
    torch.testing.assert_close(tabular_loss(logits, targets=targets), per_example.mean())
    assert float(tabular_loss(logits[:0], targets=targets[:0])) == 0.0


def test_score_returns_probabilities_in_eval_mode_only_temporarily() -> None:
    model = TabularMLP.from_seed(1, TabularModelConfig(num_features=3))
    model.train()

    probs = model.score(encode_features(_rows(), feature_names=NAMES))

    assert probs.shape == (2, 2) and ((probs >= 0) & (probs <= 1)).all()
    assert model.score(torch.zeros(0, 3)).shape == (0, 2)
    assert model.training


def test_tabular_mlp_suits_every_dp_mode() -> None:
    model = TabularMLP()

    assert ModuleValidator.validate(model, strict=False) == []
    assert unsupported_layers(model) == []
    assert not list(model.buffers())  # no statistics learnt outside DP-SGD
