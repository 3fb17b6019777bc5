"""``fedprofile simulate``: what privacy costs, on your data, in one command.

A run builds the task's data (``simulations.task_data``: read, mask, hold out, partition
across ``--edges`` edges), then trains and scores each requested setting on the same
held-out set (``simulations.runs``):

- federated DP at each ``--epsilon`` (σ calibrated per edge from the whole round plan;
  with ``--central-dp`` client-level central DP, σ_c calibrated over the rounds), or at a
  fixed ``--noise-multiplier``; ``--no-dp`` trains federated without noise;
- with ``--baselines``: centralized non-private, centralized DP at each ε, federated
  non-private and local-only.

It writes ``metrics.json``, PNG plots, ``report.md`` and ``report.html`` into ``--out``
(``simulations.report``). Everything is seeded by ``--seed`` (initialisation, data order,
Poisson and client sampling, and the simulated DP noise), so on the in-process engine the
same seed gives an identical ``metrics.json`` apart from its timing fields.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from .errors import SimulationError
from .progress import step_progress
from .report import write_report
from .runs import (
    Engine,
    Plan,
    SettingResult,
    TaskData,
    run_central_setting,
    run_federated_setting,
    run_local_only_setting,
)
from .split import PartitionScheme
from .task_data import DataSummary, TextSource, build_behaviour_task, build_text_task

logger = logging.getLogger(__name__)

Task = Literal["behaviour", "text"]

#: Per-task training defaults (tuned on the synthetic data; see docs/simulation.md).
TASK_DEFAULTS: dict[str, dict[str, float]] = {
    "text": {
        "batch_size": 256,
        "learning_rate": 20.0,
        "max_grad_norm": 1.0,
        "server_learning_rate": 1.0,
        "server_momentum": 0.0,
        "local_epochs": 1,
    },
    "behaviour": {
        "batch_size": 64,
        "learning_rate": 2.0,
        "max_grad_norm": 1.0,
        "server_learning_rate": 2.0,
        "server_momentum": 0.5,
        "local_epochs": 2,
    },
}


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate.

    Parameters
    ----------
    task : {"behaviour", "text"}
        The behaviour model on event logs, or the text model on labelled messages.
    datasets : tuple[Path, ...]
        Input files; empty = a synthetic population (behaviour only).
    edges, rounds : int
        Number of edges and federated rounds.
    out : Path
        Output directory.
    local_epochs : int or None
        Epochs per round on each edge (task default when ``None``).
    epsilons : tuple[float, ...]
        Target cumulative ε per edge for the whole run, one federated DP setting each.
    noise_multiplier : float or None
        Fixed σ instead of targets.
    dp : bool
        ``False`` (``--no-dp``): federated training without noise only.
    central_dp : bool
        Client-level central DP (server noise) instead of DP-SGD on edges.
    engine : {"inprocess", "ray"}
        In-process grid or the Flower Simulation Engine.
    baselines : bool
        Add centralized (non-private and DP), federated non-private and local-only.
    seed : int
        Seed of everything (see the module docstring).
    text : TextSource or None
        Fields and masking of the text task.
    partition : {"iid", "dirichlet", "column"}
        How the text task's units spread over edges.
    alpha : float
        Dirichlet α of ``partition = "dirichlet"``.
    users : int
        Synthetic users when the behaviour task has no dataset.
    batch_size, learning_rate, max_grad_norm, server_learning_rate, server_momentum
        Overrides of the task defaults (``None``: default).
    accountant : {"prv", "rdp"}
        Accountant of calibration and reported ε (``rdp``: fast upper bound).
    """

    task: Task
    datasets: tuple[Path, ...]
    edges: int
    rounds: int
    out: Path
    local_epochs: int | None = None
    epsilons: tuple[float, ...] = (8.0,)
    noise_multiplier: float | None = None
    dp: bool = True
    central_dp: bool = False
    engine: Engine = "inprocess"
    baselines: bool = False
    seed: int = 0
    text: TextSource | None = None
    partition: PartitionScheme = "iid"
    alpha: float = 0.5
    users: int = 1000
    batch_size: int | None = None
    learning_rate: float | None = None
    max_grad_norm: float | None = None
    server_learning_rate: float | None = None
    server_momentum: float | None = None
    accountant: Literal["prv", "rdp"] = "rdp"

    def plan(self) -> Plan:
        """Return the shared training plan: task defaults with this config's overrides."""
        chosen = dict(TASK_DEFAULTS[self.task])
        for name in (
            "batch_size",
            "learning_rate",
            "max_grad_norm",
            "server_learning_rate",
            "server_momentum",
            "local_epochs",
        ):
            value = getattr(self, name)
            if value is not None:
                chosen[name] = value
        return Plan(
            rounds=self.rounds,
            local_epochs=int(chosen["local_epochs"]),
            batch_size=int(chosen["batch_size"]),
            learning_rate=float(chosen["learning_rate"]),
            max_grad_norm=float(chosen["max_grad_norm"]),
            server_learning_rate=float(chosen["server_learning_rate"]),
            server_momentum=float(chosen["server_momentum"]),
            central_clipping_norm=float(chosen["max_grad_norm"]),
            accountant=self.accountant,
            seed=self.seed,
        )


def _check(cfg: SimulationConfig) -> None:
    if cfg.task == "text" and (not cfg.datasets or cfg.text is None):
        raise SimulationError(
            "the text task needs --dataset FILE with --text-field and --label-field"
        )
    if cfg.edges < 1 or cfg.rounds < 1:
        raise SimulationError("--edges and --rounds must be at least 1")
    if cfg.dp and cfg.noise_multiplier is None and not cfg.epsilons:
        raise SimulationError("choose --epsilon E, --noise-multiplier S or --no-dp")
    if any(e <= 0 for e in cfg.epsilons):
        raise SimulationError("--epsilon must be > 0")


def _build(cfg: SimulationConfig, console: Console) -> tuple[TaskData, DataSummary]:
    with step_progress(console, "prepare data", total=1) as advance:

        def progress(_stage: str, done: int, total: int) -> None:
            advance(done, total)

        if cfg.task == "text":
            assert cfg.text is not None
            return build_text_task(
                cfg.text,
                edges=cfg.edges,
                scheme=cfg.partition,
                alpha=cfg.alpha,
                seed=cfg.seed,
                progress=progress,
            )
        return build_behaviour_task(
            work=cfg.out / "work",
            datasets=cfg.datasets,
            users=cfg.users,
            edges=cfg.edges,
            seed=cfg.seed,
            progress=progress,
        )


def _settings(cfg: SimulationConfig) -> list[tuple[str, dict[str, Any]]]:
    """Return the (kind, arguments) of every setting to run, in report order."""
    runs: list[tuple[str, dict[str, Any]]] = []
    if cfg.baselines:
        runs.append(("central", {}))
        if cfg.dp:
            runs += [("central", {"target_epsilon": e}) for e in cfg.epsilons]
        runs.append(("local-only", {}))
    if cfg.baselines or not cfg.dp:
        runs.append(("federated", {"dp_mode": "off"}))
    if cfg.dp:
        mode = "central" if cfg.central_dp else "local"
        if cfg.noise_multiplier is not None:
            runs.append(("federated", {"dp_mode": mode, "noise_multiplier": cfg.noise_multiplier}))
        else:
            runs += [("federated", {"dp_mode": mode, "target_epsilon": e}) for e in cfg.epsilons]
    return runs


def run_simulation_task(cfg: SimulationConfig, *, console: Console) -> dict[str, Any]:
    """Run every setting, write the report into ``cfg.out``; return the metrics.

    Raises
    ------
    SimulationError
        For bad options or input (the message says what to fix).
    """
    _check(cfg)
    started = time.perf_counter()
    cfg.out.mkdir(parents=True, exist_ok=True)
    # 1. Data: read, mask, hold out, partition.
    data, summary = _build(cfg, console)
    plan = cfg.plan()
    console.print(
        f"{cfg.task}: {summary.examples} examples, {len(data.partitions)} edges "
        f"(train {sum(summary.train_examples)}), held-out {summary.test_examples}"
    )
    # 2. Settings, each scored on the same held-out set.
    results: list[SettingResult] = []
    for kind, kwargs in _settings(cfg):
        label = f"{kind} {kwargs}" if kwargs else kind
        total = len(data.partitions) if kind == "local-only" else plan.rounds
        with step_progress(console, label, total=total) as advance:
            if kind == "central":
                result = run_central_setting(data, plan, progress=advance, **kwargs)
            elif kind == "local-only":
                result = run_local_only_setting(data, plan, progress=advance)
            else:
                result = run_federated_setting(
                    data, plan, engine=cfg.engine, progress=advance, **kwargs
                )
        console.print(
            f"  {result.setting:<13} ε={result.target_epsilon}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
            + f"  ({result.seconds:.1f} s)"
        )
        results.append(result)
    # 3. Report.
    metrics = _metrics(cfg, plan, summary, results, seconds=time.perf_counter() - started)
    return write_report(metrics, cfg.out)


def _metrics(
    cfg: SimulationConfig,
    plan: Plan,
    summary: DataSummary,
    results: list[SettingResult],
    *,
    seconds: float,
) -> dict[str, Any]:
    return {
        "task": cfg.task,
        "engine": cfg.engine,
        "edges": cfg.edges,
        "rounds": cfg.rounds,
        "seed": cfg.seed,
        "dp": "central" if cfg.central_dp else ("local" if cfg.dp else "off"),
        "plan": asdict(plan),
        "partition": cfg.partition if cfg.task == "text" else "customer",
        "data": asdict(summary),
        "settings": [asdict(r) for r in results],
        "seconds": round(seconds, 2),
    }
