"""``fedprofile simulate``: what privacy costs, on your data, in one command.

A run builds the task's data (``simulations.task_data``: read, mask, hold out, partition
across ``--edges`` edges), then trains and scores each requested setting on the same
held-out set (``simulations.runs``):

- federated DP at each ``--epsilon`` (σ calibrated per edge from the whole round plan;
  with ``--central-dp`` client-level central DP, σ_c calibrated over the rounds), or at a
  fixed ``--noise-multiplier``; ``--no-dp`` trains federated without noise;
- with ``--baselines``: centralized non-private, centralized DP at each ε, federated
  non-private and local-only, and the strongest simple models fitted centrally without
  noise (``simulations.baseline_settings``: TF-IDF + logistic regression for text;
  logistic regression, gradient boosting and BG/NBD for behaviour). The report states
  federated DP's gap to the best of them and, on synthetic data, the oracle AUC.

It writes ``metrics.json``, PNG plots, ``report.md`` and ``report.html`` into ``--out``
(``simulations.report``). Everything is seeded by ``--seed`` (initialisation, data order,
Poisson and client sampling, and the simulated DP noise), so on the in-process engine the
same seed gives an identical ``metrics.json`` apart from its timing fields.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from models import RunConfig

from .attacks import AttackPlan, plan_attack
from .errors import SimulationError
from .faults import FaultPlan, plan_fault
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
from .task_data import (
    BehaviourTask,
    DataSummary,
    TextSource,
    TextTask,
    build_behaviour_task,
    build_text_task,
)

logger = logging.getLogger(__name__)

Task = Literal["behaviour", "text"]

#: Per-task training defaults (``RunConfig`` fields), chosen on validation splits of the
#: training data (``docs/learning.md``): they apply to every setting of a run.
TASK_DEFAULTS: dict[str, dict[str, Any]] = {
    "text": {
        "batch_size": 256,
        "learning_rate": 0.02,
        "local_optimizer": "adam",
        "weight_decay": 0.3,
        "max_grad_norm": 1.0,
        "server_learning_rate": 1.0,
        "server_momentum": 0.9,
        "local_epochs": 1,
        "text_vocabulary": 200_000,
        "text_buckets": 262_144,
    },
    "behaviour": {
        "batch_size": 64,
        "learning_rate": 1.0,
        "max_grad_norm": 1.0,
        "server_learning_rate": 1.0,
        "server_momentum": 0.0,
        "local_epochs": 1,
        "behaviour_hidden": 0,
        "behaviour_sequence": 0,
    },
}
#: What DP settings change. DP noise grows with the number of parameters, so the text
#: model keeps only the most frequent public n-grams (no hashed buckets), and plain SGD
#: without weight decay does best on the noised gradient (Adam normalises the noise of
#: rarely seen n-grams up to full-size steps).
PRIVATE_DEFAULTS: dict[str, dict[str, Any]] = {
    "text": {
        "text_vocabulary": 8_000,
        "text_buckets": 0,
        "local_optimizer": "sgd",
        "learning_rate": 4.0,
        "weight_decay": 0.0,
    },
    "behaviour": {},
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
        Add centralized (non-private and DP), federated non-private, local-only and the
        simple reference models (TF-IDF + LR; logistic regression, boosting, BG/NBD).
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
    max_epsilon : float
        Budget on each edge's cumulative ε (0: none): an edge refuses a round that would
        exceed it and the run stops, as on a deployed edge.
    cutoff : datetime or None
        Behaviour: features from events at or before it, labels from the window after it
        (``None``: the last event time minus the window).
    label_window_days : float
        Behaviour: the label window in days.
    malicious_edges : int
        Edges (seeded choice) that play ``attack`` (``simulations.attacks``); 0 = none.
        Each federated setting then also runs attacked, under ``aggregation`` and under
        plain FedAvg, beside its clean run with the same seed.
    attack : str
        ``count-inflation``, ``scale``, ``sign-flip`` or ``label-flip``.
    aggregation : str or None
        The server's aggregation rule (run-config ``aggregation``; ``None``: its default).
    broken_edges : int
        Edges (seeded choice) whose export breaks from round 2 until the last round, when
        it is repaired (``simulations.faults``); 0 = none. Each federated setting then also
        runs with them, with the server's data-quality policy and without it.
    fault : str
        ``schema-break``, ``empty-export`` or ``drifted-population``.
    secure_aggregation : bool
        Federated settings aggregate with SecAgg+ (run-config ``secure-aggregation``,
        ``docs/secure-aggregation.md``).
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
    max_epsilon: float = 0.0
    cutoff: datetime | None = None
    label_window_days: float = 14.0
    malicious_edges: int = 0
    attack: str = "sign-flip"
    aggregation: str | None = None
    broken_edges: int = 0
    fault: str = "schema-break"
    secure_aggregation: bool = False

    def run_config(self) -> RunConfig:
        """Return the run config every setting starts from: task defaults plus overrides."""
        chosen: dict[str, Any] = dict(TASK_DEFAULTS[self.task])
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
        chosen["central_clipping_norm"] = chosen["max_grad_norm"]
        if self.aggregation is not None:
            chosen["aggregation"] = self.aggregation
        if self.secure_aggregation:
            chosen["secure_aggregation"] = True
            chosen["min_nodes"] = self.edges
        return RunConfig(
            task=self.task,
            num_server_rounds=self.rounds,
            accountant=self.accountant,
            max_epsilon=self.max_epsilon,
            seed=self.seed,
            cutoff=self.cutoff,
            label_window_days=self.label_window_days,
            **chosen,
        )

    def plan(self) -> Plan:
        """Return the shared training plan (``run_config`` and the DP settings' changes).

        Options given explicitly (``--learning-rate``...) win in every setting.
        """
        private = dict(PRIVATE_DEFAULTS[self.task])
        for name in ("learning_rate", "batch_size", "max_grad_norm", "local_epochs"):
            if getattr(self, name) is not None:
                private.pop(name, None)
        return Plan(base=self.run_config(), private_overrides=private)


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
    if cfg.max_epsilon < 0:
        raise SimulationError("--max-epsilon must be >= 0 (0 = no budget)")
    if cfg.cutoff is not None and cfg.cutoff.tzinfo is None:
        raise SimulationError("--cutoff needs a timezone, e.g. 2026-10-01T00:00:00+08:00")
    if cfg.label_window_days <= 0:
        raise SimulationError("--label-window-days must be > 0")
    try:
        cfg.run_config()
    except ValueError as exc:
        raise SimulationError(f"invalid training settings: {exc}") from exc
    if cfg.malicious_edges:
        plan_attack(cfg.attack, malicious=cfg.malicious_edges, edges=cfg.edges, seed=cfg.seed)
    if cfg.broken_edges:
        _fault_plan(cfg)


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
            config=cfg.run_config(),
            progress=progress,
        )


def _settings(cfg: SimulationConfig) -> list[tuple[str, dict[str, Any]]]:
    """Return the (kind, arguments) of every setting to run, in report order."""
    runs: list[tuple[str, dict[str, Any]]] = []
    if cfg.baselines:
        runs.append(("reference", {}))
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
    if cfg.malicious_edges:
        # Each main federated setting again with the malicious edges: under the chosen
        # aggregation, and under plain FedAvg (no update bounds) to show the damage.
        main = [
            kw for kind, kw in runs if kind == "federated" and (kw["dp_mode"] != "off") == cfg.dp
        ]
        runs += [(kind, kw) for kw in main for kind in ("attacked", "attacked-plain")]
    if cfg.broken_edges:
        # ...and with the broken edges: with the data-quality policy, and without it.
        main = [
            kw for kind, kw in runs if kind == "federated" and (kw["dp_mode"] != "off") == cfg.dp
        ]
        runs += [(kind, kw) for kw in main for kind in ("broken", "broken-unchecked")]
    return runs


def _reference(cfg: SimulationConfig, data: TaskData) -> list[SettingResult]:
    """Run the simple reference models (non-private, centralized) of the task."""
    from .baseline_settings import behaviour_baselines, text_baselines

    if isinstance(data, TextTask):
        return text_baselines(data, seed=cfg.seed)
    assert isinstance(data, BehaviourTask)
    return behaviour_baselines(data, window_days=cfg.label_window_days, seed=cfg.seed)


def _print_result(console: Console, result: SettingResult) -> None:
    eps = "" if result.target_epsilon is None else f" ε={result.target_epsilon:g}"
    console.print(
        f"  {result.setting:<13}{eps:<7} "
        + ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
        + f"  ({result.seconds:.1f} s)"
    )


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
        f"{cfg.task}: {summary.examples} examples, {data.edges} edges "
        f"(train {sum(summary.train_examples)}), held-out {summary.test_examples}"
    )
    if summary.consent and summary.consent.startswith("assumed"):
        console.print(f"  note: consent {summary.consent}")
    oracle = None
    if isinstance(data, BehaviourTask):
        from .baseline_settings import oracle_metrics

        oracle = oracle_metrics(data)
        if oracle is not None:
            console.print(f"  oracle AUC (latent purchase rates) {oracle['auc']:.4f}")
    # 2. Settings, each scored on the same held-out set. Simulated noise is seeded on
    # purpose (repeatable experiments; metrics.json says so), so the privacy engine's warning
    # about seeded noise, meant for deployments, is not repeated for every step here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="DP noise drawn from an explicit generator")
        results = _run_settings(cfg, data, plan, console)
    # 3. Report.
    metrics = _metrics(cfg, plan, summary, results, seconds=time.perf_counter() - started)
    if oracle is not None:
        metrics["oracle"] = oracle
    return write_report(metrics, cfg.out)


def _run_settings(
    cfg: SimulationConfig, data: TaskData, plan: Plan, console: Console
) -> list[SettingResult]:
    """Run every setting of ``cfg`` in order, printing each result as it finishes."""
    results: list[SettingResult] = []
    for kind, kwargs in _settings(cfg):
        if kind == "reference":
            with step_progress(console, "simple baselines", total=1) as advance:
                reference = _reference(cfg, data)
                advance(1, 1)
            for result in reference:
                _print_result(console, result)
            results += reference
            continue
        label = f"{kind} {kwargs}" if kwargs else kind
        total = data.edges if kind == "local-only" else plan.rounds
        with step_progress(console, label, total=total) as advance:
            if kind == "central":
                result = run_central_setting(data, plan, progress=advance, **kwargs)
            elif kind == "local-only":
                result = run_local_only_setting(data, plan, progress=advance)
            elif kind == "federated":
                result = run_federated_setting(
                    data, plan, engine=cfg.engine, progress=advance, **kwargs
                )
            elif kind.startswith("attacked"):
                result = _attacked(
                    cfg, data, plan, plain=kind == "attacked-plain", progress=advance, **kwargs
                )
            else:
                result = _broken(
                    cfg, data, plan, checked=kind == "broken", progress=advance, **kwargs
                )
        _print_result(console, result)
        if result.extra.get("status") == "budget_exhausted":
            console.print(
                f"  the privacy budget (--max-epsilon {cfg.max_epsilon:g}) stopped "
                f"{result.setting} after {result.extra.get('rounds_trained')} round(s)"
            )
        results.append(result)
    return results


#: Run-config values of plain FedAvg: no update bounds, weights as reported.
PLAIN_FEDAVG: dict[str, Any] = {
    "aggregation": "fedavg",
    "update_norm_bound": 0.0,
    "weight_cap": 0.0,
}


def _attacked(
    cfg: SimulationConfig,
    data: TaskData,
    plan: Plan,
    *,
    plain: bool,
    progress: Any,
    **kwargs: Any,
) -> SettingResult:
    """Run a federated setting with ``cfg``'s malicious edges (under plain FedAvg if asked)."""
    attack: AttackPlan = plan_attack(
        cfg.attack, malicious=cfg.malicious_edges, edges=data.edges, seed=cfg.seed
    )
    result = run_federated_setting(
        data,
        plan,
        engine=cfg.engine,
        progress=progress,
        attack=attack,
        overrides=PLAIN_FEDAVG if plain else None,
        **kwargs,
    )
    result.setting += " attacked, plain FedAvg" if plain else " attacked"
    return result


#: Run-config values of a server that ignores the edges' data-quality reports.
NO_QUALITY_CHECKS: dict[str, Any] = {"quality_policy": "off"}


def _fault_plan(cfg: SimulationConfig) -> FaultPlan:
    return plan_fault(
        cfg.fault, broken=cfg.broken_edges, edges=cfg.edges, rounds=cfg.rounds, seed=cfg.seed
    )


def _broken(
    cfg: SimulationConfig,
    data: TaskData,
    plan: Plan,
    *,
    checked: bool,
    progress: Any,
    **kwargs: Any,
) -> SettingResult:
    """Run a federated setting with ``cfg``'s broken edges (without quality checks if asked)."""
    result = run_federated_setting(
        data,
        plan,
        engine=cfg.engine,
        progress=progress,
        fault=_fault_plan(cfg),
        overrides=None if checked else NO_QUALITY_CHECKS,
        **kwargs,
    )
    result.setting += " broken edges" if checked else " broken edges, no quality checks"
    return result


def robustness_summary(settings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return, per attacked or broken-edge setting, its change against the clean run.

    Each entry: the setting's label, the clean run's label (same seed and ε), the attack and
    malicious edges or the fault, broken edges, broken rounds and what the server saw of them
    per round (``quality_rounds``), the aggregation, the guard's actions and ``delta``
    (setting minus clean, per metric: negative = damage).
    """
    from .report import setting_label

    clean = {
        (s["setting"], s.get("target_epsilon"), s.get("noise_multiplier")): s
        for s in settings
        if s["setting"] in ("federated", "federated-dp")
    }
    out: list[dict[str, Any]] = []
    for s in settings:
        extra = s.get("extra") or {}
        if "attack" not in extra and "fault" not in extra:
            continue
        base_name = s["setting"].split(" ")[0]
        ref = clean.get((base_name, s.get("target_epsilon"), s.get("noise_multiplier")))
        if ref is None:
            continue
        problem = (
            {"attack": extra["attack"], "malicious_edges": extra["malicious_edges"]}
            if "attack" in extra
            else {
                "fault": extra["fault"],
                "broken_edges": extra["broken_edges"],
                "broken_rounds": extra["broken_rounds"],
                "quality_rounds": extra["quality_rounds"],
            }
        )
        out.append(
            {
                "setting": setting_label(s),
                "clean": setting_label(ref),
                **problem,
                "aggregation": extra.get("aggregation"),
                "robust_actions": extra.get("robust_actions", {}),
                "delta": {
                    k: round(float(s["metrics"][k]) - float(ref["metrics"][k]), 6)
                    for k in ("accuracy", "macro_f1", "auc")
                },
            }
        )
    return out


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
        "plan": plan.base.model_dump(mode="json", exclude={"data_dir", "database_url"}),
        "private_plan": dict(plan.private_overrides),
        "partition": cfg.partition if cfg.task == "text" else "customer",
        "data": asdict(summary),
        "settings": [asdict(r) for r in results],
        "robustness": robustness_summary([asdict(r) for r in results]),
        "seconds": round(seconds, 2),
    }
