"""The settings a simulation compares, each scored on the same held-out set.

- ``federated`` / ``federated-dp``: the real ``ServerApp`` (``server.build_server_app``:
  strategy per ``dp-mode``, server momentum) and **the edge's own ClientApp**
  (``client.build_client_app`` with a ``client.PartitionSource``: the same handler, training
  loop, σ calibration, ledger and budget stop as a deployed edge) on the in-process engine or
  the Flower Simulation Engine (Ray). The global model is scored on the shared held-out set
  after every round through Flower's server-side ``evaluate_fn``; each edge's ε comes from
  its train reply.
- ``central`` / ``central-dp``: one model trained on the pooled training data with the same
  training loop (``client.learning.loop.train_round``), batch size, learning rate and
  number of epochs (``rounds × local-epochs``); the DP version's σ is calibrated to the
  same target ε over its whole plan.
- ``local-only``: each edge trains alone (non-private) for the same epochs; the metrics
  are the mean over edges.

Every setting is described by a typed ``models.RunConfig`` (``Plan.run_config``), never by
hand-typed hyphenated keys; the apps receive ``RunConfig.to_run_config()``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, MetricRecord
from torch.utils.data import TensorDataset

from client import PartitionSource, build_client_app
from client.learning.config import dp_config_from
from client.learning.loop import train_round
from client.learning.source import LearningSource
from models import RunConfig, get_weights
from models.learners import Learner
from privacy import DPConfig, calibrate_noise_multiplier, calibrated_dp_config, compute_epsilon
from server import build_server_app

from .attacks import AttackPlan, attack_mod, poisoned_partitions
from .faults import FaultPlan, FaultySource
from .federation import _tame_flower_logging, run_on_ray
from .inprocess import run_in_process
from .metrics import classification_metrics

logger = logging.getLogger(__name__)

Engine = Literal["inprocess", "ray"]
#: Progress callback: ``(units done, units total)``.
Progress = Callable[[int, int], None]
#: How a setting adds noise.
DPSetting = Literal["local", "central", "off"]


class TaskData(Protocol):
    """A task's data, ready to encode for any learner a setting asks for."""

    @property
    def task(self) -> Literal["behaviour", "text"]:
        """The task (the run config's ``task``)."""
        ...

    @property
    def edges(self) -> int:
        """Number of edges (partitions)."""
        ...

    @property
    def level(self) -> Literal["user", "example"]:
        """What one DP-SGD example protects."""
        ...

    def learner(self, config: RunConfig) -> Learner:
        """Return the learner a setting's run config describes, sized to the data."""
        ...

    def partitions(self, learner: Learner) -> list[TensorDataset]:
        """Return each edge's training examples encoded for ``learner``."""
        ...

    def holdouts(self, learner: Learner) -> list[TensorDataset] | None:
        """Return each edge's own held-out examples, or ``None`` (evaluate on training data)."""
        ...

    def test(self, learner: Learner) -> TensorDataset:
        """Return the shared held-out set encoded for ``learner``."""
        ...


def pooled(parts: list[TensorDataset]) -> TensorDataset:
    """All edges' examples in one dataset (the centralized settings)."""
    width = len(parts[0].tensors)
    return TensorDataset(*[torch.cat([p.tensors[i] for p in parts]) for i in range(width)])


@dataclass(frozen=True)
class Plan:
    """Training hyper-parameters shared by every setting of a run.

    Parameters
    ----------
    base : RunConfig
        The run config every setting starts from (task, rounds, epochs, batch size,
        learning rate, clipping, δ, accountant, server step, architecture, cutoff...).
    private_overrides : dict[str, Any]
        ``RunConfig`` fields that DP settings change (e.g. a smaller text vocabulary:
        DP noise grows with the number of parameters).
    """

    base: RunConfig
    private_overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def rounds(self) -> int:
        """Federated rounds."""
        rounds: int = self.base.num_server_rounds
        return rounds

    def run_config(
        self,
        *,
        dp_mode: DPSetting,
        target_epsilon: float | None = None,
        noise_multiplier: float = 1.0,
        central_noise_multiplier: float = 1.0,
        edges: int = 1,
        overrides: Mapping[str, Any] | None = None,
    ) -> RunConfig:
        """Return one setting's run config (a copy of ``base``).

        Parameters
        ----------
        dp_mode : {"local", "central", "off"}
            Where noise is added.
        target_epsilon : float or None
            Local DP: each edge calibrates σ to this cumulative ε (``None``: fixed σ).
        noise_multiplier : float
            Fixed local σ when there is no target.
        central_noise_multiplier : float
            σ_c of central DP.
        edges : int
            Edges that must train each round.
        overrides : Mapping[str, Any] or None
            ``RunConfig`` fields the setting changes last (e.g. the aggregation rule).

        Returns
        -------
        RunConfig
            The validated configuration.
        """
        update: dict[str, Any] = {
            "dp_mode": dp_mode,
            "noise_multiplier": noise_multiplier,
            "target_epsilon": target_epsilon if dp_mode == "local" and target_epsilon else 0.0,
            "central_noise_multiplier": central_noise_multiplier,
            "min_nodes": edges,
        }
        if dp_mode != "off":
            update.update(self.private_overrides)
        update.update(overrides or {})
        return RunConfig.model_validate(self.base.model_dump() | update)


@dataclass
class SettingResult:
    """One setting's outcome.

    Parameters
    ----------
    setting : str
        ``central``, ``central-dp``, ``federated``, ``federated-dp``, ``local-only`` or a
        baseline's name (``tfidf-lr``, ``logreg``, ``gbdt``, ``bgnbd``).
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
    extra : dict[str, Any]
        Setting-specific details (DP mode, run status, per-edge metrics, baseline options).
    baseline : bool
        A non-private reference model (scikit-learn, BG/NBD), not one of ours.
    """

    setting: str
    target_epsilon: float | None
    metrics: dict[str, float]
    curve: list[dict[str, float]] = field(default_factory=list)
    epsilon_per_edge: dict[str, float | None] = field(default_factory=dict)
    noise_multiplier: float | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    baseline: bool = False


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


def _arrays(model: torch.nn.Module) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in get_weights(model).items()})


def run_federated_setting(
    data: TaskData,
    plan: Plan,
    *,
    dp_mode: DPSetting,
    target_epsilon: float | None = None,
    noise_multiplier: float = 1.0,
    engine: Engine = "inprocess",
    progress: Progress | None = None,
    attack: AttackPlan | None = None,
    fault: FaultPlan | None = None,
    overrides: Mapping[str, Any] | None = None,
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
    attack : AttackPlan or None
        Malicious edges and what they send (``simulations.attacks``); ``None``: all honest.
    fault : FaultPlan or None
        Edges whose export breaks for some rounds (``simulations.faults``); ``None``: none.
    overrides : Mapping[str, Any] or None
        ``RunConfig`` fields of this setting (e.g. ``aggregation``, ``update-norm-bound``).

    Returns
    -------
    SettingResult
        Final metrics, per-round curve, each edge's ε and the run's status
        (``budget_exhausted`` when edges' ``max-epsilon`` stopped it).
    """
    started = time.perf_counter()
    sigma_c = noise_multiplier
    if dp_mode == "central" and target_epsilon is not None:
        sigma_c = calibrate_noise_multiplier(
            target_epsilon=target_epsilon,
            sample_rate=1.0,
            steps=plan.rounds,
            delta=plan.base.target_delta,
            accountant=plan.base.accountant,
        )
    config = plan.run_config(
        dp_mode=dp_mode,
        target_epsilon=target_epsilon,
        noise_multiplier=noise_multiplier,
        central_noise_multiplier=sigma_c,
        edges=data.edges,
        overrides={k.replace("-", "_"): v for k, v in (overrides or {}).items()},
    )
    run_config = config.to_run_config()
    learner = data.learner(config)
    partitions = poisoned_partitions(data.partitions(learner), attack, learner)
    test = data.test(learner)
    curve: list[dict[str, float]] = []
    model = learner.new_model(config.seed)

    def evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        model_now = learner.model_from_weights({k: v.numpy() for k, v in arrays.items()})
        metrics = score(learner, model_now, test)
        curve.append({"round": float(server_round), **metrics})
        if progress is not None:
            progress(server_round, plan.rounds)
        return MetricRecord(dict(metrics))

    recorder = _Recorder()
    server_app = build_server_app(
        run_config,
        recorder_factory=lambda _config: recorder,
        initial=_arrays(model),
        evaluate_fn=evaluate,
    )
    source: LearningSource = PartitionSource(
        learner=learner,
        partitions=partitions,
        holdouts=data.holdouts(learner),
        level=data.level,
        seeded_noise=True,
    )
    mods: list[Any] = [] if attack is None else [attack_mod(attack)]
    if fault is not None:
        faulty = FaultySource(source, fault, seed=config.seed)
        source, mods = faulty, [*mods, faulty.mod()]
    client_app = build_client_app(run_config, source=source, train_mods=mods)
    seed_globals(config.seed)
    _tame_flower_logging()
    if engine == "ray":
        run_on_ray(server_app=server_app, client_app=client_app, num_nodes=data.edges)
    else:
        run_in_process(server_app=server_app, client_app=client_app, num_nodes=data.edges)
    name = "federated" if dp_mode == "off" else "federated-dp"
    final = curve[-1] if curve else {"accuracy": 0.0, "macro_f1": 0.0, "auc": 0.5}
    sigma = _edge_sigma(partitions, config) if dp_mode == "local" else sigma_c
    return SettingResult(
        setting=name,
        target_epsilon=target_epsilon if dp_mode != "off" else None,
        metrics={k: final[k] for k in ("accuracy", "macro_f1", "auc")},
        curve=curve,
        epsilon_per_edge=_edge_epsilons(recorder),
        noise_multiplier=None if dp_mode == "off" else sigma,
        seconds=round(time.perf_counter() - started, 2),
        extra={
            "dp_mode": dp_mode,
            "status": recorder.status,
            "rounds_trained": sum(1 for r in recorder.rounds if r.phase == "train"),
            "refusals": _refusals(recorder),
            "aggregation": _aggregation_of(config),
            "robust_actions": _robust_actions(recorder),
            **(
                {}
                if attack is None
                else {"attack": attack.attack, "malicious_edges": list(attack.edges)}
            ),
            **({} if fault is None else _fault_extra(fault, recorder)),
        },
    )


def _aggregation_of(config: RunConfig) -> dict[str, Any]:
    """Return the setting's aggregation rule and update bounds (what ``metrics.json`` shows)."""
    return {
        "rule": config.aggregation_rule,
        "update_norm_bound": config.update_norm_bound,
        "weight_cap": config.weight_cap,
        "central_clipping": config.central_dp,
        "quality_policy": config.quality_policy,
    }


def _robust_actions(recorder: _Recorder) -> dict[str, int]:
    """Count what the server's update guard did over the run (excluded, clipped, capped...)."""
    counts: dict[str, int] = {}
    for summary in recorder.rounds:
        if summary.phase != "train":
            continue
        for row in summary.edges:
            for note in row.get("robust", []):
                counts[note["action"]] = counts.get(note["action"], 0) + 1
    return dict(sorted(counts.items()))


def _fault_extra(fault: FaultPlan, recorder: _Recorder) -> dict[str, Any]:
    """Return the fault, the broken edges and, per train round, what the server saw of them.

    ``quality_rounds``: one entry per round with each broken edge's guard actions (flags,
    exclusion, down-weighting) and the round's "no examples" refusals (an empty export).
    """
    names = {f"edge-{i:04d}" for i in fault.edges}
    rounds: list[dict[str, Any]] = []
    for summary in recorder.rounds:
        if summary.phase != "train":
            continue
        seen: dict[str, list[str]] = {}
        refused = 0
        for row in summary.edges:
            if "error_code" in row:
                refused += int("no examples" in str(row.get("reason", "")))
            elif row.get("edge") in names:
                seen[str(row["edge"])] = [
                    f"{n['action']}: {n['reason']}" for n in row.get("robust", [])
                ]
        rounds.append(
            {
                "round": summary.server_round,
                "broken": fault.broken(fault.edges[0], summary.server_round),
                "edges": dict(sorted(seen.items())),
                "refused_no_examples": refused,
            }
        )
    return {
        "fault": fault.fault,
        "broken_edges": list(fault.edges),
        "broken_rounds": [fault.first_round, fault.last_round],
        "quality_rounds": rounds,
    }


def _edge_sigma(partitions: list[TensorDataset], config: RunConfig) -> float:
    """Return the largest σ any edge trains with (smaller edges need more noise)."""
    dp = dp_config_from(config)
    if config.target_epsilon <= 0.0:
        return float(dp.noise_multiplier)
    smallest = min(len(p) for p in partitions)
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


def _refusals(recorder: _Recorder) -> list[dict[str, Any]]:
    """Return the rounds in which edges refused to train, with the reason (budget, no data...)."""
    return [
        {"round": s.server_round, "error_code": row["error_code"], "reason": row["reason"]}
        for s in recorder.rounds
        if s.phase == "train"
        for row in s.edges
        if "error_code" in row
    ]


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
    private = target_epsilon is not None
    config = plan.run_config(dp_mode="local" if private else "off", target_epsilon=target_epsilon)
    learner = data.learner(config)
    train = pooled(data.partitions(learner))
    test = data.test(learner)
    dp = dp_config_from(config)
    if target_epsilon is not None:
        dp = calibrated_dp_config(
            dp, target_epsilon=target_epsilon, num_examples=len(train), rounds=plan.rounds
        )
    model = learner.new_model(config.seed)
    curve = [{"round": 0.0, **score(learner, model, test)}]
    history: list[tuple[float, float, int]] = []
    for server_round in range(1, plan.rounds + 1):
        seed = config.seed * 7919 + server_round
        result = train_round(
            model,
            train,
            learner=learner,
            dp=dp,
            seed=seed,
            noise_generator=torch.Generator().manual_seed(seed ^ 0x5EED) if private else None,
        )
        history.extend(result.history)
        curve.append({"round": float(server_round), **score(learner, model, test)})
        if progress is not None:
            progress(server_round, plan.rounds)
    epsilon: dict[str, float | None] = {}
    if private:
        spent = compute_epsilon(history, delta=dp.delta, accountant=dp.accountant)
        epsilon["central"] = _finite(float(spent))
    final = curve[-1]
    return SettingResult(
        setting="central-dp" if private else "central",
        target_epsilon=target_epsilon,
        metrics={k: final[k] for k in ("accuracy", "macro_f1", "auc")},
        curve=curve,
        epsilon_per_edge=epsilon,
        noise_multiplier=dp.noise_multiplier if private else None,
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
    config = plan.run_config(dp_mode="off")
    learner = data.learner(config)
    test = data.test(learner)
    dp = dp_config_from(config).model_copy(
        update={"local_epochs": plan.rounds * config.local_epochs}
    )
    per_edge: list[dict[str, float]] = []
    for index, part in enumerate(data.partitions(learner)):
        model = learner.new_model(config.seed)
        train_round(model, part, learner=learner, dp=dp, seed=config.seed * 104729 + index)
        per_edge.append(score(learner, model, test))
        if progress is not None:
            progress(index + 1, data.edges)
    mean = {k: float(np.mean([m[k] for m in per_edge])) for k in ("accuracy", "macro_f1", "auc")}
    return SettingResult(
        setting="local-only",
        target_epsilon=None,
        metrics=mean,
        seconds=round(time.perf_counter() - started, 2),
        extra={"per_edge": per_edge},
    )
