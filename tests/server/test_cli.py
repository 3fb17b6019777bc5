from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from sqlalchemy import text
from sqlmodel import Session
from typer.testing import CliRunner

from server import cli as server_cli
from server.audit.append import append_entry
from server.config import get_settings
from server.db import create_db_engine, upgrade_database
from server.errors import DatabaseError

from .factories import T0


@pytest.fixture()
def app() -> typer.Typer:
    root = typer.Typer()
    root.command("serve")(server_cli.serve_command)
    root.add_typer(server_cli.audit_app, name="audit")
    return root


@pytest.fixture()
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    monkeypatch.setenv("FEDPROFILE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _seed(url: str, n: int) -> None:
    upgrade_database(url)
    engine = create_db_engine(url)
    with Session(engine) as session:
        for i in range(n):
            append_entry(
                session=session,
                actor="admin",
                role="admin",
                action="profile.read",
                purpose=None,
                subject=None,
                outcome="accepted",
                detail={"i": i},
                at=T0,
            )
        session.commit()
    engine.dispose()


def _tamper(url: str, seq: int) -> None:
    engine = create_db_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE audit_entry SET outcome = 'refused' WHERE seq = {seq}"))
    engine.dispose()


def test_audit_verify_intact_log_exits_0(app: typer.Typer, db_url: str) -> None:
    _seed(db_url, 3)
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 0 and "3 entries" in result.output


def test_audit_verify_broken_log_exits_7_naming_seq(app: typer.Typer, db_url: str) -> None:
    _seed(db_url, 3)
    _tamper(db_url, 2)
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == server_cli.EXIT_CHAIN_BROKEN
    assert "seq 2" in result.output


def test_audit_verify_json_is_machine_readable(app: typer.Typer, db_url: str) -> None:
    _seed(db_url, 2)
    _tamper(db_url, 1)
    result = CliRunner().invoke(app, ["audit", "verify", "--json"])
    report = json.loads(result.stdout)
    assert result.exit_code == 7
    assert (report["ok"], report["first_bad_seq"], report["reason"]) == (
        False,
        1,
        "entry_hash_mismatch",
    )


def test_audit_verify_unmigrated_database_raises_database_error(
    app: typer.Typer, db_url: str
) -> None:
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert isinstance(result.exception, DatabaseError)


@pytest.fixture()
def signing_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str) -> Path:
    path = tmp_path / "signing.pem"
    monkeypatch.setenv("FEDPROFILE_SIGNING_KEY_PATH", str(path))
    get_settings.cache_clear()
    return path


def test_audit_checkpoint_export_and_offline_verify_export(
    app: typer.Typer, db_url: str, signing_key_file: Path, tmp_path: Path
) -> None:
    _seed(db_url, 5)
    signed = CliRunner().invoke(app, ["audit", "checkpoint", "--json"])
    out = tmp_path / "export.json"
    exported = CliRunner().invoke(app, ["audit", "export", "--from", "2", "--to", "4",
                                        "--out", str(out)])  # fmt: skip
    public_key = json.loads(signed.stdout)["envelope"]["public_key"]
    checked = CliRunner().invoke(
        app, ["audit", "verify-export", str(out), "--public-key", public_key, "--json"]
    )
    pinned = CliRunner().invoke(app, ["audit", "verify", "--public-key", str(signing_key_file)])
    assert signed.exit_code == 0 and json.loads(signed.stdout)["checkpoint"]["size"] == 5
    assert exported.exit_code == 0 and "2..4" in exported.output
    assert checked.exit_code == 0 and json.loads(checked.stdout)["ok"] is True
    assert pinned.exit_code == 0 and "1 signed checkpoint(s), head" in pinned.output


def test_audit_verify_export_edited_file_exits_7(
    app: typer.Typer, db_url: str, signing_key_file: Path, tmp_path: Path
) -> None:
    _seed(db_url, 4)
    out = tmp_path / "export.json"
    CliRunner().invoke(app, ["audit", "export", "--from", "1", "--to", "4", "--out", str(out)])
    export = json.loads(out.read_text(encoding="utf-8"))
    export["document"]["entries"][1]["actor"] = "someone"
    out.write_text(json.dumps(export), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["audit", "verify-export", str(out), "--public-key", str(signing_key_file)]
    )
    assert result.exit_code == 7 and "export_signature_invalid" in result.output


def test_audit_verify_pinned_to_another_key_exits_7(
    app: typer.Typer, db_url: str, signing_key_file: Path
) -> None:
    from privacy import SigningKey

    _seed(db_url, 3)
    CliRunner().invoke(app, ["audit", "checkpoint"])
    other = SigningKey.generate().verify_key.to_text()
    result = CliRunner().invoke(app, ["audit", "verify", "--json", "--public-key", other])
    assert result.exit_code == 7
    assert json.loads(result.stdout)["reason"] == "checkpoint_signature_invalid"


def test_audit_verify_missing_checkpoint_exits_7_unless_not_required(
    app: typer.Typer, db_url: str, signing_key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDPROFILE_AUDIT_CHECKPOINT_EVERY", "2")
    get_settings.cache_clear()
    _seed(db_url, 3)  # appended without a checkpoint policy
    strict = CliRunner().invoke(app, ["audit", "verify", "--json"])
    lenient = CliRunner().invoke(app, ["audit", "verify", "--no-require-checkpoints"])
    assert strict.exit_code == 7 and json.loads(strict.stdout)["reason"] == "checkpoint_missing"
    assert lenient.exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ["audit", "export", "--from", "3", "--to", "2", "--out", "x.json"],
        ["audit", "verify-export", "missing.json", "--public-key", "not-a-key"],
    ],
)
def test_audit_bad_arguments_exit_2(
    app: typer.Typer, db_url: str, signing_key_file: Path, args: list[str]
) -> None:
    _seed(db_url, 3)
    assert CliRunner().invoke(app, args).exit_code == 2


def test_serve_migrates_then_runs_uvicorn_on_requested_address(
    app: typer.Typer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app_, **kw: calls.append(kw))
    result = CliRunner().invoke(app, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert calls[0]["host"] == "127.0.0.1" and calls[0]["port"] == 8123
    assert "http://127.0.0.1:8123/api/v1" in result.output
    engine = create_db_engine(db_url)
    with engine.connect() as conn:
        versions = {row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))}
        assert versions and all(v.startswith("0") for v in versions)
    engine.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_subprocess_answers_health(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "FEDPROFILE_DATABASE_URL": f"sqlite:///{tmp_path / 's.sqlite'}"}
    code = (
        "import typer; from server import cli; r = typer.Typer(); "
        "r.command('serve')(cli.serve_command); r.command('noop')(lambda: None); r()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("server did not answer within 30 s")
        assert response.status_code == 200 and response.json()["status"] == "ok"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_audit_verify_large_log_in_parallel_matches_one_pass(
    app: typer.Typer, db_url: str, signing_key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100,000 entries (the parallel threshold): ``--workers 2`` and ``--workers 1`` agree."""
    import server.audit.log as audit_log
    from server.audit.append import append_entries
    from server.audit.checkpoint import policy_from_settings
    from server.audit.record import AuditRecord

    upgrade_database(db_url)
    engine = create_db_engine(db_url)
    policy = policy_from_settings(get_settings())
    record = AuditRecord(actor="edge:web", role="edge", action="profile.write",
                         purpose="marketing", subject=None, outcome="accepted",
                         detail={"stored": ["tag.churn_risk"]}, at=T0)  # fmt: skip
    with Session(engine) as session:
        for _ in range(20):
            append_entries(session=session, records=[record] * 5000, checkpoints=policy)
            session.commit()
    engine.dispose()
    used: list[bool] = []
    real = audit_log.verify_in_pieces
    monkeypatch.setattr(
        audit_log, "verify_in_pieces", lambda **kw: used.append(True) or real(**kw)
    )
    intact = CliRunner().invoke(app, ["audit", "verify", "--workers", "2"])
    assert intact.exit_code == 0 and "100000 entries, 100 signed" in intact.output
    _tamper(db_url, 61_234)
    reports = {
        workers: CliRunner().invoke(app, ["audit", "verify", "--json", "--workers", workers])
        for workers in ("2", "1")
    }
    assert used == [True, True]
    assert reports["2"].exit_code == reports["1"].exit_code == server_cli.EXIT_CHAIN_BROKEN
    parallel, single = (json.loads(reports[w].stdout) for w in ("2", "1"))
    assert parallel == single
    assert (parallel["first_bad_seq"], parallel["reason"]) == (61_234, "entry_hash_mismatch")
    assert parallel["last_good_checkpoint"] == 61_000
