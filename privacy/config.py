"""Section models for privacy settings: plain frozen pydantic models owned by this room.

Processes compose them into their one settings object (``ClientSettings``) or parse them
once from Flower's run config; the privacy room itself never reads the environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: Per-example clipping mode asked of ``DPTrainer`` (``privacy.dp``): ``"hooks"`` (Opacus's
#: per-example gradients), ``"ghost"`` (Opacus's ghost clipping, two backward passes),
#: ``"bookkeeping"`` (ours: one backward pass, ``Linear``/``Embedding`` layers only) or
#: ``"auto"`` (``"bookkeeping"`` when the model allows it, else ``"hooks"``).
GradSampleRequest = Literal["auto", "hooks", "ghost", "bookkeeping"]


class DPConfig(BaseModel):
    """Differential-privacy settings of local DP-SGD training on an edge.

    Parameters
    ----------
    enabled : bool
        Train with DP-SGD (True) or without any privacy guarantee (False; experiments only).
    noise_multiplier : float
        σ: Gaussian noise std divided by the clipping norm, per optimizer step.
    max_grad_norm : float
        C: each example's gradient is clipped to this L2 norm before noise is added.
    delta : float
        δ of the reported (ε, δ) guarantee: the probability mass allowed to fail pure
        ε-DP. Choose it well below 1/n for n subjects.
    accountant : {"prv", "rdp"}
        Accountant used for the reported ε (PRV is tighter; RDP is a conservative check).
    max_epsilon : float or None
        Budget on the *cumulative* ε of one model on one edge, across rounds and runs;
        training stops before a release would exceed it. ``None`` means no budget.
    batch_size : int
        Expected (Poisson) batch size; the sample rate is ``batch_size / n``.
    local_epochs : int
        Passes over the local data per federated round.
    learning_rate : float
        Learning rate of the local optimizer.
    optimizer : {"sgd", "adam"}
        The local optimizer applied to each step's gradient (the noised, clipped average
        under DP: post-processing, no privacy cost). Plain SGD by default; Adam adapts the
        step per coordinate, which helps sparse models trained without noise.
    weight_decay : float
        Decoupled weight decay of the local optimizer (shrinks weights toward 0 each step;
        data-independent, so no privacy cost).
    grad_sample_mode : {"hooks", "auto", "ghost", "bookkeeping"}
        How per-example gradients are clipped; all modes are exact and give the same
        guarantee, they differ in speed (see ``privacy.dp``). ``"ghost"`` and
        ``"bookkeeping"`` need the per-example training loop (``PrivateTraining.step``);
        ``"auto"`` (default) picks the fastest exact mode for the model; ``"hooks"`` also
        accepts Opacus's ``loss.backward()`` loop.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    noise_multiplier: float = Field(default=1.0, ge=0.0)
    max_grad_norm: float = Field(default=1.0, gt=0.0)
    delta: float = Field(default=1e-5, gt=0.0, lt=1.0)
    accountant: Literal["prv", "rdp"] = "prv"
    max_epsilon: float | None = Field(default=None, gt=0.0)
    batch_size: int = Field(default=64, ge=1)
    local_epochs: int = Field(default=1, ge=1)
    learning_rate: float = Field(default=2.0, gt=0.0)
    optimizer: Literal["sgd", "adam"] = "sgd"
    weight_decay: float = Field(default=0.0, ge=0.0)
    grad_sample_mode: GradSampleRequest = "auto"


class PIIConfig(BaseModel):
    """Settings of PII detection and masking at the edge.

    Parameters
    ----------
    languages : tuple of {"zh", "en"}
        Languages the detector is built for.
    score_threshold : float
        Minimum recognizer score for a span to be masked.
    entities : tuple[str, ...] or None
        Entity types to detect; ``None`` means every supported type.
    deny_names : tuple[str, ...]
        Extra words that must never be treated as person names (brands, products).
    allow_names : tuple[str, ...]
        Known customer names to always recognise as persons.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    languages: tuple[Literal["zh", "en"], ...] = ("zh", "en")
    score_threshold: float = Field(default=0.35, ge=0.0, le=1.0)
    entities: tuple[str, ...] | None = None
    deny_names: tuple[str, ...] = ()
    allow_names: tuple[str, ...] = ()
