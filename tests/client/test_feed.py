"""The edge applies the server's subject-event feed: a real edge store against the real API
(FastAPI app behind an httpx transport): erasure, restriction and its lifting, suppressed
fields, consent withdrawals from elsewhere, and what training and uploads then leave out."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, SQLModel

import server.tables as _tables  # noqa: F401  (registers the tables)
from client.config import ClientSettings
from client.feed import CURSOR_KEY, apply_events, sync_subject_events
from client.ingest import ingest_file
from client.learning.store_source import consented_subjects
from client.profile import build_profiles
from client.store import EdgeStore
from client.uploader import EdgeUploader
from consent import (
    ConsentEvent,
    ConsentStatus,
    Purpose,
    Rectification,
    RequestType,
    SubjectEventKind,
    SubjectEventWire,
    erasure_hash,
    load_default_catalogue,
)
from models import Channel, EdgeRegistration
from privacy import IdentifierKind, Pseudonymizer, SigningKey
from server.audit.sink import DatabaseAuditSink
from server.config import ServerSettings
from server.crud.consent import record_consents
from server.crud.dsr import approve_request, create_request, execute_request, verify_request
from server.crud.edge import register_edge
from server.db import create_db_engine
from server.main import create_app
from server.principal import Principal
from server.tables.dsr import DataSubjectRequestCreate
from server.tables.token import Role

from ..server.edge_harness import Api
from .edge_factories import (
    ENROLLMENT_TOKEN,
    KEY,
    NOW,
    PHONE,
    PHONE_2,
    FakeScrubber,
    active_customer_lines,
    consent_line,
    write_jsonl,
)

A = Pseudonymizer(KEY).pseudonym(IdentifierKind.PHONE, PHONE)
B = Pseudonymizer(KEY).pseudonym(IdentifierKind.PHONE, PHONE_2)
CATALOGUE = load_default_catalogue()
ALICE = Principal(role=Role.COMPLIANCE_OFFICER, name="alice")
BOB = Principal(role=Role.COMPLIANCE_OFFICER, name="bob")
SIGNING = SigningKey.generate()
PURPOSES = ("personalized_service", "model_training")


@dataclass
class Server(Api):
    """The real API in-process (``Api``: client, engine, httpx transport) plus DSR runs."""

    def run_request(self, subject: str, kind: RequestType, **extra: object) -> None:
        """File, verify, approve (two officers where needed) and execute a request."""
        with Session(self.engine, expire_on_commit=False) as session:
            audit = DatabaseAuditSink(session)
            body = DataSubjectRequestCreate(subject=subject, request_type=kind, **extra)
            at = NOW + timedelta(days=1)
            rid = create_request(
                session=session, principal=ALICE, body=body, catalogue=CATALOGUE, audit=audit, at=at
            ).id
            verify_request(session=session, request_id=rid, principal=ALICE, audit=audit, at=at)
            for officer in (ALICE, BOB)[: 2 if kind is RequestType.ERASE else 1]:
                approve_request(
                    session=session, request_id=rid, principal=officer, audit=audit, at=at
                )
            execute_request(
                session=session,
                request_id=rid,
                principal=BOB,
                catalogue=CATALOGUE,
                audit=audit,
                signing_key=SIGNING,
                at=at,
            )


@pytest.fixture()
def server() -> Iterator[Server]:
    engine = create_db_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    settings = ServerSettings(database_url="sqlite://", enrollment_token=ENROLLMENT_TOKEN)
    app = create_app(settings, engine=engine, clock=lambda: NOW)
    with TestClient(app) as client:
        yield Server(client, engine)
    engine.dispose()


@pytest.fixture()
def settings(tmp_path: Path) -> ClientSettings:
    return ClientSettings(
        edge_dir=tmp_path / "edge", server_url="http://testserver", upload_purposes=PURPOSES
    )


@pytest.fixture()
def store(settings: ClientSettings, tmp_path: Path, server: Server) -> Iterator[EdgeStore]:
    """Two customers who grant personalisation and training, synced to the real server."""
    rows = active_customer_lines(PHONE, prefix="a") + active_customer_lines(PHONE_2, prefix="b")
    for i, phone in enumerate((PHONE, PHONE_2)):
        for purpose in PURPOSES:
            rows.append(consent_line(f"c-{i}-{purpose}", phone=phone, purpose=purpose))
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    with EdgeStore.for_edge_dir(settings.edge_dir) as s:
        ingest_file(
            store=s, path=path, pseudonymizer=Pseudonymizer(KEY), detector=FakeScrubber(), now=NOW
        )
        build_profiles(store=s, now=NOW)
        with EdgeUploader(store=s, settings=settings, transport=server.transport()) as up:
            up.register("app-feed", "app", ENROLLMENT_TOKEN)
            report = up.sync(now=NOW)
        assert report.uploads_delivered >= 2, report.to_dict()
        yield s


def _rows_naming(store: EdgeStore, subject: str) -> int:
    db = store._db
    total = 0
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        columns = [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]
        if "subject" in columns:
            total += db.execute(
                f'SELECT COUNT(*) FROM "{table}" WHERE subject = ?', (subject,)
            ).fetchone()[0]
    return total


def test_erasure_deletes_every_local_row_of_the_subject_only(
    store: EdgeStore, settings: ClientSettings, server: Server
) -> None:
    assert _rows_naming(store, A) > 10 and _rows_naming(store, B) > 10
    b_rows = _rows_naming(store, B)
    server.run_request(A, RequestType.ERASE)

    report = sync_subject_events(store=store, settings=settings, transport=server.transport())

    assert report.erased_subjects == 1 and report.erased_rows > 10
    assert A not in store.subjects() and _rows_naming(store, A) == 0
    assert _rows_naming(store, B) == b_rows
    assert consented_subjects(store, at=NOW + timedelta(days=2)) == ([B], 0)
    # Idempotent: the cursor moved on, and re-applying the same page changes nothing.
    again = sync_subject_events(store=store, settings=settings, transport=server.transport())
    assert again.events == 0 and store.get_meta(CURSOR_KEY) == report.cursor


def test_restriction_stops_training_and_uploads_until_lifted(
    store: EdgeStore, settings: ClientSettings, server: Server
) -> None:
    later = NOW + timedelta(days=2)
    server.run_request(B, RequestType.RESTRICT)

    report = sync_subject_events(store=store, settings=settings, transport=server.transport())

    assert report.restricted == 1
    assert consented_subjects(store, at=later) == ([A], 1)
    assert store.consent_states()[B].granted_purposes(later) == frozenset()
    assert store.consent_events(unsynced_only=True) == []  # nothing to send back
    with EdgeUploader(store=store, settings=settings, transport=server.transport()) as up:
        sync = up.sync(now=later)
    assert sync.refused_by_server == {}  # B is withheld at the edge, not refused at the server
    # Lifted: the earlier grants hold again.
    server.run_request(B, RequestType.LIFT_RESTRICTION)
    lifted = sync_subject_events(store=store, settings=settings, transport=server.transport())
    assert lifted.lifted == 1
    assert consented_subjects(store, at=later) == ([A, B], 0)
    assert store.consent_states()[B].granted_purposes(later) == {
        Purpose.PERSONALIZED_SERVICE,
        Purpose.MODEL_TRAINING,
    }


def test_rectified_field_is_deleted_locally_and_never_uploaded_again(
    store: EdgeStore, settings: ClientSettings, server: Server
) -> None:
    name = next(
        f.field
        for f in store.profile_fields(subject=A)
        if isinstance(CATALOGUE.by_name[f.field].value_problems(True), list)
        and not CATALOGUE.by_name[f.field].value_problems(True)
    )
    server.run_request(A, RequestType.RECTIFY, rectification=Rectification(field=name, delete=True))

    report = sync_subject_events(store=store, settings=settings, transport=server.transport())

    assert report.suppressed == 1
    assert name not in {f.field for f in store.profile_fields(subject=A)}
    build_profiles(store=store, now=NOW)  # recomputed locally...
    assert name in {f.field for f in store.profile_fields(subject=A)}
    assert store.consent_states()[A].is_suppressed(name)  # ...but withheld from uploads
    with EdgeUploader(store=store, settings=settings, transport=server.transport()) as up:
        sync = up.sync(now=NOW + timedelta(days=2))
    assert sync.refused_by_server == {} and sync.fields_withheld.get("field_suppressed", 0) >= 1


def test_withdrawal_recorded_elsewhere_reaches_the_edge(
    store: EdgeStore, settings: ClientSettings, server: Server
) -> None:
    withdrawal = ConsentEvent(
        subject=A,
        purpose=Purpose.MODEL_TRAINING,
        status=ConsentStatus.WITHDRAWN,
        occurred_at=NOW + timedelta(hours=1),
        notice_version="2026-10",
        channel="self-service",
    )
    with Session(server.engine) as session:
        # A withdrawal sent through another channel (another edge here; self-service alike).
        credential = register_edge(
            session=session,
            registration=EdgeRegistration(name="web-x", channel=Channel.WEB),
            actor="admin",
            role="admin",
            audit=DatabaseAuditSink(session),
            at=NOW,
        )
        other = Principal(role=Role.EDGE, edge_id=credential.edge_id, channel="web")
        record_consents(
            session=session,
            events=[withdrawal],
            principal=other,
            catalogue=CATALOGUE,
            audit=DatabaseAuditSink(session),
            at=NOW + timedelta(hours=1),
        )

    report = sync_subject_events(store=store, settings=settings, transport=server.transport())

    assert report.consents == 1  # the edge's own events are not echoed back
    assert consented_subjects(store, at=NOW + timedelta(days=1)) == ([B], 1)
    assert store.consent_events(unsynced_only=True) == []


def test_apply_events_ignores_erasures_of_unknown_subjects(store: EdgeStore) -> None:
    salt = "11" * 16
    stranger = "ps_" + "ef" * 32
    event = SubjectEventWire(
        kind=SubjectEventKind.ERASURE,
        occurred_at=NOW,
        subject_hash=erasure_hash(salt, stranger),
        hash_salt=salt,
    )

    report = apply_events(store, [event])

    assert report.erased_subjects == 0 and sorted(store.subjects()) == sorted([A, B])
