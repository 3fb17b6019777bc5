"""Retention: fields past their catalogued days are deleted and audited by count, on SQLite and
PostgreSQL, and from the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from consent import load_default_catalogue
from fedprofile.cli import build_app
from server.audit.log import verify_chain
from server.audit.sink import DatabaseAuditSink
from server.crud.retention import UNCATALOGUED, purge_expired_fields
from server.db import create_db_engine, upgrade_database
from server.tables.audit_entry import AuditEntry
from server.tables.profile_field import ProfileField
from server.tables.subject import Subject

from ..factories import T0, make_pseudonym

CATALOGUE = load_default_catalogue()
SUBJECT_A = make_pseudonym("retention-a")
SUBJECT_B = make_pseudonym("retention-b")
#: (subject, field, age in days): score.* keeps 30 days, tag.churn_risk 90, tag.high_* 180.
ROWS = [
    (SUBJECT_A, "score.purchase_propensity", 31),  # expired
    (SUBJECT_A, "tag.churn_risk", 89),  # kept
    (SUBJECT_A, "tag.high_purchasing_power", 181),  # expired
    (SUBJECT_B, "score.purchase_propensity", 29),  # kept
    (SUBJECT_B, "score.escalation_risk", 45),  # expired
    (SUBJECT_B, "tag.retired_from_catalogue", 1),  # not catalogued any more: deleted
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade_database(url)
    built = create_db_engine(url)
    yield built
    built.dispose()


def _store(engine: Engine) -> None:
    with Session(engine) as session:
        for subject in (SUBJECT_A, SUBJECT_B):
            session.add(Subject(pseudonym=subject, first_seen_at=T0, last_seen_at=T0))
        session.flush()
        for subject, name, age in ROWS:
            session.add(ProfileField(
                subject=subject, name=name, value_json="0.5", computed_at=T0 - timedelta(days=age),
                uploaded_purpose="personalized_service", updated_at=T0))
        session.commit()


def _left(engine: Engine) -> set[tuple[str, str]]:
    with Session(engine) as session:
        return {(r.subject, r.name) for r in session.exec(select(ProfileField)).all()}


def test_purge_deletes_expired_and_uncatalogued_fields_and_audits_counts(engine: Engine) -> None:
    _store(engine)
    with Session(engine) as session:
        dry = purge_expired_fields(session=session, catalogue=CATALOGUE,
                                   audit=DatabaseAuditSink(session), at=T0, dry_run=True)
    assert len(_left(engine)) == len(ROWS)  # a dry run deletes nothing

    with Session(engine) as session:
        report = purge_expired_fields(session=session, catalogue=CATALOGUE,
                                      audit=DatabaseAuditSink(session), at=T0)
        entries = session.exec(select(AuditEntry).where(
            col(AuditEntry.action) == "retention.purge").order_by(col(AuditEntry.seq))).all()
        chain_ok = verify_chain(session=session).ok

    expected = {"score.purchase_propensity": 1, "tag.high_purchasing_power": 1,
                "score.escalation_risk": 1, UNCATALOGUED: 1}
    assert report.deleted == dry.deleted == expected and report.subjects == 2
    assert _left(engine) == {(SUBJECT_A, "tag.churn_risk"),
                             (SUBJECT_B, "score.purchase_propensity")}
    assert chain_ok
    assert [e.subject_ref for e in entries] == [*sorted([SUBJECT_A, SUBJECT_B]), None]
    summary = json.loads(entries[-1].detail_json)
    assert summary == {"deleted": expected, "subjects": 2}
    assert all("0.5" not in e.detail_json for e in entries)  # names and counts, no values
    # A second run finds nothing left to delete and audits nothing.
    with Session(engine) as session:
        again = purge_expired_fields(session=session, catalogue=CATALOGUE,
                                     audit=DatabaseAuditSink(session), at=T0)
    assert again.total == 0


def test_retention_run_command_json_and_dry_run(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    _store(engine)
    monkeypatch.setenv("FEDPROFILE_DATABASE_URL", url)
    from server.config import get_settings
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        dry = runner.invoke(build_app(), ["retention", "run", "--dry-run", "--json"])
        assert len(_left(engine)) == len(ROWS)
        done = runner.invoke(build_app(), ["retention", "run"])
    finally:
        get_settings.cache_clear()
    left = _left(engine)
    engine.dispose()

    assert dry.exit_code == 0, dry.output
    body = json.loads(dry.output)
    assert body["dry_run"] is True and body["subjects"] == 2
    assert done.exit_code == 0, done.output
    assert "deleted" in done.output and UNCATALOGUED in done.output
    # The command runs at the wall clock (after T0): at least T0's expired rows are gone.
    assert (SUBJECT_B, "tag.retired_from_catalogue") not in left
    assert (SUBJECT_A, "score.purchase_propensity") not in left
