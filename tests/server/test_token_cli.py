"""``fedprofile token issue``: bootstrap tokens from the host; printed once, stored hashed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from fedprofile.cli import build_app
from server.config import get_settings
from server.crud.token import hash_token, resolve_principal
from server.db import create_db_engine
from server.tables.audit_entry import AuditEntry
from server.tables.token import ApiToken, Role

from .factories import make_pseudonym


@pytest.fixture()
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'server.db'}"
    monkeypatch.setenv("FEDPROFILE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_issue_officer_token_prints_it_once_and_it_resolves(db_url: str) -> None:
    result = CliRunner().invoke(
        build_app(),
        [
            "token",
            "issue",
            "--role",
            "compliance_officer",
            "--name",
            "li.wei",
            "--migrate",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    issued = json.loads(result.stdout)
    engine = create_db_engine(db_url)
    try:
        with Session(engine) as session:
            row = session.exec(select(ApiToken)).one()
            assert row.token_hash == hash_token(issued["token"])
            principal = resolve_principal(session=session, token=issued["token"], static_tokens={})
            actions = [(e.action, e.actor) for e in session.exec(select(AuditEntry)).all()]
    finally:
        engine.dispose()
    assert (
        principal.role is Role.COMPLIANCE_OFFICER and principal.actor == "compliance_officer:li.wei"
    )
    assert ("token.issue", "cli") in actions


def test_issue_subject_and_edge_tokens(db_url: str) -> None:
    app = build_app()
    subject = make_pseudonym("cli-subject")
    first = CliRunner().invoke(
        app, ["token", "issue", "--role", "subject", "--subject", subject, "--migrate"]
    )
    assert first.exit_code == 0, first.output
    edge = CliRunner().invoke(
        app, ["token", "issue", "--role", "edge", "--name", "desk-1", "--channel", "desk"]
    )
    assert edge.exit_code == 0, edge.output
    assert len(edge.stdout.strip()) >= 40  # the raw token, alone on stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--role", "compliance_officer"],
        ["--role", "subject", "--subject", "13800138000"],
        ["--role", "edge", "--name", "e"],
    ],
)
def test_bad_bindings_exit_non_zero_with_one_line(db_url: str, args: list[str]) -> None:
    result = CliRunner().invoke(build_app(), ["token", "issue", *args, "--migrate"])
    assert result.exit_code != 0
    assert "13800138000" not in result.output
