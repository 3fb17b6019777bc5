"""Alembic owns the schema: upgrade on SQLite and PostgreSQL, compare with the tables, use it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel

import server.tables  # noqa: F401
import server.tables.subject_key  # noqa: F401  (registered by server.tables once exported)
from consent import Purpose, load_default_catalogue
from models import Channel, EdgeRegistration
from privacy.keyring import MasterKeyRing
from server.audit.log import verify_chain
from server.audit.sink import DatabaseAuditSink
from server.crud.consent import record_consents
from server.crud.edge import register_edge
from server.crud.erasure import erase_subject
from server.crud.profile_store import fields_of, to_field_out
from server.crud.subject_keys import subject_cipher
from server.crud.training import finish_run, list_runs, record_round, start_run
from server.crud.upload import upload_profile
from server.db import alembic_config, create_db_engine, upgrade_database
from server.principal import Principal
from server.profiles.read import read_profile
from server.tables.token import Role

from .factories import T0, make_consent_event, make_field, make_pseudonym, make_upload


def _script_heads() -> set[str]:
    """Return the head revisions of the migration scripts."""
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def _assert_schema_matches_tables(url: str) -> None:
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, SQLModel.metadata)
            versions = {
                row[0] for row in conn.exec_driver_sql("SELECT version_num FROM alembic_version")
            }
    finally:
        engine.dispose()
    assert diff == []
    assert versions == _script_heads()


def _round_trip(url: str) -> None:
    """Exercise registration, consent, upload, read, training and audit on ``url``."""
    engine = create_db_engine(url)
    catalogue = load_default_catalogue()
    subject = make_pseudonym("migration-subject")
    admin = Principal(role=Role.ADMIN)
    try:
        with Session(engine, expire_on_commit=False) as session:
            credential = register_edge(
                session=session, registration=EdgeRegistration(name="e1", channel=Channel.APP),
                actor="admin", role="admin", audit=DatabaseAuditSink(session), at=T0,
            )
            edge = Principal(role=Role.EDGE, edge_id=credential.edge_id, channel="app")
            record_consents(
                session=session, events=[make_consent_event(subject)], principal=edge,
                catalogue=catalogue, audit=DatabaseAuditSink(session), at=T0,
            )
            upload_profile(
                session=session, subject=subject, upload=make_upload(), principal=edge,
                idempotency_key="k1", catalogue=catalogue, audit=DatabaseAuditSink(session),
                at=T0,
            )
            profile = read_profile(
                session=session, subject=subject, purpose="personalized_service",
                principal=admin, catalogue=catalogue, audit=DatabaseAuditSink(session), at=T0,
            )
            run_id = start_run(
                session=session, model="behaviour", config={"rounds": 2}, num_rounds=2,
                started_at=T0,
            )
            record_round(
                session=session, run_id=run_id, server_round=1, phase="train",
                metrics={"train-loss": 0.5}, edges=[{"channel": "app", "epsilon": 0.4}],
            )
            finish_run(
                session=session, run_id=run_id, status="completed",
                finished_at=T0 + timedelta(minutes=1),
            )
            runs = list_runs(session=session)
            report = verify_chain(session=session)
    finally:
        engine.dispose()
    assert [f.name for f in profile.fields] == ["feature.recency_days", "tag.high_purchasing_power"]
    assert profile.fields[1].computed_at.tzinfo is not None
    assert runs[0].status == "completed" and runs[0].rounds[0].metrics == {"train-loss": 0.5}
    assert report.ok and report.entries == 4


def test_upgrade_database_sqlite_file_matches_tables_and_round_trips(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db' / 'server.sqlite'}"
    upgrade_database(url)
    upgrade_database(url)  # idempotent
    _assert_schema_matches_tables(url)
    _round_trip(url)


@pytest.mark.postgres
def test_upgrade_database_postgres_matches_tables_and_round_trips(postgres_url: str) -> None:
    upgrade_database(postgres_url)
    upgrade_database(postgres_url)
    _assert_schema_matches_tables(postgres_url)
    _round_trip(postgres_url)


def _sealed_round_trip(url: str) -> None:
    """Store a sealed field, read it back, erase its subject (schema 0002 in use)."""
    engine = create_db_engine(url)
    catalogue = load_default_catalogue()
    subject = make_pseudonym("migration-sealed")
    ring = MasterKeyRing.generate()
    try:
        with Session(engine, expire_on_commit=False) as session:
            credential = register_edge(
                session=session, registration=EdgeRegistration(name="e2", channel=Channel.APP),
                actor="admin", role="admin", audit=DatabaseAuditSink(session), at=T0,
            )
            edge = Principal(role=Role.EDGE, edge_id=credential.edge_id, channel="app")
            record_consents(
                session=session,
                events=[make_consent_event(subject, Purpose.RISK_CONTROL, separate=True)],
                principal=edge, catalogue=catalogue, audit=DatabaseAuditSink(session), at=T0,
            )
            upload_profile(
                session=session, subject=subject,
                upload=make_upload("risk_control", [make_field("finance.payment_risk_level",
                                                               "high")]),
                principal=edge, idempotency_key="k-sealed", catalogue=catalogue,
                audit=DatabaseAuditSink(session), at=T0, master_keys=ring,
            )
            (row,) = fields_of(session=session, subject=subject)
            cipher = subject_cipher(session=session, subject=subject, master_keys=ring)
            value = to_field_out(row, cipher=cipher).value
            receipt = erase_subject(session=session, subject=subject, at=T0)
            session.commit()
            left = fields_of(session=session, subject=subject)
            report = verify_chain(session=session)
    finally:
        engine.dispose()
    assert row.value_json is None and value == "high"
    assert receipt.key_destruction is not None and left == [] and report.ok


def _downgrade_then_upgrade(url: str) -> None:
    """0002 reverts to 0001 cleanly (no sealed rows) and applies again."""
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0001")
            version = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            assert version.scalar() == "0001"
    finally:
        engine.dispose()
    upgrade_database(url)
    _assert_schema_matches_tables(url)


def test_field_encryption_migration_sqlite_round_trips(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    upgrade_database(url)
    _downgrade_then_upgrade(url)
    _sealed_round_trip(url)


@pytest.mark.postgres
def test_field_encryption_migration_postgres_round_trips(postgres_url: str) -> None:
    upgrade_database(postgres_url)
    _downgrade_then_upgrade(postgres_url)
    _sealed_round_trip(postgres_url)


def test_migrations_have_a_single_head() -> None:
    # Parallel branches must be merged before release, so every database ends at one revision.
    assert len(_script_heads()) == 1
