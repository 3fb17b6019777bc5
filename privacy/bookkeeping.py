"""Exact per-example gradient clipping in one backward pass ("book-keeping").

Opacus's ghost clipping needs two backward passes: one to get per-example gradient norms,
one to back-propagate the re-weighted loss. For models whose parameters all live in
``nn.Linear`` and ``nn.Embedding`` layers the second pass is redundant: a layer's
per-example gradient is a function of its input ``a`` and of the gradient ``g`` of the loss
with respect to its output, so once both are known the clipped sum can be formed directly
(Bu, Wang, Zha, Karypis, "Differentially private optimization on large model at small
cost", ICML 2023). ``BookkeepingClipper`` therefore

1. records each call's input and output with forward hooks,
2. asks autograd for the output gradients only (``torch.autograd.grad``: parameter
   gradients are never formed, which saves the half of a backward pass),
3. computes every example's exact gradient norm over all layers,
4. forms Σ_i min(1, C / (‖∇ℓ_i‖ + 1e-6)) ∇ℓ_i layer by layer into ``p.grad``.

Norms per layer type, for example i (``T`` positions or calls of a layer):

* ``Linear``, ``T = 1``: ‖g‖²‖a‖² for the weight, ‖g‖² for the bias;
* ``Linear``, ``T > 1`` (sequences, recurrent cells called once per step): the per-example
  gradient Σ_t g_t a_tᵀ is formed when ``p·d ≤ T·(p + d)``, else the ghost identity
  ‖Σ_t g_t a_tᵀ‖² = Σ_{t,s} (g_t·g_s)(a_t·a_s) is used;
* ``Embedding``: Σ over distinct ids v in the example of ‖Σ_{t: id_t = v} g_t‖² (padding
  positions excluded): the gradient of a pooled bag is sparse, and without repeated ids in
  an example this is just Σ_t ‖g_t‖², never a batch × vocabulary × dim tensor.

All of it is exact (no approximation of the clipping); the clip factor is Opacus's, so
results match its modes to rounding. Like every per-example method it assumes that example
i's loss depends only on row i of every layer's input (no batch statistics, no attention
across examples), which holds for the edge models. Noise is not added here: ``privacy.dp`` hands the
clipped sum to Opacus's noise-only optimizer.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

#: Added to norms before dividing, exactly as Opacus does.
_CLIP_EPS = 1e-6


def _plain(module: nn.Module, base: type[nn.Module]) -> bool:
    """Whether ``module`` is ``base`` or a subclass that keeps ``base.forward``."""
    return isinstance(module, base) and type(module).forward is base.forward


def _supported(module: nn.Module) -> bool:
    return _plain(module, nn.Linear) or _plain(module, nn.Embedding)


def unsupported_layers(module: nn.Module) -> list[str]:
    """Return why ``module`` cannot use book-keeping clipping (empty list: it can).

    Every trainable parameter must belong to exactly one plain ``nn.Linear`` or
    ``nn.Embedding`` (subclasses that keep the parent's ``forward``, such as Opacus's
    ``RNNLinear`` inside ``DPGRU``, qualify); embeddings must not scale gradients by
    batch frequency (that couples examples).

    Parameters
    ----------
    module : nn.Module
        The model.

    Returns
    -------
    list[str]
        One line per problem, naming module types and parameter names only.
    """
    problems: list[str] = []
    owner: dict[int, str] = {}
    for name, sub in module.named_modules():
        own = [(n, p) for n, p in sub.named_parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        supported = _supported(sub)
        if isinstance(sub, nn.Embedding) and sub.scale_grad_by_freq:
            problems.append(f"{name or 'model'}: Embedding with scale_grad_by_freq")
        for pname, param in own:
            if supported and id(param) in owner:
                problems.append(f"{name}.{pname}: shared with {owner[id(param)]}")
            elif supported:
                owner[id(param)] = f"{name}.{pname}"
    for name, param in module.named_parameters():
        if param.requires_grad and id(param) not in owner:
            holder = name.rsplit(".", 1)[0] if "." in name else "model"
            kind = type(module.get_submodule(holder)).__name__ if holder != "model" else ""
            problems.append(f"{name}: held by unsupported layer {kind or type(module).__name__}")
    return problems


@dataclass
class _Layer:
    """One hooked layer: its calls since the last backward, and the maths for its kind."""

    module: nn.Module
    calls: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)


class BookkeepingClipper:
    """Per-example clipping with a single (partial) backward pass, exact.

    Parameters
    ----------
    module : nn.Module
        The model; its trainable parameters must all sit in plain ``Linear`` / ``Embedding``
        layers (see ``unsupported_layers``), with the batch as the first dimension of
        every layer input.
    max_grad_norm : float
        C: each example's whole gradient is scaled to at most this L2 norm.

    Raises
    ------
    ValueError
        If ``max_grad_norm`` is not positive or the model has unsupported layers (the
        message lists them all).
    """

    def __init__(self, module: nn.Module, *, max_grad_norm: float) -> None:
        if max_grad_norm <= 0:
            raise ValueError("max_grad_norm must be positive")
        problems = unsupported_layers(module)
        if problems:
            raise ValueError("book-keeping clipping cannot handle: " + "; ".join(problems))
        self.module = module
        self.max_grad_norm = float(max_grad_norm)
        self._params = [p for p in module.parameters() if p.requires_grad]
        self._embeddings = any(isinstance(m, nn.Embedding) for m in module.modules())
        self._layers: list[_Layer] = []
        self._handles: list[Any] = []
        for sub in module.modules():
            if _supported(sub) and any(p.requires_grad for p in sub.parameters(recurse=False)):
                layer = _Layer(sub)
                self._layers.append(layer)
                self._handles.append(sub.register_forward_hook(self._capture_hook(layer)))

    @staticmethod
    def _capture_hook(layer: _Layer) -> Callable[..., None]:
        """Return a forward hook that records a training call's input and output."""

        def hook(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
            if module.training and torch.is_grad_enabled() and output.requires_grad:
                layer.calls.append((inputs[0].detach(), output))

        return hook

    def clear(self) -> None:
        """Forget recorded calls (e.g. of a forward pass whose loss is never used)."""
        for layer in self._layers:
            layer.calls.clear()

    def close(self) -> None:
        """Remove the hooks and recorded calls."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.clear()

    def backward(self, per_example_loss: torch.Tensor) -> torch.Tensor:
        """Add the sum of clipped per-example gradients to each parameter's ``grad``.

        Parameters
        ----------
        per_example_loss : torch.Tensor
            ``(batch,)`` losses of the last forward pass, one per example (not reduced).

        Returns
        -------
        torch.Tensor
            ``(batch,)`` unclipped per-example gradient norms (not private: never log,
            report or release them).

        Raises
        ------
        ValueError
            If the loss is not one-dimensional, no training forward pass was recorded, or
            a layer input's first dimension is not the batch.
        """
        if per_example_loss.dim() != 1:
            raise ValueError("per_example_loss must have shape (batch,)")
        batch = per_example_loss.shape[0]
        try:
            if batch == 0:
                self._add_grads({id(p): torch.zeros_like(p) for p in self._params})
                return per_example_loss.detach()
            return self._clip(per_example_loss, batch)
        finally:
            self.clear()

    def _clip(self, per_example_loss: torch.Tensor, batch: int) -> torch.Tensor:
        """Run steps 2-4 of the module docstring for a non-empty batch."""
        calls = [(layer, a, out) for layer in self._layers for a, out in layer.calls]
        if not calls:
            raise ValueError(
                "no forward pass was recorded since the last backward: run the model in "
                "training mode with gradients enabled"
            )
        grads = torch.autograd.grad(
            per_example_loss.sum(), [out for _, _, out in calls], allow_unused=True
        )
        # Output gradients no other returned gradient shares memory with may be scaled in
        # place (saves a batch × positions × dim temporary for embeddings; only embedding
        # kernels ask, so models without embeddings skip the count).
        storages: Counter[int] = Counter()
        if self._embeddings:
            storages.update(g.untyped_storage().data_ptr() for g in grads if g is not None)
        books: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for (layer, a, _), g in zip(calls, grads, strict=True):
            if g is None:  # not on the loss's graph (unused head or a stale forward)
                continue
            if a.shape[0] != batch or g.shape[0] != batch:
                raise ValueError("every layer input must have the batch as first dimension")
            books.setdefault(id(layer), []).append((a, g))
        kernels = [
            _kernel(layer.module, books[id(layer)], storages=storages)
            for layer in self._layers
            if id(layer) in books
        ]
        squared = kernels[0].squared_norms if kernels else torch.zeros(batch)
        for kernel in kernels[1:]:
            squared = squared + kernel.squared_norms
        norms = squared.sqrt()
        coef = (self.max_grad_norm / (norms + _CLIP_EPS)).clamp_(max=1.0)
        clipped: dict[int, torch.Tensor] = {}
        for kernel in kernels:
            for param, grad in kernel.clipped_sum(coef):
                clipped[id(param)] = grad
        self._add_grads(clipped)
        return norms

    def _add_grads(self, grads: dict[int, torch.Tensor]) -> None:
        """Add each parameter's clipped sum to its ``grad`` (zero when it had none)."""
        for param in self._params:
            grad = grads.get(id(param))
            if grad is None:
                grad = torch.zeros_like(param)
            if param.grad is None:
                param.grad = grad
            else:
                param.grad.add_(grad)


class _Kernel:
    """Per-example squared norms and clipped sums of one layer's parameters."""

    squared_norms: torch.Tensor

    def clipped_sum(self, coef: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Return ``(parameter, Σ_i coef_i ∇_i)`` pairs for the layer's trainable parameters."""
        raise NotImplementedError


def _kernel(
    module: nn.Module,
    calls: list[tuple[torch.Tensor, torch.Tensor]],
    *,
    storages: Counter[int],
) -> _Kernel:
    if isinstance(module, nn.Embedding):
        g = calls[0][1]
        owned = len(calls) > 1 or (
            g.is_contiguous() and storages[g.untyped_storage().data_ptr()] == 1
        )
        return _EmbeddingKernel(module, calls, owned=owned)
    if isinstance(module, nn.Linear):
        return _LinearKernel(module, calls)
    raise TypeError(f"no book-keeping kernel for {type(module).__name__}")  # pragma: no cover


class _LinearKernel(_Kernel):
    """``y = a Wᵀ + b`` applied to ``(batch, ..., d)`` inputs, possibly several times."""

    def __init__(self, layer: nn.Linear, calls: list[tuple[torch.Tensor, torch.Tensor]]):
        self.layer = layer
        self.train_w, self.train_b = layer.weight.requires_grad, _trains_bias(layer)
        self.per_example: torch.Tensor | None = None
        if len(calls) == 1 and calls[0][1].dim() == 2:
            self._flat(*calls[0])
        else:
            self._sequence(calls)

    def _flat(self, a: torch.Tensor, g: torch.Tensor) -> None:
        """One call on ``(batch, d)`` inputs: ‖g_i a_iᵀ‖² = ‖g_i‖²‖a_i‖²."""
        self.a, self.g, self.g_sum = _as(a, g), g, g
        g2 = torch.linalg.vecdot(g, g)
        if self.train_w:  # ‖g_i‖²‖a_i‖² (+ ‖g_i‖² for the bias) in one product
            a2 = torch.linalg.vecdot(self.a, self.a)
            self.squared_norms = g2 * (a2 + 1.0) if self.train_b else g2 * a2
        else:
            self.squared_norms = g2 if self.train_b else torch.zeros_like(g2)

    def _sequence(self, calls: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """``T`` positions per example: form g aᵀ per example or use the ghost identity."""
        batch = calls[0][0].shape[0]
        d, p = self.layer.in_features, self.layer.out_features
        a = _stack([_as(x.reshape(batch, -1, d), g) for x, g in calls])
        g = _stack([g.reshape(batch, -1, p) for _, g in calls])
        self.a, self.g = a, g
        squared = torch.zeros(batch, dtype=g.dtype)
        if self.train_w and p * d <= a.shape[1] * (p + d):
            self.per_example = torch.einsum("btp,btd->bpd", g, a)
            squared = squared + self.per_example.square().sum((1, 2))
        elif self.train_w:
            gg = torch.bmm(g, g.transpose(1, 2))
            aa = torch.bmm(a, a.transpose(1, 2))
            squared = squared + (gg * aa).sum((1, 2))
        self.g_sum = g.sum(1)
        if self.train_b:
            squared = squared + torch.linalg.vecdot(self.g_sum, self.g_sum)
        self.squared_norms = squared

    def clipped_sum(self, coef: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        layer, a, g = self.layer, self.a, self.g
        out: list[tuple[torch.Tensor, torch.Tensor]] = []
        if self.train_w:
            if self.per_example is not None:
                weight = torch.einsum("b,bpd->pd", coef, self.per_example)
            elif g.dim() == 2:
                weight = torch.mm((g * coef.unsqueeze(1)).t(), a)
            else:
                scaled = g * coef[:, None, None]
                weight = scaled.reshape(-1, g.shape[2]).T @ a.reshape(-1, a.shape[2])
            out.append((layer.weight, _as(weight, layer.weight)))
        if self.train_b:
            out.append((layer.bias, _as(coef @ self.g_sum, layer.bias)))
        return out


def _as(tensor: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``tensor`` in ``like``'s dtype (no copy when it already is)."""
    return tensor if tensor.dtype == like.dtype else tensor.to(like.dtype)


def _trains_bias(layer: nn.Linear) -> bool:
    return layer.bias is not None and layer.bias.requires_grad


class _EmbeddingKernel(_Kernel):
    """Row lookups ``E[ids]`` of ``(batch, ...)`` ids, possibly several times."""

    def __init__(
        self,
        layer: nn.Embedding,
        calls: list[tuple[torch.Tensor, torch.Tensor]],
        *,
        owned: bool,
    ):
        batch, dim = calls[0][0].shape[0], layer.embedding_dim
        ids = _stack([x.reshape(batch, -1) for x, _ in calls])
        g = _stack([g.reshape(batch, -1, dim) for _, g in calls])
        self.layer, self.ids, self.g, self.owned = layer, ids, g, owned
        self.squared_norms = _embedding_squared_norms(ids, g, padding_idx=layer.padding_idx)

    def clipped_sum(self, coef: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        layer, g = self.layer, self.g
        factor = coef[:, None, None]
        scaled = (g.mul_(factor) if self.owned else g * factor).reshape(-1, g.shape[2])
        grad = torch.zeros_like(layer.weight).index_add_(0, self.ids.reshape(-1), scaled)
        if layer.padding_idx is not None:
            grad[layer.padding_idx] = 0.0  # nn.Embedding never updates the padding row
        return [(layer.weight, grad)]


def _stack(parts: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate per-call tensors along the position axis (no copy for one call)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def _embedding_squared_norms(
    ids: torch.Tensor, g: torch.Tensor, *, padding_idx: int | None
) -> torch.Tensor:
    """Σ_v ‖Σ_{t: id_t = v} g_t‖² per example, padding positions excluded."""
    per_position: torch.Tensor = torch.linalg.vector_norm(g, dim=-1).square_()
    if padding_idx is not None:
        per_position.masked_fill_(ids == padding_idx, 0.0)
    if not _may_repeat(ids, padding_idx=padding_idx):
        return per_position.sum(1)
    ordered, perm = ids.sort(dim=1)
    repeated = ordered[:, 1:] == ordered[:, :-1]
    if padding_idx is not None:
        repeated &= ordered[:, 1:] != padding_idx
    if not bool(repeated.any()):
        return per_position.sum(1)
    # Sum the gradients of equal ids of one example (segments of the sorted row).
    batch, width = ids.shape
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ~repeated
    segment = starts.reshape(-1).cumsum(0) - 1
    if padding_idx is not None:
        g = g * (ids != padding_idx).unsqueeze(-1).to(g.dtype)
    flat = g.gather(1, perm.unsqueeze(-1).expand_as(g)).reshape(-1, g.shape[2])
    sums = torch.zeros((int(segment[-1]) + 1, g.shape[2]), dtype=g.dtype)
    sums.index_add_(0, segment, flat)
    rows = torch.arange(batch).repeat_interleave(width)[starts.reshape(-1)]
    return torch.zeros(batch, dtype=g.dtype).index_add_(0, rows, sums.square().sum(1))


def _may_repeat(ids: torch.Tensor, *, padding_idx: int | None) -> bool:
    """Return False when each row's non-padding ids are strictly increasing (all distinct).

    A cheap O(batch × width) test that ``encode_texts``-style rows (sorted, padded at the
    end) pass; anything else takes the exact sorting path.
    """
    if ids.shape[1] < 2:
        return False
    if padding_idx is not None:
        top = torch.iinfo(ids.dtype).max
        ids = torch.where(ids == padding_idx, torch.full_like(ids, top), ids)
        later = ids[:, 1:]
        return not bool(((later > ids[:, :-1]) | (later == top)).all())
    return not bool((ids[:, 1:] > ids[:, :-1]).all())
