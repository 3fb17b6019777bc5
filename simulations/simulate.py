"""``fedprofile simulate``: a federated run over N edges with a metrics file.

The behaviour task partitions a population (synthetic, or a JSONL file in the edge input
schema) across ``N`` edges by customer (each customer's lines go to one edge, so edges hold
disjoint users), ingests each partition on its own edge, runs the federation on the Flower
Simulation Engine and writes ``metrics.json``: per-round metrics from the run record and
each edge's cumulative ε from its ledger.

Not here yet (issue 7): the text task, baselines, utility-vs-ε reports and calibrating noise
to a target ε; ``--epsilon`` is the per-edge budget that stops training before it is exceeded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlmodel import Session

from client import EdgeStore, ingest_file, ledger_report
from client.edge import init_edge, open_tenant_key
from models import Channel
from privacy import Pseudonymizer, create_key_file
from server import create_db_engine, list_training_runs, upgrade_database

from .errors import SimulationError
from .federation import run_federation
from .progress import step_progress
from .synthetic import CHANNELS, PopulationConfig, write_population

logger = logging.getLogger(__name__)

MODEL = "behaviour"


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate.

    Parameters
    ----------
    task : str
        ``behaviour`` (the text task arrives with the text model).
    dataset : Path or None
        JSONL in the edge input schema; ``None`` generates a synthetic population.
    edges : int
        Number of edges.
    rounds : int
        Federated rounds.
    epsilon : float or None
        Per-edge ε budget; training stops before a release would exceed it.
    users : int
        Synthetic users when no dataset is given.
    seed : int
        Seed of the population, partitioning and data order.
    out : Path
        Output directory.
    """

    task: str
    dataset: Path | None
    edges: int
    rounds: int
    epsilon: float | None
    users: int
    seed: int
    out: Path


class _NoText:
    """Scrubber for partitions without messages (the behaviour task never stores text)."""

    def scrub_many(self, texts: Any, *, lang: str) -> list[Any]:  # noqa: ARG002
        raise SimulationError("message lines are skipped by the behaviour task")


def _partition(sources: list[Path], out_dir: Path, *, edges: int, seed: int) -> list[Path]:
    """Split input lines across ``edges`` files by a seeded hash of the customer object."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"edge-{i:04d}.jsonl" for i in range(edges)]
    handles = [p.open("w", encoding="utf-8") for p in paths]
    try:
        for source in sources:
            with source.open(encoding="utf-8") as lines:
                for raw in lines:
                    if not raw.strip():
                        continue
                    line = json.loads(raw)
                    if line.get("kind") == "message":
                        continue  # the behaviour task uses events and consents only
                    who = json.dumps(line.get("customer"), sort_keys=True)
                    digest = hashlib.sha256(f"{seed}:{who}".encode()).digest()
                    handles[int.from_bytes(digest[:8], "big") % edges].write(raw)
    finally:
        for handle in handles:
            handle.close()
    return paths


def run_simulation_task(cfg: SimulationConfig, *, console: Console) -> dict[str, Any]:
    """Run the simulation and write ``<out>/metrics.json``; return the metrics.

    Raises
    ------
    SimulationError
        For an unsupported task or a missing dataset.
    """
    if cfg.task != "behaviour":
        raise SimulationError(
            f"task {cfg.task!r} is not available yet: the text model is not built; "
            "use --task behaviour"
        )
    if cfg.dataset is not None and not cfg.dataset.is_file():
        raise SimulationError(f"dataset {cfg.dataset} does not exist")
    started = time.perf_counter()
    # 1. Input: the dataset, or a synthetic population.
    work = cfg.out / "work"
    if work.exists():
        shutil.rmtree(work)
    if cfg.dataset is None:
        write_population(PopulationConfig(users=cfg.users, days=30, seed=cfg.seed), work / "input")
        sources = [work / "input" / f"{c}.jsonl" for c in CHANNELS]
    else:
        sources = [cfg.dataset]
    # 2. Partition by customer and ingest each part on its own edge.
    parts = _partition(sources, work / "parts", edges=cfg.edges, seed=cfg.seed)
    key = work / "tenant.key"
    create_key_file(key)
    for i, part in enumerate(parts):
        edge_dir = work / "edges" / f"edge-{i:04d}"
        init_edge(edge_dir=edge_dir, name=f"edge-{i:04d}", channel=Channel.APP, tenant_key=key)
        with (
            EdgeStore.for_edge_dir(edge_dir) as store,
            step_progress(console, f"ingest edge-{i:04d}", total=part.stat().st_size) as advance,
        ):
            ingest_file(
                store=store,
                path=part,
                pseudonymizer=Pseudonymizer(open_tenant_key(store)),
                detector=_NoText(),
                progress=advance,
            )
    # 3. Federation, recorded in a run database.
    db_url = f"sqlite:///{(cfg.out / 'runs.sqlite').resolve()}"
    upgrade_database(db_url)
    run_config: dict[str, Any] = {"seed": cfg.seed}
    if cfg.epsilon is not None:
        run_config["max-epsilon"] = cfg.epsilon
    console.print(f"federated DP-SGD: {cfg.edges} edges x {cfg.rounds} rounds")
    run_federation(
        data_dir=work / "edges", rounds=cfg.rounds, database_url=db_url, run_config=run_config
    )
    # 4. Metrics: rounds from the run record, ε from each edge's ledger.
    with Session(create_db_engine(db_url)) as session:
        runs = list_training_runs(session=session, limit=1)
    run = runs[0].model_dump(mode="json") if runs else {}
    epsilon: dict[str, Any] = {}
    for edge_dir in sorted((work / "edges").iterdir()):
        with EdgeStore.for_edge_dir(edge_dir) as store:
            report = ledger_report(store, MODEL)
        if report is not None:
            epsilon[edge_dir.name] = {
                "epsilon": report.epsilon,
                "delta": report.delta,
                "accountant": report.accountant,
                "exhausted": report.exhausted,
            }
    metrics = {
        "task": cfg.task,
        "edges": cfg.edges,
        "rounds": cfg.rounds,
        "epsilon_budget": cfg.epsilon,
        "seed": cfg.seed,
        "status": run.get("status"),
        "per_round": run.get("rounds", []),
        "epsilon_per_edge": epsilon,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (cfg.out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2))
    return metrics
