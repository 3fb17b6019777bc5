"""The DSR workflow functions on migrated SQLite and PostgreSQL databases: erasure end to end,
restriction, access counts, and the refusals the console relies on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from consent import Purpose, RequestState, RequestType, load_default_catalogue
from models import Channel, EdgeRegistration
from privacy import MasterKey, MasterKeyRing, SigningKey
from server.audit.log import verify_chain
from server.audit.sink import DatabaseAuditSink
from server.crud.consent import record_consents
from server.crud.dsr import (
    approve_request,
    create_request,
    erasure_receipt,
    execute_request,
    get_request,
    list_requests,
    reject_request,
    verify_request,
)
from server.crud.edge import register_edge
from server.crud.erasure import verify_erasure_receipt
from server.crud.subject_keys import subject_cipher
from server.crud.upload import upload_profile
from server.db import create_db_engine, upgrade_database
from server.errors import ForbiddenError, NotFoundError, RequestStateError
from server.principal import Principal
from server.profiles.read import read_profile
from server.tables.dsr import DataSubjectRequestCreate
from server.tables.token import Role

from ..factories import T0, make_consent_event, make_field, make_pseudonym, make_upload

CATALOGUE = load_default_catalogue()
RISK = "finance.payment_risk_level"
SUBJECT_A = make_pseudonym("crud-dsr-a")
SUBJECT_B = make_pseudonym("crud-dsr-b")
ALICE = Principal(role=Role.COMPLIANCE_OFFICER, name="alice")
BOB = Principal(role=Role.COMPLIANCE_OFFICER, name="bob")
AGENT = Principal(role=Role.AGENT)
SIGNING = SigningKey.generate()


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


def _populate(engine: Engine, ring: MasterKeyRing) -> None:
    with Session(engine, expire_on_commit=False) as session:
        credential = register_edge(
            session=session, registration=EdgeRegistration(name="app-9", channel=Channel.APP),
            actor="admin", role="admin", audit=DatabaseAuditSink(session), at=T0,
        )
        edge = Principal(role=Role.EDGE, edge_id=credential.edge_id, channel="app")
        events = [e for s in (SUBJECT_A, SUBJECT_B)
                  for e in (make_consent_event(s, Purpose.RISK_CONTROL, separate=True),
                            make_consent_event(s))]
        record_consents(session=session, events=events, principal=edge, catalogue=CATALOGUE,
                        audit=DatabaseAuditSink(session), at=T0)
        for subject in (SUBJECT_A, SUBJECT_B):
            for key, upload in (("risk", make_upload("risk_control", [make_field(RISK, "medium")])),
                                ("tags", make_upload())):
                upload_profile(session=session, subject=subject, upload=upload, principal=edge,
                               idempotency_key=f"{key}-{subject[-8:]}", catalogue=CATALOGUE,
                               audit=DatabaseAuditSink(session), at=T0, master_keys=ring)


def _file(session: Session, principal: Principal, subject: str, kind: RequestType) -> str:
    body = DataSubjectRequestCreate(subject=subject, request_type=kind)
    return create_request(session=session, principal=principal, body=body, catalogue=CATALOGUE,
                          audit=DatabaseAuditSink(session), at=T0).id


def _run(session: Session, rid: str, ring: MasterKeyRing, *, officers: int = 1) -> None:
    audit = DatabaseAuditSink(session)
    verify_request(session=session, request_id=rid, principal=ALICE, audit=audit, at=T0)
    for officer in (ALICE, BOB)[:officers]:
        approve_request(session=session, request_id=rid, principal=officer, audit=audit, at=T0)
    execute_request(session=session, request_id=rid, principal=BOB, catalogue=CATALOGUE,
                    audit=audit, signing_key=SIGNING, master_keys=ring, at=T0)


def _references(engine: Engine, needle: str) -> list[str]:
    found = []
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            for row in conn.execute(sa_select(table)).mappings():
                for column, value in row.items():
                    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    if needle in text:
                        found.append(f"{table.name}.{column}")
    return found


def test_erasure_workflow_leaves_only_audit_commitments(engine: Engine) -> None:
    # Prepare
    ring = MasterKeyRing([MasterKey.generate()])
    _populate(engine, ring)
    subject_a = Principal(role=Role.SUBJECT, subject=SUBJECT_A)
    with Session(engine, expire_on_commit=False) as session:
        rid = _file(session, subject_a, SUBJECT_A, RequestType.ERASE)
        # Execute
        _run(session, rid, ring, officers=2)
        done = get_request(session=session, request_id=rid, principal=ALICE, at=T0)
        receipt = erasure_receipt(session=session, request_id=rid, principal=ALICE)
        # Assert: chain intact, A has no key, B is untouched.
        assert verify_chain(session=session).ok
        assert subject_cipher(session=session, subject=SUBJECT_A, master_keys=ring) is None
        assert subject_cipher(session=session, subject=SUBJECT_B, master_keys=ring) is not None
    assert done.state is RequestState.COMPLETED and done.subject is None
    assert _references(engine, SUBJECT_A) == []
    assert _references(engine, SUBJECT_A.removeprefix("ps_")) == []
    document = verify_erasure_receipt(receipt, trusted=SIGNING.verify_key, subject=SUBJECT_A)
    assert document["rows_erased"]["profile_field"] == 3
    assert document["key_destroyed"] is not None


def test_restriction_withholds_reads_until_lifted(engine: Engine) -> None:
    ring = MasterKeyRing([MasterKey.generate()])
    _populate(engine, ring)
    with Session(engine, expire_on_commit=False) as session:
        rid = _file(session, ALICE, SUBJECT_A, RequestType.RESTRICT)
        _run(session, rid, ring)
        restricted = read_profile(session=session, subject=SUBJECT_A,
                                  purpose="personalized_service", principal=AGENT,
                                  catalogue=CATALOGUE, audit=DatabaseAuditSink(session), at=T0)
        other = read_profile(session=session, subject=SUBJECT_B, purpose="personalized_service",
                             principal=AGENT, catalogue=CATALOGUE,
                             audit=DatabaseAuditSink(session), at=T0)
        lift = _file(session, ALICE, SUBJECT_A, RequestType.LIFT_RESTRICTION)
        _run(session, lift, ring)
        lifted = read_profile(session=session, subject=SUBJECT_A, purpose="personalized_service",
                              principal=AGENT, catalogue=CATALOGUE,
                              audit=DatabaseAuditSink(session), at=T0)

    assert restricted.fields == [] and restricted.withheld == 3
    assert len(other.fields) == 2
    assert len(lifted.fields) == 2


def test_workflow_refusals_and_queue(engine: Engine) -> None:
    with Session(engine, expire_on_commit=False) as session:
        audit = DatabaseAuditSink(session)
        rid = _file(session, ALICE, SUBJECT_A, RequestType.ACCESS)
        with pytest.raises(ForbiddenError):
            verify_request(session=session, request_id=rid, principal=AGENT, audit=audit, at=T0)
        with pytest.raises(RequestStateError) as state_error:
            approve_request(session=session, request_id=rid, principal=ALICE, audit=audit, at=T0)
        with pytest.raises(NotFoundError):
            verify_request(session=session, request_id="no-such-id", principal=ALICE,
                           audit=audit, at=T0)
        with pytest.raises(RequestStateError) as reason_error:
            reject_request(session=session, request_id=rid, principal=ALICE, reason="no",
                           audit=audit, at=T0)
        reject_request(session=session, request_id=rid, principal=ALICE,
                       reason="duplicate of an open request", audit=audit, at=T0)
        queue = list_requests(session=session, principal=ALICE, at=T0 + timedelta(days=20))
        open_queue = list_requests(session=session, principal=ALICE, at=T0,
                                   state=RequestState.RECEIVED)

    assert state_error.value.reason == "invalid_transition"
    assert reason_error.value.reason == "reason_required"
    assert [r.state for r in queue] == [RequestState.REJECTED]
    assert queue[0].overdue is False  # final requests are never overdue
    assert open_queue == []
