"""The noise step of book-keeping DP-SGD: Opacus's noise-only optimizer, with a lean step.

Opacus's ``DPOptimizerFastGradientClipping`` expects ``p.grad`` to already hold the sum of
clipped per-example gradients; it adds Gaussian noise of std σ·C to that sum, divides by
the expected batch size and steps. Its generic step deep-copies every gradient and loops
in Python several times per parameter, which on the edge's small models costs more than
the whole non-private step. ``NoisySumOptimizer`` keeps the class (so accounting hooks,
``expected_batch_size``, ``noise_multiplier`` and ``original_optimizer`` are Opacus's) and
replaces only the step's arithmetic: one ``torch.normal`` draw over all parameters, then
``p.grad = (p.grad + noise) / expected_batch_size`` in place. The distribution of what is
released is identical. In secure mode (``torchcsprng``), or with parameters of mixed dtypes,
the Opacus step runs unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from opacus.optimizers import DPOptimizerFastGradientClipping

logger = logging.getLogger(__name__)


class NoisySumOptimizer(DPOptimizerFastGradientClipping):  # type: ignore[misc]
    """Noise-only DP optimizer over gradients that already hold a clipped sum.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The wrapped (non-private) optimizer.
    noise_multiplier : float
        σ: noise std on the sum, in units of ``max_grad_norm``.
    max_grad_norm : float
        C: the bound each example's gradient was clipped to.
    expected_batch_size : int
        Divisor of the noised sum (the Poisson sample's expected size, not the realised).
    generator : torch.Generator or None
        Source of the noise.
    secure_mode : bool
        Use Opacus's unchanged secure-noise step.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        noise_multiplier: float,
        max_grad_norm: float,
        expected_batch_size: int,
        generator: torch.Generator | None = None,
        secure_mode: bool = False,
    ) -> None:
        super().__init__(
            optimizer,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
            expected_batch_size=expected_batch_size,
            loss_reduction="mean",
            generator=generator,
            secure_mode=secure_mode,
        )
        self._flat_params: list[torch.Tensor] = [
            p for group in self.param_groups for p in group["params"] if p.requires_grad
        ]
        # The lean step draws one noise vector, so every parameter must share its dtype.
        self._lean = not secure_mode and len({p.dtype for p in self._flat_params}) <= 1
        self._numel = sum(p.numel() for p in self._flat_params)

    @classmethod
    def replacing(cls, optimizer: Any) -> NoisySumOptimizer:
        """Build one with the settings and step hook of an Opacus FGC optimizer.

        Parameters
        ----------
        optimizer : DPOptimizerFastGradientClipping
            What Opacus's ``make_private(grad_sample_mode="ghost")`` returned.

        Returns
        -------
        NoisySumOptimizer
            Same wrapped optimizer, σ, C, expected batch size, generator and accountant hook.
        """
        lean = cls(
            optimizer.original_optimizer,
            noise_multiplier=optimizer.noise_multiplier,
            max_grad_norm=optimizer.max_grad_norm,
            expected_batch_size=optimizer.expected_batch_size,
            generator=optimizer.generator,
            secure_mode=optimizer.secure_mode,
        )
        lean.step_hook = optimizer.step_hook
        return lean

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear gradients (``None`` by default: the clipper writes fresh ones)."""
        if not self._lean:
            super().zero_grad(set_to_none)
            return
        self.original_optimizer.zero_grad(set_to_none)

    def pre_step(self, closure: Callable[[], float] | None = None) -> bool:
        """Noise the clipped sum, divide by the expected batch size, run the step hook.

        Raises
        ------
        ValueError
            If a parameter has no gradient (the clipper did not run).
        """
        if not self._lean:
            return bool(super().pre_step(closure))
        params = self._flat_params
        if any(p.grad is None for p in params):
            raise ValueError("a parameter has no gradient: run the clipper before stepping")
        std = float(self.noise_multiplier * self.max_grad_norm)
        scale = 1.0 / float(self.expected_batch_size)
        if std > 0.0:
            # One draw of std σC·(1/B) for every coordinate, then grad·(1/B) + noise: the
            # same distribution as (grad + N(0, σ²C²))/B with one fewer pass over the noise.
            noise = torch.normal(
                0.0, std * scale, (self._numel,), generator=self.generator, dtype=params[0].dtype
            )
            offset = 0
            for p in params:
                grad = p.grad
                assert grad is not None
                size = grad.numel()
                grad.mul_(scale).add_(noise[offset : offset + size].view_as(grad))
                offset += size
        else:
            for p in params:
                assert p.grad is not None
                p.grad.mul_(scale)
        if self.step_hook:
            self.step_hook(self)
        self._is_last_step_skipped = False
        return True
