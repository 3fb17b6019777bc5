"""DP-SGD recipe: a thin façade over Opacus's ``PrivacyEngine``, with three exact modes.

``DPTrainer(config).make_private(...)`` swaps the data loader for Poisson sampling and the
optimizer for clip-and-noise, attaches the per-example gradient machinery of one *mode*,
and returns a ``PrivateTraining`` that reports the ``(σ, q, steps)`` history of the steps
actually taken, for the caller to charge to the privacy ledger. A fresh engine per call:
accounting across rounds is the ledger's job.

Modes (``GradSampleMode``; every one clips each example's whole gradient exactly):

* ``"hooks"``: Opacus's default; materialises per-example gradients. The only Opacus mode
  that handles any layer with a grad sampler (``DPGRU``'s cells included).
* ``"ghost"``: Opacus's fast gradient clipping; per-example norms without per-example
  gradients for ``Linear`` / ``Embedding`` layers, then a second backward pass.
* ``"bookkeeping"``: ours (``privacy.bookkeeping``): norms and the clipped sum from one
  partial backward pass, for models whose parameters all sit in ``Linear`` / ``Embedding``
  layers (``DPGRU``'s ``RNNLinear`` cells qualify). Noise comes from Opacus's noise-only
  optimizer of its ghost mode, so sampling, noise and accounting are Opacus's.
* ``"auto"`` (a request, not a mode): ``"bookkeeping"`` when the model allows it, else
  ``"hooks"``.

The training loop is the same in every mode: compute the batch's per-example losses (not
reduced) and call ``PrivateTraining.step(losses)`` (or ``optimizer.zero_grad()``,
``backward(losses)``, ``optimizer.step()``). An empty Poisson batch is a step too: pass
``torch.zeros(0)``. In ``"ghost"`` and ``"bookkeeping"`` modes the optimizer refuses a step
whose gradients did not come from ``backward`` (a plain ``loss.backward()`` would release an
unclipped gradient). ``"hooks"`` mode also accepts Opacus's own loop (``loss.backward()`` on
the batch-mean loss), which existing callers use.

Noise randomness: ``torchcsprng`` (Opacus's secure mode) has no build for our torch, so by
default the noise comes from a generator seeded from the operating system's CSPRNG, fresh
for every call: it never depends on the run's ``seed`` (which only fixes data order and
sampling). Passing an explicit ``generator`` makes the noise reproducible, which is for
experiments only and warns.
"""

from __future__ import annotations

import importlib.util
import logging
import secrets
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import torch
from torch import nn
from torch.utils.data import DataLoader

from .bookkeeping import BookkeepingClipper, unsupported_layers
from .config import DPConfig, GradSampleRequest

logger = logging.getLogger(__name__)

#: How per-example gradients are clipped (see the module docstring).
GradSampleMode = Literal["hooks", "ghost", "bookkeeping"]
_MODES: tuple[str, ...] = ("hooks", "ghost", "bookkeeping")
#: Per-module state Opacus's hooks keep between a forward and its backward pass.
_MODULE_HOOK_ATTRS = ("activations", "max_batch_len")


def secure_noise_generator() -> torch.Generator:
    """Return a CPU generator seeded with 63 bits from the OS CSPRNG (``secrets``)."""
    return torch.Generator().manual_seed(secrets.randbits(63))


def resolve_mode(module: nn.Module, requested: GradSampleRequest) -> GradSampleMode:
    """Return the mode a request means for ``module``.

    Parameters
    ----------
    module : nn.Module
        The model to train.
    requested : {"auto", "hooks", "ghost", "bookkeeping"}
        ``"auto"`` picks ``"bookkeeping"`` when every trainable parameter sits in a
        ``Linear`` / ``Embedding`` layer, else ``"hooks"``; the others are returned as is.

    Returns
    -------
    GradSampleMode
        The concrete mode.

    Raises
    ------
    ValueError
        If ``requested`` is not a known mode.
    """
    if requested == "auto":
        return "hooks" if unsupported_layers(module) else "bookkeeping"
    if requested not in _MODES:
        raise ValueError(f"grad_sample_mode must be one of {['auto', *_MODES]}")
    return requested


class _GivenLosses:
    """Identity "criterion" for Opacus's ghost wrapper: callers bring per-example losses."""

    reduction = "mean"

    def __call__(self, losses: torch.Tensor) -> torch.Tensor:
        if self.reduction == "none":
            return losses
        return losses.sum() if self.reduction == "sum" else losses.mean()


@dataclass
class PrivateTraining:
    """What a DP-SGD training loop needs, plus the accounting of the steps taken.

    Use ``module`` (the caller's model, with the mode's machinery attached),
    ``data_loader`` (Poisson sampling with rate ``sample_rate``) and ``step`` (each
    example's gradient clipped to ``max_grad_norm``, Gaussian noise of std
    ``noise_multiplier * max_grad_norm`` added to their sum, divided by the expected batch
    size, then the wrapped optimizer's update; ``optimizer`` is Opacus's DP optimizer).
    ``mode`` is the concrete clipping mode. Call ``close()`` (or use it as a context
    manager) to detach everything.
    """

    module: nn.Module
    optimizer: torch.optim.Optimizer
    data_loader: DataLoader[Any]
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    expected_batch_size: int
    mode: GradSampleMode = "hooks"
    _engine: Any = field(default=None, repr=False)
    _hooks: Any = field(default=None, repr=False)
    _criterion: Any = field(default=None, repr=False)
    _clipper: BookkeepingClipper | None = field(default=None, repr=False)
    _clipped: bool = field(default=False, repr=False)

    @property
    def history(self) -> list[tuple[float, float, int]]:
        """``(σ, q, steps)`` entries of the optimizer steps taken so far."""
        return [(float(s), float(q), int(n)) for s, q, n in self._engine.accountant.history]

    @property
    def steps(self) -> int:
        """Optimizer steps taken so far (empty Poisson batches included)."""
        return sum(n for _, _, n in self.history)

    def backward(self, per_example_loss: torch.Tensor) -> None:
        """Put the sum of clipped per-example gradients where the optimizer expects it.

        Parameters
        ----------
        per_example_loss : torch.Tensor
            ``(batch,)`` losses of the batch just computed, one per example, not reduced;
            ``torch.zeros(0)`` for an empty Poisson batch (a noise-only step).

        Raises
        ------
        ValueError
            If the loss is not one-dimensional.
        """
        if per_example_loss.dim() != 1:
            raise ValueError("per_example_loss must have shape (batch,)")
        empty = per_example_loss.shape[0] == 0
        params = [p for p in self.module.parameters() if p.requires_grad] if empty else []
        if self.mode == "bookkeeping":
            assert self._clipper is not None
            self._clipper.backward(per_example_loss)
        elif self.mode == "ghost" and empty:
            for param in params:
                param.grad = torch.zeros_like(param)
        elif empty:
            for param in params:  # what Opacus's hooks leave for an empty batch
                no_samples = torch.zeros((0, *param.shape), dtype=param.dtype)
                param.grad_sample = no_samples  # type: ignore[attr-defined]
        else:
            with warnings.catch_warnings():
                # Token inputs carry no gradient; Opacus's hooks warn about it every step.
                warnings.filterwarnings("ignore", message="Full backward hook is firing")
                if self.mode == "ghost":
                    self._criterion(per_example_loss).backward()
                else:
                    torch.autograd.backward(per_example_loss.mean())
        self._clipped = True

    def step(self, per_example_loss: torch.Tensor) -> None:
        """One DP-SGD step: ``zero_grad``, ``backward(per_example_loss)``, ``step``."""
        self.optimizer.zero_grad()
        self.backward(per_example_loss)
        self.optimizer.step()

    def _check_clipped(self, hook: Callable[[Any], None] | None) -> Callable[[Any], None]:
        """Wrap the optimizer's pre-update hook so unclipped gradients are refused."""

        def guarded(optimizer: Any) -> None:
            if not self._clipped:
                raise RuntimeError(
                    f"{self.mode} mode: call PrivateTraining.backward(per_example_loss) "
                    "before optimizer.step(); loss.backward() leaves gradients unclipped"
                )
            self._clipped = False
            if hook is not None:
                hook(optimizer)

        return guarded

    def close(self) -> None:
        """Remove the per-example gradient machinery and any state it left on the module.

        Also after a failed step: activations captured by a forward pass whose backward
        never ran would otherwise corrupt the next private training of the same module.
        """
        if self._hooks is not None:
            self._hooks.cleanup()
            self._hooks = None
        if self._clipper is not None:
            self._clipper.close()
            self._clipper = None
        for submodule in self.module.modules():
            for attr in _MODULE_HOOK_ATTRS:
                if hasattr(submodule, attr):
                    delattr(submodule, attr)
        for param in self.module.parameters():
            if hasattr(param, "summed_grad"):
                delattr(param, "summed_grad")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class DPTrainer:
    """Builds private training objects from a ``DPConfig``.

    Parameters
    ----------
    config : DPConfig
        σ (``noise_multiplier``), C (``max_grad_norm``), whether DP is enabled and the
        requested ``grad_sample_mode``.
    grad_sample_mode : {"auto", "hooks", "ghost", "bookkeeping"} or None
        Overrides ``config.grad_sample_mode`` (see the module docstring); ``None`` keeps it.

    Raises
    ------
    ValueError
        If ``grad_sample_mode`` is not a known mode.
    """

    def __init__(
        self, config: DPConfig, *, grad_sample_mode: GradSampleRequest | None = None
    ) -> None:
        requested = config.grad_sample_mode if grad_sample_mode is None else grad_sample_mode
        if requested not in ("auto", *_MODES):
            raise ValueError(f"grad_sample_mode must be one of {['auto', *_MODES]}")
        self.config = config
        self.grad_sample_mode: GradSampleRequest = requested

    def make_private(
        self,
        *,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        data_loader: DataLoader[Any],
        generator: torch.Generator | None = None,
    ) -> PrivateTraining:
        """Make a model, its optimizer and its data loader differentially private.

        Parameters
        ----------
        module : nn.Module
            The model; it stays the object to call and to read weights from.
        optimizer : torch.optim.Optimizer
            Optimizer over exactly ``module``'s parameters.
        data_loader : DataLoader
            Loader over one example per subject; its ``batch_size`` is the expected
            Poisson batch size and its ``generator`` (if any) drives sampling.
        generator : torch.Generator or None
            Source of the DP noise. ``None`` (default) uses OS-seeded randomness; an
            explicit generator makes noise reproducible (experiments only; warns).

        Returns
        -------
        PrivateTraining
            Module, DP optimizer, Poisson data loader, the mode and the step history.

        Raises
        ------
        ValueError
            If DP is disabled in the config, the optimizer's parameters are not the
            module's, or ``"bookkeeping"`` is asked for a model it cannot handle.
        """
        if not self.config.enabled:
            raise ValueError("DP is disabled in DPConfig; train without DPTrainer")
        mode = resolve_mode(module, self.grad_sample_mode)
        if mode == "bookkeeping" and (problems := unsupported_layers(module)):
            raise ValueError("bookkeeping mode cannot handle: " + "; ".join(problems))
        secure_mode = generator is None and importlib.util.find_spec("torchcsprng") is not None
        if generator is not None:
            warnings.warn(
                "DP noise drawn from an explicit generator is reproducible: "
                "for experiments only, never for production releases",
                stacklevel=2,
            )
        noise = None if secure_mode else (generator or secure_noise_generator())
        engine = _new_engine(secure_mode=secure_mode)
        private = _attach(
            engine,
            mode=mode,
            module=module,
            optimizer=optimizer,
            data_loader=data_loader,
            config=self.config,
            noise=noise,
        )
        logger.debug(
            "private training (%s): sigma=%.3f C=%.3f q=%.4f expected batch %d",
            mode,
            private.noise_multiplier,
            private.max_grad_norm,
            private.sample_rate,
            private.expected_batch_size,
        )
        return private


def _attach(
    engine: Any,
    *,
    mode: GradSampleMode,
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    data_loader: DataLoader[Any],
    config: DPConfig,
    noise: torch.Generator | None,
) -> PrivateTraining:
    """Run Opacus's ``make_private`` for ``mode`` and wrap the result."""
    criterion: Any = None
    made = engine.make_private(
        module=module,
        optimizer=optimizer,
        data_loader=data_loader,
        criterion=_GivenLosses(),
        noise_multiplier=config.noise_multiplier,
        max_grad_norm=config.max_grad_norm,
        poisson_sampling=True,
        loss_reduction="mean",
        grad_sample_mode="hooks" if mode == "hooks" else "ghost",
        noise_generator=noise,
        wrap_model=False,
    )
    if mode == "hooks":
        hooks, dp_optimizer, dp_loader = made
    else:
        hooks, dp_optimizer, criterion, dp_loader = made
    clipper = None
    if mode == "bookkeeping":
        # Keep Opacus's sampler, accountant hook and noise-only optimizer class; clip with
        # one backward pass instead of its ghost hooks, and noise with a lean step.
        hooks.cleanup()
        hooks = None
        clipper = BookkeepingClipper(module, max_grad_norm=config.max_grad_norm)
        from .noisy_sum import NoisySumOptimizer  # imports Opacus: only when training

        dp_optimizer = NoisySumOptimizer.replacing(dp_optimizer)
    private = PrivateTraining(
        module=module,
        optimizer=dp_optimizer,
        data_loader=dp_loader,
        noise_multiplier=config.noise_multiplier,
        max_grad_norm=config.max_grad_norm,
        sample_rate=1.0 / len(dp_loader),
        expected_batch_size=int(dp_optimizer.expected_batch_size),
        mode=mode,
        _engine=engine,
        _hooks=hooks,
        _criterion=criterion,
        _clipper=clipper,
    )
    if mode != "hooks":
        dp_optimizer.step_hook = private._check_clipped(dp_optimizer.step_hook)
    return private


def _new_engine(*, secure_mode: bool) -> Any:
    """Return a fresh Opacus engine (its accountant only records the step history)."""
    from opacus import PrivacyEngine

    with warnings.catch_warnings():
        # Opacus warns that secure RNG is off; our default noise is OS-seeded instead.
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        return PrivacyEngine(accountant="rdp", secure_mode=secure_mode)
