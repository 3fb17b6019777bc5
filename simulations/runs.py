"""The settings a simulation compares, each scored on the same held-out set.

- ``federated`` / ``federated-dp``: the real ``ServerApp`` (``server.build_server_app``:
  strategy per ``dp-mode``, server momentum) and the simulation ``ClientApp``
  (``simulations.sim_client``) on the in-process engine or the Flower Simulation Engine
  (Ray). The global model is scored on the shared held-out set after every round through
  Flower's server-side ``evaluate_fn``; each edge's ε comes from its train reply.
- ``central`` / ``central-dp``: one model trained on the pooled training data, with the
  same batch size, learning rate and number of epochs (``rounds × local-epochs``); the DP
  version's σ is calibrated to the same target ε over its whole plan.
- ``local-only``: each edge trains alone (non-private) for the same epochs; the metrics
  are the mean over edges.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from flwr.app import ArrayRecord, MetricRecord
from torch.utils.data import TensorDataset

from client import calibrated_dp_config
from models import parse_run_config
from privacy import DPConfig, compute_epsilon
from server import build_server_app

from .federation import _tame_flower_logging, run_on_ray
from .inprocess import run_in_process
from .learners import Learner, load_weights, train_epochs, weights_of
from .metrics import classification_metrics
from .sim_client import arrays_of, build_simulation_client_app, dp_config

logger = logging.getLogger(__name__)

Engine = Literal["inprocess", "ray"]
#: Progress callback: ``(units done, units total)``.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class TaskData:
    """A task's data, ready to train: per-edge partitions and the shared held-out set.

    Parameters
    ----------
    learner : Learner
        The model family.
    partitions : list[TensorDataset]
        Each edge's training examples.
    test : TensorDataset
        Held-out examples every setting is scored on.
    level : {"example", "user"}
        What one DP-SGD example is: a single example, or one subject's example.
    """

    learner: Learner
    partitions: list[TensorDataset]
    test: TensorDataset
    level: Literal["example", "user"] = "example"

    def pooled(self) -> TensorDataset:
        """All edges' training examples in one dataset (the centralized baselines)."""
        tensors = [
            torch.cat([p.tensors[i] for p in self.partitions])
            for i in range(len(self.partitions[0].tensors))
        ]
        return TensorDataset(*tensors)


@dataclass(frozen=True)
class Plan:
    """Training hyper-parameters shared by every setting of a run.

    Parameters
    ----------
    rounds, local_epochs, batch_size : int
        Federated rounds, epochs per round, expected batch size.
    learning_rate : float
        SGD learning rate (edges and centralized).
    max_grad_norm : float
        DP-SGD clipping norm C.
    delta : float
        δ of every reported (ε, δ).
    server_learning_rate, server_momentum : float
        FedAvgM server step (post-processing, no privacy cost).
    central_clipping_norm : float
        C_c of ``--central-dp``.
    accountant : {"prv", "rdp"}
        Accountant of calibration and reported ε. ``rdp`` (default here) is fast and
        conservative (an upper bound); ``prv`` is tighter but takes seconds per evaluation.
    seed : int
        Seed of initialisation, data order, sampling and (simulated) noise.
    """

    rounds: int
    local_epochs: int
    batch_size: int
    learning_rate: float
    max_grad_norm: float = 1.0
    delta: float = 1e-5
    server_learning_rate: float = 1.0
    server_momentum: float = 0.0
    central_clipping_norm: float = 1.0
    accountant: Literal["prv", "rdp"] = "rdp"
    seed: int = 0


@dataclass
class SettingResult:
    """One setting's outcome.

    Parameters
    ----------
    setting : str
        ``central``, ``central-dp``, ``federated``, ``federated-dp`` or ``local-only``.
    target_epsilon : float or None
        The ε the setting's noise was calibrated to (``None``: not private or fixed σ).
    metrics : dict[str, float]
        Final accuracy, macro-F1 and AUC on the held-out set.
    curve : list[dict[str, float]]
        Per round (round 0 = initial model): ``round`` plus the metrics.
    epsilon_per_edge : dict[str, float | None]
        Cumulative ε of each edge (``None``: no noise, ε = ∞) for federated settings; the
        single trainer's ε for ``central-dp``.
    noise_multiplier : float or None
        σ used (the largest over edges when they differ).
    seconds : float
        Wall time.
    """

    setting: str
    target_epsilon: float | None
    metrics: dict[str, float]
    curve: list[dict[str, float]] = field(default_factory=list)
    epsilon_per_edge: dict[str, float | None] = field(default_factory=dict)
    noise_multiplier: float | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def _finite(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def score(learner: Learner, model: torch.nn.Module, test: TensorDataset) -> dict[str, float]:
    """Return accuracy, macro-F1 and AUC of ``model`` on ``test``."""
    labels = test.tensors[-1].numpy().astype(np.int64)
    return classification_metrics(labels, learner.probabilities(model, test))


def seed_globals(seed: int) -> None:
    """Seed Python's and NumPy's global generators (Flower's sampling and central noise)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))


class _Recorder:
    """Captures the strategy's round summaries (per-edge rows) in memory."""

    def __init__(self) -> None:
        self.rounds: list[Any] = []
        self.status = ""

    def start(self, *, config: dict[str, Any], num_rounds: int) -> None:
        del config, num_rounds

    def record_round(self, summary: Any) -> None:
        self.rounds.append(summary)

    def finish(self, *, status: str) -> None:
        self.status = status


def run_federated_setting(
    data: TaskData,
    plan: Plan,
    *,
    dp_mode: Literal["local", "central", "off"],
    target_epsilon: float | None = None,
    noise_multiplier: float = 1.0,
    engine: Engine = "inprocess",
    progress: Progress | None = None,
) -> SettingResult:
    """Train federated over the partitions and score every round on the held-out set.

    Parameters
    ----------
    data : TaskData
        Partitions (one edge each) and held-out set.
    plan : Plan
        Shared hyper-parameters.
    dp_mode : {"local", "central", "off"}
        DP-SGD on each edge, client-level central DP, or none.
    target_epsilon : float or None
        Calibrate σ (local: per edge over its plan; central: σ_c over the rounds) to this
        cumulative ε; ``None`` uses ``noise_multiplier``.
    noise_multiplier : float
        Fixed σ (or σ_c) when no target is given.
    engine : {"inprocess", "ray"}
        In-process grid (deterministic, no Ray) or Flower's Simulation Engine.
    progress : Callable[[int, int], None] or None
        Called with ``(rounds done, rounds)`` after each round.

    Returns
    -------
    SettingResult
        Final metrics, per-round curve and each edge's ε.
    """
    started = time.perf_counter()
    edges = len(data.partitions)
    sigma_c = noise_multiplier
    if dp_mode == "central" and target_epsilon is not None:
        sigma_c = _calibrate_central(
            target_epsilon, rounds=plan.rounds, delta=plan.delta, accountant=plan.accountant
        )
    overrides: dict[str, Any] = {
        "num-server-rounds": plan.rounds,
        "local-epochs": plan.local_epochs,
        "batch-size": plan.batch_size,
        "learning-rate": plan.learning_rate,
        "max-grad-norm": plan.max_grad_norm,
        "target-delta": plan.delta,
        "accountant": plan.accountant,
        "dp-mode": dp_mode,
        "noise-multiplier": noise_multiplier,
        "target-epsilon": target_epsilon if dp_mode == "local" and target_epsilon else 0.0,
        "central-noise-multiplier": sigma_c,
        "central-clipping-norm": plan.central_clipping_norm,
        "server-learning-rate": plan.server_learning_rate,
        "server-momentum": plan.server_momentum,
        "min-nodes": edges,
        "seed": plan.seed,
    }
    learner = data.learner
    curve: list[dict[str, float]] = []
    model = learner.new_model(plan.seed)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        load_weights(model, {k: v.numpy() for k, v in arrays.items()})
        metrics = score(learner, model, data.test)
        curve.append({"round": float(server_round), **metrics})
        if progress is not None:
            progress(server_round, plan.rounds)
        return MetricRecord(dict(metrics))

    recorder = _Recorder()
    server_app = build_server_app(
        overrides,
        recorder_factory=lambda _config: recorder,
        initial=arrays_of(weights_of(learner.new_model(plan.seed))),
        evaluate_fn=evaluate,
    )
    client_app = build_simulation_client_app(
        partitions=data.partitions, learner=learner, overrides=overrides
    )
    seed_globals(plan.seed)
    _tame_flower_logging()
    if engine == "ray":
        run_on_ray(server_app=server_app, client_app=client_app, num_nodes=edges)
    else:
        run_in_process(server_app=server_app, client_app=client_app, num_nodes=edges)
    epsilons = _edge_epsilons(recorder)
    sigma = _edge_sigma(data, overrides) if dp_mode == "local" else sigma_c
    name = "federated" if dp_mode == "off" else "federated-dp"
    final = curve[-1] if curve else {"accuracy": 0.0, "macro_f1": 0.0, "auc": 0.5}
    return SettingResult(
        setting=name,
        target_epsilon=target_epsilon if dp_mode != "off" else None,
        metrics={k: final[k] for k in ("accuracy", "macro_f1", "auc")},
        curve=curve,
        epsilon_per_edge=epsilons,
        noise_multiplier=None if dp_mode == "off" else sigma,
        seconds=round(time.perf_counter() - started, 2),
        extra={"dp_mode": dp_mode, "status": recorder.status},
    )


def _calibrate_central(
    target_epsilon: float, *, rounds: int, delta: float, accountant: Literal["prv", "rdp"]
) -> float:
    """σ_c of ``rounds`` client-level releases without amplification (q = 1) at the target."""
    from client import calibrate_noise_multiplier

    return float(
        calibrate_noise_multiplier(
            target_epsilon=target_epsilon,
            sample_rate=1.0,
            steps=rounds,
            delta=delta,
            accountant=accountant,
        )
    )


def _edge_sigma(data: TaskData, overrides: dict[str, Any]) -> float:
    """Return the largest σ any edge trains with (smaller edges need more noise)."""
    config = parse_run_config({}, overrides)
    dp = dp_config(config)
    if config.target_epsilon <= 0.0:
        return float(dp.noise_multiplier)
    smallest = min(len(p) for p in data.partitions)
    calibrated: DPConfig = calibrated_dp_config(
        dp,
        target_epsilon=config.target_epsilon,
        num_examples=smallest,
        rounds=config.num_server_rounds,
    )
    return float(calibrated.noise_multiplier)


def _edge_epsilons(recorder: _Recorder) -> dict[str, float | None]:
    """Each edge's ε after its last training round (``None``: no noise)."""
    out: dict[str, float | None] = {}
    for summary in recorder.rounds:
        if summary.phase != "train":
            continue
        for row in summary.edges:
            if row.get("edge") and "epsilon" in row:
                out[str(row["edge"])] = _finite(float(row["epsilon"]))
    return dict(sorted(out.items()))


def _dp(plan: Plan, *, enabled: bool, sigma: float = 0.0) -> DPConfig:
    return DPConfig(
        enabled=enabled,
        noise_multiplier=sigma,
        max_grad_norm=plan.max_grad_norm,
        delta=plan.delta,
        accountant=plan.accountant,
        batch_size=plan.batch_size,
        local_epochs=plan.local_epochs,
        learning_rate=plan.learning_rate,
    )


def run_central_setting(
    data: TaskData,
    plan: Plan,
    *,
    target_epsilon: float | None = None,
    progress: Progress | None = None,
) -> SettingResult:
    """Train one model on the pooled data; private (σ calibrated) when a target ε is given.

    Returns
    -------
    SettingResult
        ``central`` or ``central-dp``; a round is ``local-epochs`` epochs.
    """
    started = time.perf_counter()
    pooled = data.pooled()
    dp = _dp(plan, enabled=target_epsilon is not None, sigma=1.0)
    if target_epsilon is not None:
        dp = calibrated_dp_config(
            dp, target_epsilon=target_epsilon, num_examples=len(pooled), rounds=plan.rounds
        )
    model = data.learner.new_model(plan.seed)
    curve = [{"round": 0.0, **score(data.learner, model, data.test)}]
    history: list[tuple[float, float, int]] = []
    for server_round in range(1, plan.rounds + 1):
        _, steps = train_epochs(
            model, pooled, learner=data.learner, dp=dp, seed=plan.seed * 7919 + server_round
        )
        history.extend(steps)
        curve.append({"round": float(server_round), **score(data.learner, model, data.test)})
        if progress is not None:
            progress(server_round, plan.rounds)
    epsilon: dict[str, float | None] = {}
    if target_epsilon is not None:
        spent = compute_epsilon(history, delta=plan.delta, accountant=dp.accountant)
        epsilon["central"] = _finite(float(spent))
    final = curve[-1]
    return SettingResult(
        setting="central-dp" if target_epsilon is not None else "central",
        target_epsilon=target_epsilon,
        metrics={k: final[k] for k in ("accuracy", "macro_f1", "auc")},
        curve=curve,
        epsilon_per_edge=epsilon,
        noise_multiplier=dp.noise_multiplier if target_epsilon is not None else None,
        seconds=round(time.perf_counter() - started, 2),
    )


def run_local_only_setting(
    data: TaskData, plan: Plan, *, progress: Progress | None = None
) -> SettingResult:
    """Each edge trains alone (non-private) for ``rounds × local-epochs`` epochs.

    Returns
    -------
    SettingResult
        ``local-only``: metrics averaged over edges; ``extra["per_edge"]`` holds each.
    """
    started = time.perf_counter()
    dp = _dp(plan, enabled=False).model_copy(
        update={"local_epochs": plan.rounds * plan.local_epochs}
    )
    per_edge: list[dict[str, float]] = []
    for index, part in enumerate(data.partitions):
        model = data.learner.new_model(plan.seed)
        train_epochs(model, part, learner=data.learner, dp=dp, seed=plan.seed * 104729 + index)
        per_edge.append(score(data.learner, model, data.test))
        if progress is not None:
            progress(index + 1, len(data.partitions))
    mean = {k: float(np.mean([m[k] for m in per_edge])) for k in ("accuracy", "macro_f1", "auc")}
    return SettingResult(
        setting="local-only",
        target_epsilon=None,
        metrics=mean,
        seconds=round(time.perf_counter() - started, 2),
        extra={"per_edge": per_edge},
    )
