"""Routing decisions through the API beside plain profile reads, and the evaluator in process.

Run: ``python benchmarks/decisions.py [--sqlite] [--persons N] [--clients N] [--duration S]
[--rate R[,R...]] [--workers N]``.

1. Seeds ``--persons`` people straight into a throwaway database (PostgreSQL schema by
   default, a SQLite file with ``--sqlite``): subject, a granted ``service_routing`` consent
   record and five service-routing fields each, contributed by one registered desk edge —
   the rows the API itself would store. Seeding is not timed.
2. Starts ``fedprofile serve`` on 127.0.0.1 and, for each ``--rate`` (0 = closed loop: each
   client sends its next request when the last is answered; R > 0 = R requests/s in total,
   paced evenly over the clients), runs ``--clients`` concurrent clients for ``--duration``
   seconds on ``POST /decisions`` (an edge's routing call with live signals, a random
   person), then the same clients on ``GET /subjects/{s}/profile?purpose=service_routing``
   (an agent's audited read of the same fields). Paced latency counts from the scheduled
   send time, so a client that falls behind shows it (no coordinated omission).
3. The same clients and rates against the plain FastAPI baseline's primary-key read
   (``benchmarks/load_plain_app.py``) on the same engine and pool.
4. After the server stops (its shutdown flushes the batched decision audit): every stored
   decision has exactly one ``decision.make`` entry, none is pending, the chain verifies.
5. ``DecisionPolicy.decide`` in process on the same kind of inputs (decisions/s).

Prints p50/p99/throughput per operation and rate with the ratios to the plain read. Exit
status 1 on any 5xx, an unaudited decision or a broken chain. Servers listen on loopback
only and stop when the run ends.
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
from collections import Counter
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

PURPOSE = "service_routing"
REQUEST_TIMEOUT_S = 30.0
INTENTS = ("inquiry", "complaint", "purchase", "return")
EMOTIONS = ("negative", "neutral", "positive")
URGENCIES = ("low", "normal", "urgent")
CHANNELS = ("desk", "web", "app")
SEED_CHUNK = 5000


def pseudonym(i: int) -> str:
    """The ``i``-th seeded person (``ps_`` + 64 hex)."""
    return "ps_" + hashlib.sha256(f"decisions-{i}".encode()).hexdigest()


def person_fields(i: int) -> dict[str, Any]:
    """Five service-routing fields of person ``i`` (varied, so rules fire differently)."""
    rng = random.Random(i)
    return {
        "feature.monetary_90d": round(rng.uniform(0, 5000), 2),
        "feature.complaints_90d": float(rng.choice((0, 0, 0, 1, 2, 3))),
        "feature.cs_messages_90d": float(rng.randint(0, 12)),
        "score.escalation_risk": round(rng.random(), 4),
        "text.last_intent": rng.choice(INTENTS),
    }


def live_signals(rng: random.Random) -> dict[str, dict[str, Any]]:
    """Signals of one message as an edge's text models would report them."""
    return {
        head: {"label": rng.choice(labels), "probability": round(rng.uniform(0.5, 0.99), 3)}
        for head, labels in (("intent", INTENTS), ("emotion", EMOTIONS), ("urgency", URGENCIES))
    }


# -- seeding ---------------------------------------------------------------------------------


def seed(database_url: str, *, persons: int, edge_id: str) -> None:
    """Insert ``persons`` subjects, consents and fields with SQLAlchemy core (not timed)."""
    from load_plain_app import metadata as plain_metadata
    from load_plain_app import plain_write
    from sqlalchemy import insert

    from consent import ConsentEvent, ConsentStatus, Purpose
    from server.crud.consent import event_hash
    from server.db import create_db_engine
    from server.tables.consent_record import ConsentRecord
    from server.tables.profile_field import ProfileField
    from server.tables.subject import Subject

    now = datetime.now(UTC)
    granted_at, computed = now - timedelta(days=2), now - timedelta(hours=1)
    explanation = json.dumps([{"feature": "frequency_90d", "weight": 0.4}])
    engine = create_db_engine(database_url)
    plain_metadata.create_all(engine, checkfirst=True)
    try:
        for start in range(0, persons, SEED_CHUNK):
            subjects, consents, fields, plain = [], [], [], []
            for i in range(start, min(start + SEED_CHUNK, persons)):
                s = pseudonym(i)
                subjects.append(
                    {"pseudonym": s, "first_seen_at": granted_at, "last_seen_at": computed}
                )
                event = ConsentEvent(
                    subject=s,
                    purpose=Purpose.SERVICE_ROUTING,
                    status=ConsentStatus.GRANTED,
                    occurred_at=granted_at,
                    notice_version="bench-1",
                    channel="desk",
                )
                consents.append(
                    {
                        **event.model_dump(),
                        "purpose": PURPOSE,
                        "status": "granted",
                        "event_hash": event_hash(event),
                        "received_at": granted_at,
                        "edge_id": edge_id,
                    }
                )
                for name, value in person_fields(i).items():
                    fields.append({
                        "subject": s, "name": name, "value_json": json.dumps(value),
                        "confidence": 0.9, "explanation_json": explanation,
                        "provisional": False, "computed_at": computed,
                        "source_edge_id": edge_id, "source_channel": "desk",
                        "uploaded_purpose": PURPOSE, "updated_at": computed,
                    })  # fmt: skip
                plain.append({"key": s[:64], "subject": s[:64], "value": i})
            with engine.begin() as connection:
                connection.execute(insert(Subject.__table__), subjects)  # type: ignore[attr-defined]
                connection.execute(insert(ConsentRecord.__table__), consents)  # type: ignore[attr-defined]
                connection.execute(insert(ProfileField.__table__), fields)  # type: ignore[attr-defined]
                connection.execute(insert(plain_write), plain)
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()


def register_edge(base: str) -> tuple[str, str]:
    """Register the desk edge that contributed the seeded fields; return (id, token)."""
    answer = httpx.post(
        f"{base}{API_PREFIX}/edges",
        json={"name": "bench-desk", "channel": "desk"},
        headers={"X-Enrollment-Token": ENROLLMENT_TOKEN},
        timeout=60,
    )
    answer.raise_for_status()
    return answer.json()["edge_id"], answer.json()["token"]


# -- load ------------------------------------------------------------------------------------


@dataclass
class Tally:
    """Answers of one phase (one operation at one rate)."""

    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        n = len(ordered)
        return {
            "answers": n,
            "per_s": round(n / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(1000 * statistics.median(ordered), 1) if n else None,
            "p99_ms": round(1000 * ordered[min(n - 1, int(0.99 * n))], 1) if n else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": sum(v for k, v in self.statuses.items() if k >= 500),
            "failures": dict(self.failures),
        }


Request = tuple[str, str, dict[str, Any] | None, dict[str, str]]


def decision_request(base: str, token: str, persons: int, rng: random.Random) -> Request:
    body = {
        "subject": pseudonym(rng.randrange(persons)),
        "channel": rng.choice(CHANNELS),
        "signals": live_signals(rng),
    }
    return ("POST", f"{base}{API_PREFIX}/decisions", body, {"Authorization": f"Bearer {token}"})


def read_request(base: str, persons: int, rng: random.Random) -> Request:
    subject = pseudonym(rng.randrange(persons))
    return (
        "GET",
        f"{base}{API_PREFIX}/subjects/{subject}/profile?purpose={PURPOSE}",
        None,
        {"Authorization": f"Bearer {AGENT_TOKEN}"},
    )


def plain_request(base: str, persons: int, rng: random.Random) -> Request:
    return ("GET", f"{base}/subjects/{pseudonym(rng.randrange(persons))[:64]}/value", None, {})


async def _client(
    index: int, make: Any, http: httpx.AsyncClient, tally: Tally, *, clients: int, rate: float,
    started: float, deadline: float,
) -> None:  # fmt: skip
    """One client until the deadline: closed loop (``rate`` 0) or paced at rate/clients."""
    rng = random.Random(index)
    period = clients / rate if rate else 0.0
    scheduled = started + (index * period / clients)
    while True:
        if scheduled >= deadline:
            return
        if rate:
            wait = scheduled - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        if time.monotonic() >= deadline:
            return
        method, url, body, headers = make(rng)
        sent = time.monotonic()
        try:
            response = await http.request(method, url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            tally.failures[type(exc).__name__] += 1
        else:
            tally.statuses[response.status_code] += 1
            tally.latencies.append(time.monotonic() - (scheduled if rate else sent))
        scheduled += period


async def _drive(make: Any, *, clients: int, rate: float, duration: float) -> Tally:
    tally = Tally()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S) as http:
        started = time.monotonic()
        deadline = started + duration
        await asyncio.gather(*(
            _client(i, make, http, tally, clients=clients, rate=rate, started=started,
                    deadline=deadline)
            for i in range(clients)
        ))  # fmt: skip
        tally.seconds = time.monotonic() - started
    return tally


def _warm(make: Any, count: int = 200) -> None:
    """A few unmeasured requests: connections open, caches and the pool warm."""
    rng = random.Random(12345)
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as http:
        for _ in range(count):
            method, url, body, headers = make(rng)
            http.request(method, url, json=body, headers=headers)


# -- checks and the in-process figure ---------------------------------------------------------


def audit_check(database_url: str) -> dict[str, Any]:
    """Decisions stored, decision entries appended, pending rows, and the chain."""
    from sqlalchemy import func, select
    from sqlmodel import Session

    from server.db import create_db_engine
    from server.tables.audit_entry import AuditEntry
    from server.tables.decision import DecisionRow

    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            stored = session.scalar(select(func.count()).select_from(DecisionRow))
            pending = session.scalar(
                select(func.count()).select_from(DecisionRow).where(DecisionRow.audited.is_(False))
            )  # type: ignore[attr-defined]
            entries = session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(AuditEntry.action == "decision.make")
            )
    finally:
        engine.dispose()
    ok, chain = verify_audit(database_url)
    return {
        "decisions": int(stored or 0),
        "decision_entries": int(entries or 0),
        "pending": int(pending or 0),
        "chain_verifies": ok,
        "chain_entries": chain,
    }


def in_process(seconds: float = 3.0) -> dict[str, Any]:
    """``DecisionPolicy.decide`` on seeded-like fields and live signals: decisions per second."""
    from consent import load_default_catalogue, load_default_purposes
    from models.decisions import DEFAULT_POLICY_PATH, DecisionPolicy, Signals

    catalogue, purposes = load_default_catalogue(), load_default_purposes()
    policy = DecisionPolicy.load(
        DEFAULT_POLICY_PATH,
        field_purposes={spec.name: [p.value for p in spec.purposes] for spec in catalogue},
        purposes=[spec.name.value for spec in purposes],
    )
    rng = random.Random(7)
    inputs = []
    for i in range(5000):
        raw = live_signals(rng)
        signals = Signals(
            labels={h: s["label"] for h, s in raw.items()},
            probabilities={h: s["probability"] for h, s in raw.items()},
            channel=rng.choice(CHANNELS),
        )
        inputs.append((person_fields(i), signals))
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for fields, signals in inputs:
            policy.decide(PURPOSE, fields, signals)
        done += len(inputs)
    elapsed = time.perf_counter() - started
    return {"decisions": done, "per_s": round(done / elapsed)}


# -- the run ---------------------------------------------------------------------------------


def run(
    database_url: str,
    workdir: Path,
    *,
    persons: int,
    clients: int,
    duration: float,
    rates: list[float],
    workers: int,
) -> dict[str, Any]:
    """Seed, run fedprofile's phases then the plain baseline's; return the report."""
    phases: dict[str, dict[str, Any]] = {}
    with fedprofile_server(database_url, workdir, workers=workers) as (base, _pid):
        edge_id, token = register_edge(base)
        seed(database_url, persons=persons, edge_id=edge_id)

        def decide(rng: random.Random) -> Request:
            return decision_request(base, token, persons, rng)

        def read(rng: random.Random) -> Request:
            return read_request(base, persons, rng)

        _warm(decide)
        _warm(read)
        for rate in rates:
            for name, make in (("decide", decide), ("read", read)):
                tally = asyncio.run(_drive(make, clients=clients, rate=rate, duration=duration))
                phases[f"{name}@{rate:g}"] = tally.summary()
    audit = audit_check(database_url)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "load_plain_app:create_app",
        "--factory",
        "--app-dir",
        str(ROOT / "benchmarks"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with served(
        command, env=server_env(database_url), cwd=workdir, port=port, health_path="/health"
    ) as (plain_base, _):

        def plain(rng: random.Random) -> Request:
            return plain_request(plain_base, persons, rng)

        _warm(plain)
        for rate in rates:
            tally = asyncio.run(_drive(plain, clients=clients, rate=rate, duration=duration))
            phases[f"plain@{rate:g}"] = tally.summary()
    backend = database_url.split(":", 1)[0].split("+", 1)[0]
    return {
        "backend": backend,
        "persons": persons,
        "clients": clients,
        "duration_s": duration,
        "workers": workers,
        "rates": rates,
        "phases": phases,
        "audit": audit,
        "in_process": in_process(),
    }


def failed(report: dict[str, Any]) -> list[str]:
    """What makes the run fail (5xx, unaudited decisions, a broken chain)."""
    problems = [
        f"{name}: {p['server_errors']} x 5xx"
        for name, p in report["phases"].items()
        if p["server_errors"] and not name.startswith("plain")
    ]
    audit = report["audit"]
    if audit["pending"] or audit["decision_entries"] != audit["decisions"]:
        problems.append(
            f"decisions {audit['decisions']}, entries {audit['decision_entries']}, "
            f"pending {audit['pending']}"
        )
    if not audit["chain_verifies"]:
        problems.append("the audit chain does not verify")
    return problems


def show(report: dict[str, Any]) -> None:
    print(
        f"\n{report['persons']} persons, {report['clients']} clients x "
        f"{report['duration_s']:g} s per phase, {report['workers']} worker(s), "
        f"{report['backend']}, loopback"
    )
    print(
        f"{'rate':>8}  {'operation':<24}{'answers':>8}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"   vs plain read (throughput, p99)"
    )
    for rate in report["rates"]:
        plain = report["phases"][f"plain@{rate:g}"]
        label = "closed" if rate == 0 else f"{rate:g}/s"
        for op, title in (
            ("decide", "POST /decisions"),
            ("read", "GET profile (routing)"),
            ("plain", "plain FastAPI read"),
        ):
            p = report["phases"][f"{op}@{rate:g}"]
            ratio = (
                ""
                if op == "plain"
                else (
                    f"   x{p['per_s'] / max(plain['per_s'], 0.1):.2f}, "
                    f"x{(p['p99_ms'] or 0) / max(plain['p99_ms'] or 0.1, 0.1):.1f}"
                )
            )
            print(
                f"{label:>8}  {title:<24}{p['answers']:8d}{p['per_s']:9.0f}"
                f"{p['p50_ms'] or 0:9.1f}{p['p99_ms'] or 0:9.1f}{ratio}"
                + (f"  statuses {p['statuses']}" if set(p["statuses"]) - {"200"} else "")
                + (f"  failures {p['failures']}" if p["failures"] else "")
            )
    a = report["audit"]
    print(
        f"\naudit: {a['decisions']} decisions, {a['decision_entries']} decision.make entries, "
        f"{a['pending']} pending; chain of {a['chain_entries']} entries "
        f"{'verifies' if a['chain_verifies'] else 'DOES NOT VERIFY'}"
    )
    print(f"in process: DecisionPolicy.decide {report['in_process']['per_s']:,} decisions/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    backend = parser.add_mutually_exclusive_group()
    backend.add_argument(
        "--postgres",
        action="store_true",
        default=True,
        help="a throwaway schema on PostgreSQL at 127.0.0.1:5432 (default)",
    )
    backend.add_argument("--sqlite", action="store_true", help="a SQLite file instead")
    parser.add_argument("--persons", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per phase")
    parser.add_argument(
        "--rate", default="0", help="total requests/s, comma-separated for several; 0 = closed loop"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server worker processes (default: 2 on PostgreSQL, 1 on SQLite)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    rates = [float(r) for r in args.rate.split(",")]
    if not 1 <= args.clients <= 2000 or not 1 <= args.duration <= 600 or args.persons < 1:
        parser.error("--clients must be 1..2000, --duration 1..600 s, --persons >= 1")
    if any(r < 0 for r in rates):
        parser.error("--rate must be >= 0")
    workers = args.workers or (1 if args.sqlite else 2)
    options = {
        "persons": args.persons,
        "clients": args.clients,
        "duration": args.duration,
        "rates": rates,
        "workers": workers,
    }
    with tempfile.TemporaryDirectory(prefix="fedprofile-decisions-") as tmp:
        workdir = Path(tmp)
        if args.sqlite:
            report = run(f"sqlite:///{workdir / 'server.sqlite'}", workdir, **options)
        else:
            with postgres_schema() as url:
                report = run(url, workdir, **options)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        show(report)
    problems = failed(report)
    for problem in problems:
        print(f"FAILED: {problem}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
