"""Federated rounds with many simulated edges (run: ``python benchmarks/simulation_scale.py``).

Issue 7 asks whether the Flower Simulation Engine (Ray) carries 1,000 simulated edges on this
2-core machine, and what fedprofile's privacy machinery costs on top of Flower. One run:

1. **Data.** A seeded synthetic population (``simulations.synthetic``) with
   ``--users-per-edge`` users per edge; user ``i`` goes to edge ``i mod N`` (all of a user's
   channels on one edge, so every edge has a few consented subjects). Each edge is
   initialised and ingested like ``fedprofile simulate`` does it (events and consents only).
   The examples each edge trains on (consented subjects, the fixed time split of
   ``client.learning.store_source.behaviour_examples``) are also exported as tensors for the
   plain path, so both paths see the same data.
2. **fedprofile.** Our ``ClientApp`` (consent check, local store, privacy ledger, DP-SGD with
   Opacus at the default noise) and ``ServerApp`` (``ProfileStrategy`` around FedAvg):
   ``--rounds`` rounds of train + evaluate on every edge.
3. **Flower plain.** A plain ``ClientApp`` training the same behaviour model on the same
   examples with plain SGD (same batch size, epochs and learning rate, no DP, no store,
   no ledger) and evaluating it, with Flower's ``FedAvg``: same rounds, same edges.

Each path runs in its own child process (so peak memory is its own: the child's resident
set plus every process it started, Ray's included, sampled from ``/proc`` every 0.2 s),
with ``num_cpus=1`` per virtual edge (2 Ray actors on 2 cores). Printed: seconds per round
(round 1 includes Ray start-up and each actor's first imports; the steady state is the mean
of rounds >= 2), the whole simulation's seconds, peak RSS, optionally the driver's
tracemalloc peak (``--tracemalloc``; slows the driver), and the fedprofile / plain ratios.
``--quick`` runs 20 edges x 2 rounds.

Only Flower's public modules are used (``flwr.app``, ``flwr.clientapp``, ``flwr.serverapp``,
``flwr.simulation``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

for _name, _value in (
    ("FLWR_TELEMETRY_ENABLED", "0"),
    ("FLWR_DISABLE_UPDATE_CHECK", "1"),
    ("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1"),
    ("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0"),
    # Ray runs its workers at nice 15: beside any other work they starve and the driver's
    # message pump waits on them, so both paths would measure the machine's load instead.
    ("RAY_worker_niceness", "0"),
):
    os.environ.setdefault(_name, _value)

PATHS = ("fedprofile", "plain")
SEED = 7


# ---------------------------------------------------------------------------- memory
def _tree_rss(root: int) -> int:
    """Return the resident set (bytes) of ``root`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


class PeakRss:
    """Samples the resident set of a process tree in a thread; ``peak`` holds the maximum."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval, self.peak = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------------------- data
def prepare(work: Path, *, edges: int, users_per_edge: int, days: int) -> dict[str, Any]:
    """Generate the population, build one edge per partition and export the examples."""
    import torch

    from client import EdgeStore, ingest_file
    from client.edge import init_edge, open_tenant_key
    from client.learning.store_source import behaviour_examples, behaviour_learner
    from models import Channel, RunConfig
    from privacy import Pseudonymizer, create_key_file
    from simulations.synthetic import PopulationConfig, make_users, user_lines

    started = time.perf_counter()
    if work.exists():
        shutil.rmtree(work)
    (work / "parts").mkdir(parents=True)
    config = PopulationConfig(users=edges * users_per_edge, days=days, seed=SEED)
    # 1. Lines per edge: user i -> edge i mod N (messages skipped: the task is behaviour).
    handles = [
        (work / "parts" / f"edge-{i:04d}.jsonl").open("w", encoding="utf-8") for i in range(edges)
    ]
    try:
        for user in make_users(config):
            out = handles[user.index % edges]
            for line in user_lines(user, config):
                if line["kind"] != "message":
                    out.write(json.dumps(line, ensure_ascii=False) + "\n")
    finally:
        for handle in handles:
            handle.close()
    generated = time.perf_counter()
    # 2. One edge per part (shared tenant key), ingested; 3. its examples as tensors.
    key = work / "tenant.key"
    create_key_file(key)
    run_config = RunConfig(seed=SEED)
    learner = behaviour_learner(run_config)
    train_sizes: list[int] = []
    (work / "plain").mkdir()
    for i in range(edges):
        edge_dir = work / "edges" / f"edge-{i:04d}"
        init_edge(edge_dir=edge_dir, name=f"edge-{i:04d}", channel=Channel.APP, tenant_key=key)
        with EdgeStore.for_edge_dir(edge_dir) as store:
            ingest_file(
                store=store,
                path=work / "parts" / f"edge-{i:04d}.jsonl",
                pseudonymizer=Pseudonymizer(open_tenant_key(store)),
                detector=_NoText(),
            )
            split = behaviour_examples(store, config=run_config, at=config.end)
        train_sizes.append(len(split.train))
        tensors = {
            part: list(learner.encode(examples).tensors) if examples else []
            for part, examples in (("train", split.train), ("holdout", split.holdout))
        }
        torch.save(tensors, work / "plain" / f"edge-{i:04d}.pt")
    return {
        "users": config.users,
        "days": days,
        "edges_with_training_data": sum(1 for n in train_sizes if n > 0),
        "training_examples": sum(train_sizes),
        "generate_seconds": round(generated - started, 1),
        "ingest_seconds": round(time.perf_counter() - generated, 1),
        "end": config.end.isoformat(),
    }


class _NoText:
    """Scrubber for parts without messages (never called: messages are not written)."""

    def scrub_many(self, texts: Any, *, lang: str) -> list[Any]:  # noqa: ARG002
        raise RuntimeError("message lines are not part of this benchmark")


# ---------------------------------------------------------------------------- timing
@dataclass
class RoundClock:
    """Wall-clock marks: when the server started and when each round's evaluation ended."""

    started: float = 0.0
    rounds: list[float] | None = None
    status: str = ""

    def start(self) -> None:
        self.started, self.rounds = time.perf_counter(), []

    def round_done(self) -> None:
        assert self.rounds is not None
        self.rounds.append(time.perf_counter())
        self.mark(f"round {len(self.rounds)} done")

    def mark(self, what: str) -> None:
        """Log progress to stderr (the child's log file)."""
        print(f"{time.perf_counter() - self.started:8.1f} s  {what}", file=sys.stderr, flush=True)

    def seconds(self) -> list[float]:
        marks = [self.started, *(self.rounds or [])]
        return [round(b - a, 2) for a, b in zip(marks, marks[1:], strict=False)]


CLOCK = RoundClock()


class TimingRecorder:
    """A fedprofile run recorder that only marks the end of each round's evaluation."""

    def start(self, *, config: dict[str, Any], num_rounds: int) -> None:  # noqa: ARG002
        CLOCK.start()

    def record_round(self, summary: Any) -> None:
        if summary.phase == "evaluate":
            CLOCK.round_done()
        else:
            CLOCK.mark(f"round {summary.server_round} trained")

    def finish(self, *, status: str) -> None:
        CLOCK.status = status


# ---------------------------------------------------------------------------- apps
def fedprofile_apps(work: Path, *, edges: int, rounds: int, end: datetime) -> tuple[Any, Any]:
    """Our ClientApp and ServerApp (DP-SGD on: dp-mode local, the default)."""
    from client import build_client_app
    from server import build_server_app

    overrides = {
        "num-server-rounds": rounds,
        "data-dir": str((work / "edges").resolve()),
        "database-url": "",
        "min-nodes": edges,
        "seed": SEED,
        "dp-mode": "local",
    }
    client = build_client_app(overrides, clock=lambda: end)
    server = build_server_app(overrides, recorder_factory=lambda _config: TimingRecorder())
    return client, server


def plain_apps(work: Path, *, edges: int, rounds: int) -> tuple[Any, Any]:
    """A plain Flower ClientApp + FedAvg training the same model on the same examples."""
    import torch
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg

    from client.learning.store_source import behaviour_learner
    from models import parse_run_config

    config = parse_run_config({}, {"seed": SEED})
    learner = behaviour_learner(config)
    data_dir = (work / "plain").resolve()
    client = ClientApp()

    def load(context: Context, msg: Message) -> tuple[torch.nn.Module, dict[str, Any]]:
        pid = int(context.node_config["partition-id"])
        tensors = torch.load(data_dir / f"edge-{pid:04d}.pt")
        model = learner.new_model(SEED)
        model.load_state_dict(msg.content.array_records["arrays"].to_torch_state_dict())
        return model, tensors

    def loss_of(model: torch.nn.Module, batch: list[torch.Tensor]) -> torch.Tensor:
        return learner.losses(model, batch).mean()

    @client.train()
    def train(msg: Message, context: Context) -> Message:
        model, tensors = load(context, msg)
        rows = tensors["train"]
        n = int(rows[0].shape[0]) if rows else 0
        optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate)
        generator = torch.Generator().manual_seed(SEED + int(context.node_config["partition-id"]))
        total = 0.0
        model.train()
        for _ in range(config.local_epochs if n else 0):  # no examples: reply unchanged
            for idx in torch.split(torch.randperm(n, generator=generator), config.batch_size):
                optimizer.zero_grad()
                loss = loss_of(model, [t[idx] for t in rows])
                torch.autograd.backward(loss)
                optimizer.step()
                total += float(loss.detach()) * len(idx)
        metrics = MetricRecord({"num-examples": n, "train-loss": total / max(n, 1)})
        return Message(
            RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}),
            reply_to=msg,
        )

    @client.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        model, tensors = load(context, msg)
        rows = tensors["holdout"]
        n = int(rows[0].shape[0]) if rows else 0
        model.eval()
        with torch.no_grad():
            loss = float(loss_of(model, rows)) if n else 0.0
        metrics = MetricRecord({"num-examples": n, "eval-loss": loss})
        return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    class TimedFedAvg(FedAvg):
        def aggregate_train(self, server_round: int, replies: Iterable[Message]) -> Any:
            result = super().aggregate_train(server_round, replies)
            CLOCK.mark(f"round {server_round} trained")
            return result

        def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]) -> Any:
            result = super().aggregate_evaluate(server_round, replies)
            CLOCK.round_done()
            return result

    server = ServerApp()

    @server.main()
    def main(grid: Grid, context: Context) -> None:  # noqa: ARG001
        strategy = TimedFedAvg(
            fraction_train=1.0,
            fraction_evaluate=1.0,
            min_train_nodes=edges,
            min_evaluate_nodes=edges,
            min_available_nodes=edges,
        )
        CLOCK.start()
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(learner.new_model(SEED).state_dict()),
            num_rounds=rounds,
        )

    return client, server


def run_worker(path: str, work: Path, *, edges: int, rounds: int, trace: bool) -> dict[str, Any]:
    """Run one path on the Simulation Engine in this process; return its timings."""
    import logging

    from flwr.simulation import run_simulation

    meta = json.loads((work / "prepare.json").read_text())
    if path == "fedprofile":
        client, server = fedprofile_apps(
            work, edges=edges, rounds=rounds, end=datetime.fromisoformat(meta["end"])
        )
    else:
        client, server = plain_apps(work, edges=edges, rounds=rounds)
    os.environ.setdefault("FLWR_HOME", tempfile.mkdtemp(prefix="fedprofile-bench-flwr-"))
    logging.getLogger("flwr").setLevel(logging.ERROR)
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_simulation(
            server_app=server,
            client_app=client,
            num_supernodes=edges,
            backend_config={
                "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                "init_args": {
                    "num_cpus": 2,
                    "num_gpus": 0,
                    "include_dashboard": False,
                    "logging_level": "error",
                    "log_to_driver": False,
                },
            },
        )
    total = time.perf_counter() - started
    peak_heap = tracemalloc.get_traced_memory()[1] if trace else None
    per_round = CLOCK.seconds()
    return {
        "path": path,
        "total_seconds": round(total, 1),
        "round_seconds": per_round,
        "status": CLOCK.status or ("completed" if len(per_round) == rounds else "short"),
        "tracemalloc_peak_mb": None if peak_heap is None else round(peak_heap / 2**20, 1),
    }


# ---------------------------------------------------------------------------- driver
def _child(path: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    cmd = [
        sys.executable, __file__, "--worker", path, "--workdir", str(work),
        "--edges", str(args.edges), "--rounds", str(args.rounds),
    ] + (["--tracemalloc"] if args.tracemalloc else [])  # fmt: skip
    log = (work / f"{path}.log").open("w")
    load = os.getloadavg()[0]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    with PeakRss(proc.pid) as peak:
        out, _ = proc.communicate()
    log.close()
    loads = (round(load, 1), round(os.getloadavg()[0], 1))
    lines = [x for x in out.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{path} run failed (exit {proc.returncode}); see {work / path}.log")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    result["peak_rss_gb"] = round(peak.peak / 2**30, 2)
    result["load_average"] = loads  # 1-minute load before and after: other work skews times
    return result


def _steady(seconds: list[float]) -> float | None:
    later = seconds[1:]
    return round(sum(later) / len(later), 2) if later else None


def _report(meta: dict[str, Any], results: dict[str, dict[str, Any]], args: Any) -> None:
    print(
        f"\n{args.edges} simulated edges x {args.rounds} rounds (train + evaluate on every "
        f"edge), Flower Simulation Engine, 2 Ray actors on {os.cpu_count()} cores"
    )
    print(
        f"data: {meta['users']} users over {meta['days']} days, "
        f"{meta['training_examples']} training examples, "
        f"{meta['edges_with_training_data']}/{args.edges} edges with training data "
        f"(generated in {meta['generate_seconds']} s, ingested in {meta['ingest_seconds']} s)"
    )
    print("round 1 includes Ray start-up and each actor's first imports (warm-up)")
    header = (
        f"{'path':<12}{'round 1 s':>11}{'round>=2 s':>12}{'total s':>9}{'peak RSS GB':>13}"
        f"{'load before/after':>19}"
    )
    if args.tracemalloc:
        header += f"{'heap MB':>9}"
    print(header)
    for path, r in results.items():
        rounds = r["round_seconds"]
        row = (
            f"{path:<12}{(rounds[0] if rounds else '-')!s:>11}{_steady(rounds)!s:>12}"
            f"{r['total_seconds']:>9}{r['peak_rss_gb']:>13}"
            f"{'/'.join(str(x) for x in r['load_average']):>19}"
        )
        if args.tracemalloc:
            row += f"{r['tracemalloc_peak_mb']!s:>9}"
        print(row)
    if len(results) == 2:
        ours, plain = results["fedprofile"], results["plain"]
        for label, key in (("round>=2", _steady), ("round 1", lambda s: s[0] if s else None)):
            a, b = key(ours["round_seconds"]), key(plain["round_seconds"])
            if a and b:
                print(f"ratio fedprofile/plain, seconds per {label}: {a / b:.2f}")
        print(f"ratio fedprofile/plain, peak RSS: {ours['peak_rss_gb'] / plain['peak_rss_gb']:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users-per-edge", type=int, default=6)
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--quick", action="store_true", help="20 edges x 2 rounds")
    parser.add_argument("--only", choices=PATHS, help="run one path only")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace the driver heap")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the edges already prepared in --workdir"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--worker", choices=PATHS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.edges, args.rounds = 20, 2
    if args.edges < 2 or args.rounds < 1:
        parser.error("--edges must be >= 2 and --rounds >= 1")
    if args.worker:
        result = run_worker(
            args.worker, args.workdir, edges=args.edges, rounds=args.rounds, trace=args.tracemalloc
        )
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fedprofile-scale-"))
    prepared = work / "prepare.json"
    if args.reuse and prepared.is_file() and len(list((work / "plain").iterdir())) == args.edges:
        meta = json.loads(prepared.read_text())
        print(f"reusing {args.edges} edges in {work}", flush=True)
    else:
        print(f"preparing {args.edges} edges in {work} ...", flush=True)
        meta = prepare(work, edges=args.edges, users_per_edge=args.users_per_edge, days=args.days)
        prepared.write_text(json.dumps(meta))
    results: dict[str, dict[str, Any]] = {}
    for path in (args.only,) if args.only else PATHS:
        print(f"running {path} ...", flush=True)
        results[path] = _child(path, args, work)
    if args.json:
        print(json.dumps({"data": meta, "results": results}, indent=2))
    _report(meta, results, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
