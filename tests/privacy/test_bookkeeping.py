"""Exactness of one-backward (book-keeping) per-example clipping on awkward layer uses."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from privacy.bookkeeping import BookkeepingClipper, unsupported_layers


class _Bag(nn.Module):
    """Embedding summed over all positions (padding included), then a linear head."""

    def __init__(self, *, padding_idx: int | None) -> None:
        super().__init__()
        self.embedding = nn.Embedding(12, 4, padding_idx=padding_idx)
        self.head = nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(ids).sum(1))


class _Sequence(nn.Module):
    """A Linear over every position of a sequence, applied twice (weight reuse), then pooled."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.inner = nn.Linear(width, width)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.inner(torch.tanh(self.inner(x))))
        return self.head(hidden.mean(1))


def _losses(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    out = model(inputs)
    return (out - 0.3).square().sum(-1)


def _flat_grads(model: nn.Module) -> torch.Tensor:
    return torch.cat(
        [
            (p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
            for p in model.parameters()
            if p.requires_grad
        ]
    )


def _hand(model: nn.Module, inputs: torch.Tensor, clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ_i clip(∇ℓ_i), per-example norms), one example at a time."""
    total, norms = None, []
    for i in range(inputs.shape[0]):
        model.zero_grad()
        _losses(model, inputs[i : i + 1]).sum().backward()
        grad = _flat_grads(model)
        norms.append(grad.norm())
        part = grad * min(1.0, clip / (float(grad.norm()) + 1e-6))
        total = part if total is None else total + part
    model.zero_grad()
    assert total is not None
    return total, torch.stack(norms)


def _bookkeeping(
    model: nn.Module, inputs: torch.Tensor, clip: float
) -> tuple[torch.Tensor, torch.Tensor]:
    clipper = BookkeepingClipper(model, max_grad_norm=clip)
    try:
        norms = clipper.backward(_losses(model, inputs))
    finally:
        clipper.close()
    grads = _flat_grads(model)
    model.zero_grad()
    return grads, norms


def _ids() -> torch.Tensor:
    return torch.tensor(
        [
            [3, 3, 3, 5, 0, 0],  # repeated id, padding at the end
            [1, 2, 4, 7, 9, 11],  # all distinct, increasing (fast path shape)
            [0, 6, 0, 6, 2, 2],  # padding in the middle and repeats
            [8, 1, 8, 1, 8, 1],
        ]
    )


@pytest.mark.parametrize("padding_idx", [None, 0])
@pytest.mark.parametrize("clip", [1e-3, 0.5, 100.0])
def test_embedding_with_repeats_and_padding_matches_hand_clipping(
    padding_idx: int | None, clip: float
) -> None:
    torch.manual_seed(0)
    model = _Bag(padding_idx=padding_idx)

    grads, norms = _bookkeeping(model, _ids(), clip)
    expected, expected_norms = _hand(model, _ids(), clip)

    torch.testing.assert_close(norms, expected_norms, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(grads, expected, atol=1e-6, rtol=1e-5)


def test_sorted_distinct_rows_take_the_fast_path_and_stay_exact() -> None:
    torch.manual_seed(1)
    model = _Bag(padding_idx=0)
    ids = torch.tensor([[1, 4, 9, 0, 0], [2, 3, 5, 7, 11], [6, 0, 0, 0, 0]])

    grads, norms = _bookkeeping(model, ids, 0.2)
    expected, expected_norms = _hand(model, ids, 0.2)

    torch.testing.assert_close(norms, expected_norms, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(grads, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    ("width", "steps"),
    [(3, 12), (24, 2)],  # per-example gradient formed / ghost identity used
)
def test_linear_reused_over_sequence_matches_hand_clipping(width: int, steps: int) -> None:
    torch.manual_seed(2)
    model = _Sequence(width)
    inputs = torch.randn(5, steps, width)

    grads, norms = _bookkeeping(model, inputs, 0.1)
    expected, expected_norms = _hand(model, inputs, 0.1)

    torch.testing.assert_close(norms, expected_norms, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(grads, expected, atol=1e-6, rtol=1e-5)


class _TwoTables(nn.Module):
    """Two embeddings whose outputs are added: autograd hands both the same gradient tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Embedding(12, 4)
        self.second = nn.Embedding(12, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        weights = torch.linspace(0.1, 1.0, ids.shape[1])[None, :, None]
        return self.head(((self.first(ids) + self.second(ids)) * weights).sum(1))


def test_gradient_shared_between_layers_is_not_scaled_twice() -> None:
    torch.manual_seed(6)
    model = _TwoTables()

    grads, _ = _bookkeeping(model, _ids(), 0.05)
    expected, _ = _hand(model, _ids(), 0.05)

    torch.testing.assert_close(grads, expected, atol=1e-6, rtol=1e-5)


def test_frozen_parameters_are_left_alone_and_excluded_from_the_norm() -> None:
    torch.manual_seed(3)
    model = _Sequence(4)
    model.inner.weight.requires_grad_(False)
    model.head.bias.requires_grad_(False)
    inputs = torch.randn(4, 3, 4)

    grads, _ = _bookkeeping(model, inputs, 0.05)
    expected, _ = _hand(model, inputs, 0.05)

    torch.testing.assert_close(grads, expected, atol=1e-6, rtol=1e-5)
    assert model.inner.weight.grad is None


def test_stale_forward_without_backward_is_ignored() -> None:
    torch.manual_seed(4)
    model = _Bag(padding_idx=0)
    clipper = BookkeepingClipper(model, max_grad_norm=0.3)
    _losses(model, _ids()[:3])  # never back-propagated

    clipper.backward(_losses(model, _ids()))
    grads = _flat_grads(model)
    clipper.close()
    expected, _ = _hand(model, _ids(), 0.3)

    torch.testing.assert_close(grads, expected, atol=1e-6, rtol=1e-5)


def test_gradients_accumulate_into_existing_grad() -> None:
    torch.manual_seed(5)
    model = _Bag(padding_idx=None)
    clipper = BookkeepingClipper(model, max_grad_norm=0.3)

    clipper.backward(_losses(model, _ids()))
    clipper.backward(_losses(model, _ids()))
    grads = _flat_grads(model)
    clipper.close()
    expected, _ = _hand(model, _ids(), 0.3)

    torch.testing.assert_close(grads, 2 * expected, atol=1e-6, rtol=1e-5)


def test_empty_batch_gives_zero_gradients() -> None:
    model = _Bag(padding_idx=0)
    clipper = BookkeepingClipper(model, max_grad_norm=1.0)

    norms = clipper.backward(torch.zeros(0))

    assert norms.shape == (0,)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())


@pytest.mark.parametrize("way", ["eval", "no_grad"])
def test_backward_without_a_recorded_training_forward_is_refused(way: str) -> None:
    model = _Bag(padding_idx=0)
    clipper = BookkeepingClipper(model, max_grad_norm=1.0)
    if way == "eval":
        model.eval()
    with torch.no_grad() if way == "no_grad" else contextlib.nullcontext():
        losses = _losses(model, _ids())

    with pytest.raises(ValueError, match="no forward pass"):
        clipper.backward(losses)


def test_loss_must_be_per_example() -> None:
    model = _Bag(padding_idx=0)
    clipper = BookkeepingClipper(model, max_grad_norm=1.0)

    with pytest.raises(ValueError, match=r"\(batch,\)"):
        clipper.backward(_losses(model, _ids()).mean())


def test_layer_applied_to_a_non_batch_tensor_is_refused() -> None:
    class Query(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            key = self.proj(torch.ones(3, 4))  # not per example
            return (x @ key.T).sum(-1, keepdim=True)

    model = Query()
    clipper = BookkeepingClipper(model, max_grad_norm=1.0)

    with pytest.raises(ValueError, match="batch as first dimension"):
        clipper.backward(_losses(model, torch.randn(5, 4)))


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        (
            nn.Sequential(nn.Linear(2, 3), nn.LayerNorm(3)),
            "1.weight: held by unsupported layer LayerNorm",
        ),
        (nn.Sequential(nn.Conv1d(2, 2, 1)), "Conv1d"),
        (nn.Sequential(nn.Embedding(5, 2, scale_grad_by_freq=True)), "scale_grad_by_freq"),
    ],
)
def test_unsupported_layers_are_named(model: nn.Module, fragment: str) -> None:
    problems = unsupported_layers(model)

    assert any(fragment in p for p in problems)
    with pytest.raises(ValueError, match="cannot handle"):
        BookkeepingClipper(model, max_grad_norm=1.0)


def test_parameter_shared_between_two_layers_is_refused() -> None:
    first, second = nn.Linear(3, 3), nn.Linear(3, 3)
    second.weight = first.weight
    model = nn.Sequential(first, second)

    assert any("shared with" in p for p in unsupported_layers(model))


def test_supported_models_report_no_problem_and_close_removes_hooks() -> None:
    model = _Sequence(3)
    clipper = BookkeepingClipper(model, max_grad_norm=1.0)
    assert unsupported_layers(model) == []

    clipper.close()

    assert all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("clip", [0.0, -1.0])
def test_clip_norm_must_be_positive(clip: float) -> None:
    with pytest.raises(ValueError, match="max_grad_norm"):
        BookkeepingClipper(_Bag(padding_idx=0), max_grad_norm=clip)
