"""What the API benchmarks share: a throwaway database, a served API on loopback, audit verify.

Every server runs on 127.0.0.1 on a free port, is polled until ``/health`` answers, and is
stopped (terminate, then kill) when the ``with`` block ends, whatever happens inside it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models import API_PREFIX  # noqa: E402

POSTGRES_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ENROLLMENT_TOKEN = "bench-enroll-" + uuid.uuid4().hex
ADMIN_TOKEN = "bench-admin-" + uuid.uuid4().hex
AGENT_TOKEN = "bench-agent-" + uuid.uuid4().hex


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process used so far; 0.0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """Yield the URL of a fresh schema on the local PostgreSQL; drop it afterwards."""
    import psycopg

    schema = f"fp_bench_{uuid.uuid4().hex[:12]}"
    dsn = POSTGRES_BASE.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_BASE}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """Environment of a benchmark server: database, the three static secrets, no telemetry."""
    return {
        **os.environ,
        "FEDPROFILE_DATABASE_URL": database_url,
        "FEDPROFILE_ENROLLMENT_TOKEN": ENROLLMENT_TOKEN,
        "FEDPROFILE_ADMIN_TOKEN": ADMIN_TOKEN,
        "FEDPROFILE_AGENT_TOKEN": AGENT_TOKEN,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        **extra,
    }


@contextmanager
def served(
    command: Sequence[str], *, env: dict[str, str], cwd: Path, port: int, health_path: str
) -> Iterator[tuple[str, int]]:
    """Run ``command`` (a server on ``port``); yield its base URL and PID once it answers.

    Raises
    ------
    RuntimeError
        If the server does not answer ``health_path`` within 60 s or exits first.
    """
    process = subprocess.Popen(list(command), env=env, cwd=cwd)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}{health_path}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"the server {command[:4]} did not start")
            time.sleep(0.3)
        yield base, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def fedprofile_server(
    database_url: str, workdir: Path, *, workers: int = 1, **extra_env: str
) -> Iterator[tuple[str, int]]:
    """Migrate ``database_url`` and serve it with ``fedprofile serve --workers N``."""
    from server.db import upgrade_database

    upgrade_database(database_url)
    port = free_port()
    command = [
        sys.executable, "-m", "fedprofile", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--no-migrate", "--log-level", "warning", "--no-access-log",
    ]
    with served(
        command, env=server_env(database_url, **extra_env), cwd=workdir, port=port,
        health_path=f"{API_PREFIX}/health",
    ) as answer:
        yield answer


def verify_audit(database_url: str) -> tuple[bool, int]:
    """Verify the audit chain at ``database_url``; return (ok, entries)."""
    from sqlmodel import Session

    from server.audit.log import verify_chain
    from server.db import create_db_engine

    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            report = verify_chain(session=session)
    finally:
        engine.dispose()
    return report.ok, report.entries
