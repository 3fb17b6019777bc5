from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torch import nn

from models import BehaviourModel, BehaviourModelConfig, get_weights, set_weights
from models.weights import weights_from_bytes, weights_to_bytes

NF = 5
GRU = BehaviourModelConfig(num_features=NF, hidden=3, sequence=4, embed_dim=2)


def test_get_weights_named_parameters_once_in_stable_order() -> None:
    model = BehaviourModel(GRU)

    weights = get_weights(model)

    assert list(weights) == [name for name, _ in model.named_parameters()]
    assert "gru.weight_ih_l0" in weights
    assert not any(".l0." in name for name in weights)  # DPGRU's duplicate names dropped
    assert len(model.state_dict()) > len(weights)
    assert "center" not in weights and "scale" not in weights  # buffers are not exchanged


def test_get_weights_returns_copies() -> None:
    model = BehaviourModel(GRU)
    weights = get_weights(model)

    weights["heads.bias"][:] = 42.0

    assert float(model.heads.bias.detach()[0]) != 42.0


def test_set_weights_roundtrip_between_models() -> None:
    source, target = BehaviourModel.from_seed(1, GRU), BehaviourModel.from_seed(2, GRU)
    inputs = (
        torch.arange(NF, dtype=torch.float32)[None, :],
        torch.tensor([[1, 2, 3]]),
        torch.tensor([3]),
    )
    assert not torch.equal(source(*inputs).purchase, target(*inputs).purchase)

    set_weights(target, get_weights(source))

    assert torch.equal(source(*inputs).purchase, target(*inputs).purchase)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda w: w.pop("heads.bias"), "missing"),
        (lambda w: w.update({"extra": np.zeros(1)}), "unexpected"),
        (lambda w: w.update({"heads.bias": np.zeros(3)}), "wrong shape"),
        (lambda w: w.update({"gru.weight_hh_l0": np.zeros((4, 4))}), "wrong shape"),
        (lambda w: w.update({"hidden.weight": np.zeros((3, NF + 1))}), "wrong shape"),
    ],
)
def test_set_weights_mismatch_raises_and_changes_nothing(mutate, message: str) -> None:
    model = BehaviourModel.from_seed(0, GRU)
    before = get_weights(model)
    weights = get_weights(BehaviourModel.from_seed(5, GRU))
    mutate(weights)

    with pytest.raises(ValueError, match=message):
        set_weights(model, weights)

    after = get_weights(model)
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_set_weights_keeps_the_parameter_dtype() -> None:
    model = nn.Linear(2, 1)
    weights = {"weight": np.array([[0.5, -1.5]], dtype=np.float64), "bias": np.array([2.0])}

    set_weights(model, weights)

    assert model.weight.dtype == torch.float32
    assert model.weight.tolist() == [[0.5, -1.5]] and model.bias.tolist() == [2.0]


def test_weights_bytes_roundtrip_keeps_order_dtype_and_values() -> None:
    weights = get_weights(nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1)))

    restored = weights_from_bytes(weights_to_bytes(weights))

    assert list(restored) == list(weights)
    for name, value in weights.items():
        assert restored[name].dtype == value.dtype
        np.testing.assert_array_equal(restored[name], value)


def test_weights_from_bytes_refuses_pickled_objects() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, evil=np.array([{"a": 1}], dtype=object))

    with pytest.raises(ValueError, match="plain arrays"):
        weights_from_bytes(buffer.getvalue())


@pytest.mark.parametrize(
    "data", [b"", b"not an archive", weights_to_bytes({"a": np.zeros(100)})[:60]]
)
def test_weights_from_bytes_garbage_raises(data: bytes) -> None:
    with pytest.raises(ValueError):
        weights_from_bytes(data)


def test_weights_to_bytes_object_arrays_refused() -> None:
    with pytest.raises(ValueError, match="pickle"):
        weights_to_bytes({"x": np.array([object()], dtype=object)})
