"""Per-round cost of SecAgg+ secure aggregation (run: ``python benchmarks/secagg.py``).

Prints, in one run, on the in-process engine (no Ray, no network: what is measured is the
protocol's computation and its extra message rounds, not transport), the median wall time
of one federated round (train + evaluate) without and with ``secure-aggregation`` and their
ratio, for:

1. ``behaviour``: the real ServerApp and ClientApp (``simulations.runs``) on a small
   synthetic behaviour task (300 users, 5 edges), plain FedAvg both ways;
2. ``vector-100k``: a stand-in model of 100,000 float32 weights, where each of 5 nodes
   "trains" by adding a fixed vector (no learning cost: the protocol's cost alone), under
   Flower's ``FedAvg`` with our ``SecAggPlusGrid`` / ``secure_aggregation_mod``.

Round times are taken between Flower's server-side evaluations (one per round); the runs
with and without SecAgg+ alternate, so load from other processes hits both alike. The
secure runs use the defaults (5 shares, threshold 3: every edge a neighbour of every other
at 5 edges, the costliest neighbourhood).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
for _key, _value in (
    ("FLWR_TELEMETRY_ENABLED", "0"),
    ("FLWR_DISABLE_UPDATE_CHECK", "1"),
    ("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1"),
    ("RAY_USAGE_STATS_ENABLED", "0"),
):
    os.environ[_key] = _value
os.environ.setdefault("FLWR_HOME", tempfile.mkdtemp(prefix="bench-flwr-"))

import numpy as np  # noqa: E402
from flwr.app import (  # noqa: E402
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp import Grid, ServerApp  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402
from rich.console import Console  # noqa: E402

from client.secagg import secure_aggregation_mod  # noqa: E402
from models import RunConfig  # noqa: E402
from server.fl.secagg import SecAggPlusGrid, secagg_workflow  # noqa: E402
from simulations.inprocess import SERVER_NODE_ID, InProcessGrid, task_identity  # noqa: E402
from simulations.runs import run_federated_setting  # noqa: E402
from simulations.simulate import SimulationConfig, _build  # noqa: E402

EDGES = 5
PLAIN: dict[str, Any] = {
    "aggregation": "fedavg",
    "update_norm_bound": 0.0,
    "weight_cap": 0.0,
    "quality_policy": "off",
}


def _round_times(stamps: list[float]) -> list[float]:
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def behaviour_rounds(rounds: int) -> Callable[[bool], list[float]]:
    """Return a runner: the real apps on the behaviour task, per-round seconds."""
    cfg = SimulationConfig(
        task="behaviour",
        datasets=(),
        edges=EDGES,
        rounds=rounds,
        out=Path(tempfile.mkdtemp(prefix="bench-secagg-")),
        users=300,
        seed=3,
    )
    data, _ = _build(cfg, Console(quiet=True))
    plan = cfg.plan()

    def run(secure: bool) -> list[float]:
        stamps = [time.perf_counter()]
        overrides = {**PLAIN, "secure_aggregation": secure}
        run_federated_setting(
            data,
            plan,
            dp_mode="off",
            overrides=overrides,
            progress=lambda _done, _total: stamps.append(time.perf_counter()),
        )
        return _round_times(stamps)[1:]  # the first includes building the apps

    return run


def vector_rounds(dim: int, rounds: int) -> Callable[[bool], list[float]]:
    """Return a runner: ``dim`` float32 weights, nodes add a fixed vector, per-round seconds."""

    def build_client() -> ClientApp:
        app = ClientApp()

        @app.train(mods=[secure_aggregation_mod({})])
        def train(msg: Message, context: Context) -> Message:
            i = int(context.node_config["partition-id"])
            w = msg.content.array_records["arrays"]["w"].numpy()
            step = (i + 1) * 0.01 * np.linspace(-1.0, 1.0, dim, dtype=np.float32)
            return Message(
                RecordDict(
                    {
                        "arrays": ArrayRecord({"w": Array(w + step)}),
                        "metrics": MetricRecord({"num-examples": 10 * (i + 1)}),
                        "edge-info": ConfigRecord({"edge": f"edge-{i}"}),
                    }
                ),
                reply_to=msg,
            )

        @app.evaluate()
        def evaluate(msg: Message, context: Context) -> Message:
            del context
            return Message(RecordDict({"metrics": MetricRecord({"num-examples": 1})}), reply_to=msg)

        return app

    def run(secure: bool) -> list[float]:
        stamps: list[float] = []
        server = ServerApp()
        config = RunConfig(min_nodes=EDGES, secure_aggregation=secure)

        @server.main()
        def main(grid: Grid, context: Context) -> None:
            del context
            strategy = FedAvg(min_available_nodes=EDGES, min_train_nodes=EDGES)
            wrapped = SecAggPlusGrid(grid, secagg_workflow(config)) if secure else grid
            strategy.start(
                grid=wrapped,
                initial_arrays=ArrayRecord({"w": Array(np.zeros(dim, dtype=np.float32))}),
                num_rounds=rounds,
                evaluate_fn=lambda _r, _a: stamps.append(time.perf_counter()) or None,
            )

        grid = InProcessGrid(build_client(), EDGES)
        with task_identity(1):
            server(grid, Context(1, SERVER_NODE_ID, {}, RecordDict(), {}))
        return _round_times(stamps)

    return run


def measure(run: Callable[[bool], list[float]], repeats: int) -> dict[str, float]:
    """Alternate plain and secure runs; median round seconds of each and their ratio."""
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):
        for secure in (False, True):
            times[secure] += run(secure)
    plain, secure = statistics.median(times[False]), statistics.median(times[True])
    return {"plain_s": plain, "secagg_s": secure, "ratio": secure / plain}


def main() -> int:
    """Run both cases and print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dim", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # Flower's per-round INFO/WARNING banners
    results = {
        "behaviour": measure(behaviour_rounds(args.rounds), args.repeats),
        f"vector-{args.dim // 1000}k": measure(vector_rounds(args.dim, args.rounds), args.repeats),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'case':<14} {'plain s/round':>14} {'SecAgg+ s/round':>16} {'ratio':>7}")
    for name, r in results.items():
        print(f"{name:<14} {r['plain_s']:>14.3f} {r['secagg_s']:>16.3f} {r['ratio']:>7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
