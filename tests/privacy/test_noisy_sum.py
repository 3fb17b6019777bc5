"""The lean noise step: noise std σ·C on the clipped sum, division by the expected batch."""

from __future__ import annotations

import pytest
import torch
from opacus.optimizers import DPOptimizerFastGradientClipping
from torch import nn

from privacy.noisy_sum import NoisySumOptimizer


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(50, 100), nn.Linear(100, 40))


def _with_grads(model: nn.Module, value: float) -> list[torch.Tensor]:
    for p in model.parameters():
        p.grad = torch.full_like(p, value)
    return [p.detach().clone() for p in model.parameters()]


def test_zero_noise_divides_the_clipped_sum_by_the_expected_batch_and_steps() -> None:
    model = _model()
    calls: list[object] = []
    optimizer = NoisySumOptimizer(
        torch.optim.SGD(model.parameters(), lr=1.0),
        noise_multiplier=0.0,
        max_grad_norm=1.0,
        expected_batch_size=4,
    )
    optimizer.attach_step_hook(calls.append)
    before = _with_grads(model, 2.0)

    optimizer.step()

    for old, new in zip(before, model.parameters(), strict=True):
        torch.testing.assert_close(new.detach(), old - 0.5)
    assert calls == [optimizer]


def test_noise_std_is_sigma_clip_over_expected_batch() -> None:
    model = _model()
    sigma, clip, batch = 2.0, 0.3, 8
    optimizer = NoisySumOptimizer(
        torch.optim.SGD(model.parameters(), lr=1.0),
        noise_multiplier=sigma,
        max_grad_norm=clip,
        expected_batch_size=batch,
        generator=torch.Generator().manual_seed(3),
    )
    before = _with_grads(model, 0.0)

    optimizer.step()

    noise = torch.cat(
        [
            (old - new.detach()).flatten()
            for old, new in zip(before, model.parameters(), strict=True)
        ]
    )
    expected = sigma * clip / batch
    assert noise.numel() > 9_000
    assert abs(float(noise.mean())) < 0.05 * expected
    assert float(noise.std()) == pytest.approx(expected, rel=0.05)


def test_step_without_clipped_gradients_is_refused() -> None:
    model = _model()
    optimizer = NoisySumOptimizer(
        torch.optim.SGD(model.parameters(), lr=1.0),
        noise_multiplier=1.0,
        max_grad_norm=1.0,
        expected_batch_size=4,
    )
    optimizer.zero_grad()

    with pytest.raises(ValueError, match="no gradient"):
        optimizer.step()


def test_replacing_keeps_opacus_settings_and_hook() -> None:
    model = _model()
    hook = print  # any callable
    opacus = DPOptimizerFastGradientClipping(
        torch.optim.SGD(model.parameters(), lr=0.1),
        noise_multiplier=1.3,
        max_grad_norm=0.7,
        expected_batch_size=16,
    )
    opacus.attach_step_hook(hook)

    lean = NoisySumOptimizer.replacing(opacus)

    assert (lean.noise_multiplier, lean.max_grad_norm, lean.expected_batch_size) == (1.3, 0.7, 16)
    assert lean.original_optimizer is opacus.original_optimizer
    assert lean.step_hook is hook


def test_mixed_dtypes_fall_back_to_the_opacus_step() -> None:
    model = _model().to(torch.float64)
    model[1].to(torch.float32)
    optimizer = NoisySumOptimizer(
        torch.optim.SGD(model.parameters(), lr=1.0),
        noise_multiplier=0.0,
        max_grad_norm=1.0,
        expected_batch_size=2,
    )
    before = _with_grads(model, 1.0)

    optimizer.step()
    optimizer.zero_grad()
    _with_grads(model, 1.0)
    optimizer.step()

    for old, new in zip(before, model.parameters(), strict=True):
        torch.testing.assert_close(new.detach(), old - 1.0)
