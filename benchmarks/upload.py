"""Write throughput of profile uploads, single PUTs against batches.

Run: ``python benchmarks/upload.py [--postgres] [--single N] [--subjects N]``.

Starts ``fedprofile serve`` on 127.0.0.1 (a subprocess, one worker, no access log) on a
fresh database (a SQLite file by default, or a throwaway PostgreSQL schema with
``--postgres``), registers one edge, records consent for every subject and purpose, then
uploads, in one run:

1. ``--single`` items one ``PUT /subjects/{subject}/profile`` each (keep-alive connection);
2. ``--subjects`` x 4 purposes items as ``POST /profile-uploads`` batches of 100;
3. the same number of items in batches of 500.

Each phase uses its own subjects, so every item is a first write (new subject, new fields,
new receipt, one audit entry). It prints item uploads/s per phase and the ratio batch/single,
then verifies the audit chain. Items carry every non-sensitive catalogued field of their
purpose (5-9 fields, 6.5 on average).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import (  # noqa: E402
    ENROLLMENT_TOKEN,
    cpu_seconds,
    fedprofile_server,
    postgres_schema,
    verify_audit,
)

from consent import Purpose, load_default_catalogue  # noqa: E402
from consent.catalogue import ValueType  # noqa: E402
from models import API_PREFIX  # noqa: E402

PURPOSES = (
    Purpose.SERVICE_ROUTING,
    Purpose.PERSONALIZED_SERVICE,
    Purpose.PROACTIVE_SERVICE,
    Purpose.MARKETING,
)
NOW = datetime.now(UTC)


def _pseudonym(seed: str) -> str:
    return "ps_" + hashlib.sha256(seed.encode()).hexdigest()


def _value(value_type: ValueType, i: int) -> bool | float | str:
    if value_type in (ValueType.TAG, ValueType.BOOLEAN):
        return i % 2 == 0
    if value_type is ValueType.NUMBER:
        return round((i % 97) / 97, 4)
    return ("electronics", "apparel", "food")[i % 3]


def _uploads(phase: str, count: int) -> list[dict[str, Any]]:
    """Return ``count`` batch items (subject-major, 4 purposes per subject)."""
    catalogue = load_default_catalogue()
    computed = (NOW - timedelta(minutes=5)).isoformat()
    items: list[dict[str, Any]] = []
    for i in range(count):
        subject = _pseudonym(f"{phase}-{i // len(PURPOSES)}")
        purpose = PURPOSES[i % len(PURPOSES)]
        fields = [
            {"name": spec.name, "value": _value(spec.value_type, i), "confidence": 0.8,
             "computed_at": computed,
             "explanation": [{"feature": "frequency_90d", "weight": 0.4}]}
            for spec in catalogue.fields_for(purpose)
            if not spec.needs_separate_consent
        ]
        items.append({
            "subject": subject,
            "idempotency_key": f"{phase}-{i:06d}-{purpose.value}",
            "upload": {"purpose": purpose.value, "fields": fields},
        })
    return items


def _consents(client: httpx.Client, headers: dict[str, str], items: list[dict[str, Any]]) -> None:
    subjects = sorted({item["subject"] for item in items})
    occurred = (NOW - timedelta(days=1)).isoformat()
    events = [
        {"subject": s, "purpose": p.value, "status": "granted", "occurred_at": occurred,
         "notice_version": "bench-1", "channel": "web"}
        for s in subjects
        for p in PURPOSES
    ]
    for start in range(0, len(events), 1000):
        response = client.post(f"{API_PREFIX}/consents", json=events[start : start + 1000],
                               headers=headers)
        response.raise_for_status()


def _run_single(
    client: httpx.Client, headers: dict[str, str], items: list[dict[str, Any]]
) -> float:
    start = time.perf_counter()
    for item in items:
        response = client.put(
            f"{API_PREFIX}/subjects/{item['subject']}/profile", json=item["upload"],
            headers={**headers, "Idempotency-Key": item["idempotency_key"]},
        )
        if response.status_code != 200:
            raise RuntimeError(f"single upload answered {response.status_code}")
    return time.perf_counter() - start


def _run_batches(
    client: httpx.Client, headers: dict[str, str], items: list[dict[str, Any]], size: int
) -> float:
    start = time.perf_counter()
    for offset in range(0, len(items), size):
        response = client.post(f"{API_PREFIX}/profile-uploads",
                               json={"items": items[offset : offset + size]}, headers=headers)
        response.raise_for_status()
        statuses = {r["status"] for r in response.json()["results"]}
        if statuses != {200}:
            raise RuntimeError(f"batch items answered {sorted(statuses)}")
    return time.perf_counter() - start


def run(database_url: str, workdir: Path, *, single: int, subjects: int) -> None:
    batch_items = subjects * len(PURPOSES)
    phases = {"single": _uploads("single", single), "b100": _uploads("b100", batch_items),
              "b500": _uploads("b500", batch_items)}
    backend = database_url.split(":", 1)[0]
    with fedprofile_server(database_url, workdir) as (base, pid), \
            httpx.Client(base_url=base, timeout=120) as client:
        response = client.post(f"{API_PREFIX}/edges", json={"name": "bench-edge", "channel": "web"},
                               headers={"X-Enrollment-Token": ENROLLMENT_TOKEN})
        response.raise_for_status()
        headers = {"Authorization": f"Bearer {response.json()['token']}"}
        for items in phases.values():
            _consents(client, headers, items)
        seconds: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for name, size in (("single", 1), ("b100", 100), ("b500", 500)):
            before = cpu_seconds(pid)
            if size == 1:
                seconds[name] = _run_single(client, headers, phases[name])
            else:
                seconds[name] = _run_batches(client, headers, phases[name], size)
            cpu[name] = cpu_seconds(pid) - before
    ok, entries = verify_audit(database_url)
    rate = {name: len(phases[name]) / s for name, s in seconds.items()}
    print(f"\nprofile uploads against uvicorn on 127.0.0.1 ({backend}), "
          f"{sum(len(i['upload']['fields']) for i in phases['b500']) / batch_items:.1f} "
          "fields per item:")
    def server_cpu(name: str) -> str:
        return f"server CPU {cpu[name] / len(phases[name]) * 1e6:5.0f} us/item"

    print(f"  single PUT        : {len(phases['single']):5d} items in {seconds['single']:6.2f} s "
          f"= {rate['single']:7.0f} uploads/s ({1000 / rate['single']:.2f} ms each), "
          f"{server_cpu('single')}")
    for name, size in (("b100", 100), ("b500", 500)):
        print(f"  batches of {size:<4d}  : {batch_items:5d} items in {seconds[name]:6.2f} s "
              f"= {rate[name]:7.0f} uploads/s (x{rate[name] / rate['single']:.1f} single), "
              f"{server_cpu(name)}")
    print(f"  {subjects} subjects x {len(PURPOSES)} purposes in batches of 500: "
          f"{seconds['b500']:.2f} s")
    print(f"  audit chain: {'verifies' if ok else 'BROKEN'} ({entries} entries)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single", type=int, default=1000, help="items sent as single PUTs")
    parser.add_argument("--subjects", type=int, default=1000,
                        help="subjects per batch phase (4 purposes each)")
    parser.add_argument("--postgres", action="store_true",
                        help="use a throwaway schema on PostgreSQL at 127.0.0.1:5432 (db test)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fedprofile-bench-") as tmp:
        workdir = Path(tmp)
        if args.postgres:
            with postgres_schema() as url:
                run(url, workdir, single=args.single, subjects=args.subjects)
        else:
            url = f"sqlite:///{workdir / 'server.sqlite'}"
            run(url, workdir, single=args.single, subjects=args.subjects)


if __name__ == "__main__":
    main()
