"""Concurrent load: many clients mixing uploads, purpose-scoped reads and health.

Run: ``python benchmarks/load.py [--postgres] [--workers N] [--clients N] [--duration S]``.

Starts ``fedprofile serve --workers N`` on 127.0.0.1 (a SQLite file by default, or a throwaway
PostgreSQL schema with ``--postgres``), registers 8 edges, records consent for two subjects
per client, then runs ``--clients`` concurrent clients for ``--duration`` seconds. Each
client loops over: a consent-checked upload of its own subjects' service-routing fields
(``PUT /subjects/{s}/profile``, a fresh ``Idempotency-Key`` each time, retried with the same
key after a time-out), a purpose-scoped read by an agent (``GET /subjects/{s}/profile``) and
``GET /health``, in proportions 4 : 4 : 2.

Then, on the same machine in the same run, the same clients and mix against a plain FastAPI
app on the same engine and pool (``benchmarks/load_plain_app.py``), served with the same
worker count. It prints, for both, status counts, p50/p99 latency per operation and
requests/s, and checks fedprofile's writes:

- lost: every acknowledged upload key has its idempotency receipt, and every subject's stored
  contribution equals the last value its client saw acknowledged;
- duplicated: ``profile.write`` audit entries with outcome *accepted* equal the receipts;
- the audit chain verifies.

Exit status 1 when fedprofile answered any 5xx, lost or duplicated a write or broke the
chain, so the acceptance run is a single command. Nothing listens beyond loopback, every
server stops itself when the run ends, and ``--duration`` bounds the run.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    AGENT_TOKEN,
    ENROLLMENT_TOKEN,
    ROOT,
    fedprofile_server,
    free_port,
    postgres_schema,
    served,
    server_env,
    verify_audit,
)

from models import API_PREFIX  # noqa: E402

EDGES = 8
SUBJECTS_PER_CLIENT = 2
PURPOSE = "service_routing"
#: Operation mix (upload : read : health).
MIX = (("upload", 4), ("read", 4), ("health", 2))
REQUEST_TIMEOUT_S = 30.0
RETRIES = 3


def pseudonym(seed: str) -> str:
    """A pseudonym-shaped subject for the load (``ps_`` + 64 hex)."""
    return "ps_" + hashlib.sha256(seed.encode()).hexdigest()


@dataclass
class Tally:
    """What one server answered during the run."""

    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    timeouts: Counter[str] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)
    acknowledged: dict[str, tuple[str, int]] = field(default_factory=dict)  # key -> subject, n
    last_value: dict[str, int] = field(default_factory=dict)  # subject -> last acked n
    unconfirmed: set[str] = field(default_factory=set)  # subjects with an unanswered write
    retry_after_missing: int = 0
    seconds: float = 0.0

    def record(self, op: str, status: int, seconds: float, headers: httpx.Headers) -> None:
        """Count one answer; note a 429/503 without ``Retry-After``."""
        self.statuses[(op, status)] += 1
        self.latencies[op].append(seconds)
        if status in (429, 503) and "retry-after" not in headers:
            self.retry_after_missing += 1

    def server_errors(self) -> int:
        """5xx answers (a 503 with ``Retry-After`` included: the acceptance counts it)."""
        return sum(n for (_, status), n in self.statuses.items() if status >= 500)

    def total(self) -> int:
        """All answers."""
        return sum(self.statuses.values())


@dataclass(frozen=True)
class Target:
    """How to call one server: request builders per operation."""

    name: str
    base: str

    def upload(
        self, subject: str, n: int, key: str
    ) -> tuple[str, str, dict[str, Any], dict[str, str]]:
        raise NotImplementedError

    def read(self, subject: str) -> tuple[str, str, dict[str, str]]:
        raise NotImplementedError

    def health(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Fedprofile(Target):
    """fedprofile's own API: edge uploads, agent reads, health."""

    edge_headers: tuple[dict[str, str], ...] = ()

    def upload(
        self, subject: str, n: int, key: str
    ) -> tuple[str, str, dict[str, Any], dict[str, str]]:
        computed = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
        fields = [
            {"name": "feature.frequency_90d", "value": n, "confidence": 0.9},
            {"name": "feature.monetary_90d", "value": 10.0 * (n % 50), "confidence": 0.9},
            {"name": "feature.cs_messages_90d", "value": n % 7, "confidence": 0.8},
            {"name": "score.escalation_risk", "value": round((n % 97) / 97, 4),
             "confidence": 0.7},
        ]
        for item in fields:
            item["computed_at"] = computed
            item["explanation"] = [{"feature": "frequency_90d", "weight": 0.4}]
        edge = self.edge_headers[int(subject[3:11], 16) % len(self.edge_headers)]
        return ("PUT", f"{self.base}{API_PREFIX}/subjects/{subject}/profile",
                {"purpose": PURPOSE, "fields": fields}, edge)

    def read(self, subject: str) -> tuple[str, str, dict[str, str]]:
        return ("GET", f"{self.base}{API_PREFIX}/subjects/{subject}/profile?purpose={PURPOSE}",
                {"Authorization": f"Bearer {AGENT_TOKEN}"})

    def health(self) -> str:
        return f"{self.base}{API_PREFIX}/health"


@dataclass(frozen=True)
class Plain(Target):
    """The plain FastAPI baseline."""

    def upload(
        self, subject: str, n: int, key: str
    ) -> tuple[str, str, dict[str, Any], dict[str, str]]:
        return ("PUT", f"{self.base}/subjects/{subject[:64]}/value?value={n}&key={key}", {}, {})

    def read(self, subject: str) -> tuple[str, str, dict[str, str]]:
        return ("GET", f"{self.base}/subjects/{subject[:64]}/value", {})

    def health(self) -> str:
        return f"{self.base}/health"


async def _send(
    http: httpx.AsyncClient, tally: Tally, op: str, method: str, url: str,
    body: dict[str, Any] | None, headers: dict[str, str],
) -> httpx.Response | None:
    """One request; a time-out or a dropped connection is counted and answers None."""
    started = time.perf_counter()
    try:
        response = await http.request(method, url, json=body, headers=headers)
    except httpx.TimeoutException:
        tally.timeouts[op] += 1
        return None
    except httpx.TransportError as exc:
        tally.transport_errors[f"{op} {type(exc).__name__}"] += 1
        return None
    tally.record(op, response.status_code, time.perf_counter() - started, response.headers)
    return response


async def _client(
    index: int, target: Target, http: httpx.AsyncClient, tally: Tally, deadline: float
) -> None:
    """One client: its own subjects, its own write counter, until the deadline."""
    rng = random.Random(index)
    subjects = [pseudonym(f"load-{index}-{k}") for k in range(SUBJECTS_PER_CLIENT)]
    ops = [op for op, weight in MIX for _ in range(weight)]
    n = 0
    while time.monotonic() < deadline:
        op = rng.choice(ops)
        subject = rng.choice(subjects)
        if op == "upload":
            n += 1
            key = f"load-{index}-{n}"
            method, url, body, headers = target.upload(subject, n, key)
            headers = {**headers, "Idempotency-Key": key}
            answered = False
            for _ in range(RETRIES):  # the same key after a time-out: answered once
                response = await _send(http, tally, op, method, url, body or None, headers)
                if response is None:
                    if time.monotonic() > deadline + REQUEST_TIMEOUT_S:
                        break  # the run is over: the write may or may not have landed
                    continue
                answered = True
                if response.status_code == 200:
                    tally.acknowledged[key] = (subject, n)
                    tally.last_value[subject] = n
                break
            if not answered:  # its final state cannot be predicted: left out of the check
                tally.unconfirmed.add(subject)
        elif op == "read":
            method, url, headers = target.read(subject)
            await _send(http, tally, op, method, url, None, headers)
        else:
            await _send(http, tally, op, "GET", target.health(), None, {})


async def _drive(target: Target, clients: int, duration: float) -> Tally:
    """Run ``clients`` concurrent clients against ``target`` for ``duration`` seconds."""
    tally = Tally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S) as http:
        started = time.monotonic()
        deadline = started + duration
        await asyncio.gather(
            *(_client(i, target, http, tally, deadline) for i in range(clients))
        )
        tally.seconds = time.monotonic() - started
    return tally


def _setup(base: str, clients: int) -> tuple[dict[str, str], ...]:
    """Register the edges and record consent for every client's subjects."""
    occurred = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    with httpx.Client(base_url=base, timeout=120) as http:
        headers = []
        for e in range(EDGES):
            answer = http.post(f"{API_PREFIX}/edges", json={"name": f"load-{e}", "channel": "web"},
                               headers={"X-Enrollment-Token": ENROLLMENT_TOKEN})
            answer.raise_for_status()
            headers.append({"Authorization": f"Bearer {answer.json()['token']}"})
        by_edge: dict[int, list[dict[str, str]]] = defaultdict(list)
        for i in range(clients):
            for k in range(SUBJECTS_PER_CLIENT):
                subject = pseudonym(f"load-{i}-{k}")
                by_edge[int(subject[3:11], 16) % EDGES].append(
                    {"subject": subject, "purpose": PURPOSE, "status": "granted",
                     "occurred_at": occurred, "notice_version": "load-1", "channel": "web"})
        for e, events in by_edge.items():
            for start in range(0, len(events), 500):
                http.post(f"{API_PREFIX}/consents", json=events[start:start + 500],
                          headers=headers[e]).raise_for_status()
    return tuple(headers)


def _check_writes(base: str, database_url: str, tally: Tally) -> dict[str, Any]:
    """Lost and duplicated writes of the fedprofile run (see the module docstring)."""
    from sqlalchemy import func, select
    from sqlmodel import Session

    from server.db import create_db_engine
    from server.tables.audit_entry import AuditEntry
    from server.tables.upload_receipt import UploadReceipt

    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            keys = set(session.scalars(select(UploadReceipt.idempotency_key)))
            accepted = session.scalar(
                select(func.count()).select_from(AuditEntry)
                .where(AuditEntry.action == "profile.write", AuditEntry.outcome == "accepted")
            )
    finally:
        engine.dispose()
    missing_receipts = sum(1 for key in tally.acknowledged if key not in keys)
    stale = 0
    with httpx.Client(base_url=base, timeout=120,
                      headers={"Authorization": f"Bearer {AGENT_TOKEN}"}) as http:
        for subject, n in tally.last_value.items():
            if subject in tally.unconfirmed:
                continue
            answer = http.get(f"{API_PREFIX}/subjects/{subject}/profile",
                              params={"purpose": PURPOSE, "breakdown": "channel"})
            answer.raise_for_status()
            stored = {f["name"]: f for f in answer.json()["fields"]}
            contributions = stored.get("feature.frequency_90d", {}).get("contributions") or []
            if [c["value"] for c in contributions] != [n]:
                stale += 1
    return {"acknowledged": len(tally.acknowledged), "receipts": len(keys),
            "unconfirmed_subjects": len(tally.unconfirmed),
            "accepted_audit_entries": int(accepted or 0), "lost": missing_receipts + stale,
            "duplicated": max(0, int(accepted or 0) - len(keys))}


def _summary(tally: Tally) -> dict[str, Any]:
    ops: dict[str, Any] = {}
    for op, values in sorted(tally.latencies.items()):
        ordered = sorted(values)
        ops[op] = {
            "count": len(values),
            "p50_ms": round(1000 * statistics.median(ordered), 1),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        }
    return {
        "requests_per_s": round(tally.total() / tally.seconds, 1) if tally.seconds else 0.0,
        "statuses": {f"{op} {status}": n for (op, status), n in sorted(tally.statuses.items())},
        "server_errors": tally.server_errors(),
        "client_timeouts": sum(tally.timeouts.values()),
        "transport_errors": sum(tally.transport_errors.values()),
        "transport_error_kinds": dict(tally.transport_errors),
        "retry_after_missing": tally.retry_after_missing,
        "operations": ops,
    }


def _print(name: str, summary: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    print(f"\n{name}: {summary['requests_per_s']:.0f} requests/s, "
          f"{summary['server_errors']} x 5xx, {summary['client_timeouts']} client time-outs, "
          f"{summary['transport_errors']} dropped connections")
    for op, figures in summary["operations"].items():
        line = (f"  {op:<7} {figures['count']:7d} answers  p50 {figures['p50_ms']:8.1f} ms  "
                f"p99 {figures['p99_ms']:8.1f} ms")
        if baseline and op in baseline["operations"]:
            base = baseline["operations"][op]
            line += (f"   (plain FastAPI p50 {base['p50_ms']:.1f} ms, p99 {base['p99_ms']:.1f} ms;"
                     f" x{figures['p50_ms'] / max(base['p50_ms'], 0.1):.1f} at p50)")
        print(line)
    print("  statuses: " + ", ".join(f"{k}: {v}" for k, v in summary["statuses"].items()))


def run(database_url: str, workdir: Path, *, workers: int, clients: int,
        duration: float) -> dict[str, Any]:
    """Run fedprofile then the plain baseline; return the report."""
    backend = database_url.split(":", 1)[0].split("+", 1)[0]
    with fedprofile_server(database_url, workdir, workers=workers) as (base, _pid):
        edge_headers = _setup(base, clients)
        tally = asyncio.run(_drive(Fedprofile("fedprofile", base, edge_headers), clients,
                                   duration))
        writes = _check_writes(base, database_url, tally)
    ok, entries = verify_audit(database_url)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "load_plain_app:create_app", "--factory",
               "--app-dir", str(ROOT / "benchmarks"), "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    with served(command, env=server_env(database_url), cwd=workdir, port=port,
                health_path="/health") as (plain_base, _):
        plain = asyncio.run(_drive(Plain("plain", plain_base), clients, duration))
    report = {
        "backend": backend, "workers": workers, "clients": clients, "duration_s": duration,
        "fedprofile": _summary(tally), "plain_fastapi": _summary(plain),
        "writes": writes, "audit": {"verifies": ok, "entries": entries},
    }
    report["ratio_throughput"] = round(
        report["fedprofile"]["requests_per_s"]
        / max(report["plain_fastapi"]["requests_per_s"], 0.1), 3)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true",
                        help="use a throwaway schema on PostgreSQL at 127.0.0.1:5432 (db test)")
    parser.add_argument("--workers", type=int, default=None,
                        help="server worker processes (default: 4 on PostgreSQL, 1 on SQLite)")
    parser.add_argument("--clients", type=int, default=500, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per server")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    if not 1 <= args.clients <= 2000 or not 1 <= args.duration <= 600:
        parser.error("--clients must be 1..2000 and --duration 1..600 s")
    workers = args.workers or (4 if args.postgres else 1)
    with tempfile.TemporaryDirectory(prefix="fedprofile-load-") as tmp:
        workdir = Path(tmp)
        if args.postgres:
            with postgres_schema() as url:
                report = run(url, workdir, workers=workers, clients=args.clients,
                             duration=args.duration)
        else:
            report = run(f"sqlite:///{workdir / 'server.sqlite'}", workdir, workers=workers,
                         clients=args.clients, duration=args.duration)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"\n{report['clients']} clients x {report['duration_s']:.0f} s, "
              f"{report['workers']} worker(s), {report['backend']}, loopback")
        _print("fedprofile", report["fedprofile"], report["plain_fastapi"])
        _print("plain FastAPI (same engine and pool)", report["plain_fastapi"], None)
        writes = report["writes"]
        print(f"\nwrites: {writes['acknowledged']} acknowledged, {writes['receipts']} receipts, "
              f"{writes['accepted_audit_entries']} accepted audit entries -> "
              f"{writes['lost']} lost, {writes['duplicated']} duplicated")
        print(f"audit chain: {'verifies' if report['audit']['verifies'] else 'BROKEN'} "
              f"({report['audit']['entries']} entries)")
        print(f"throughput ratio fedprofile / plain FastAPI: {report['ratio_throughput']:.3f}")
    failed = (report["fedprofile"]["server_errors"] or report["fedprofile"]["transport_errors"]
              or report["writes"]["lost"]
              or report["writes"]["duplicated"] or not report["audit"]["verifies"])
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
