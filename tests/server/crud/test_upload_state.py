"""The batch state: loaded in a few queries, changes applied in memory, written once."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from consent import Purpose, load_default_catalogue
from server.crud.consent import record_consents
from server.crud.upload_state import UploadBatchState
from server.principal import Principal
from server.tables.edge import Edge
from server.tables.profile_field import ProfileField
from server.tables.subject import Subject
from server.tables.token import Role
from server.tables.upload_receipt import UploadReceipt

from ..factories import T0, RecordingAuditSink, make_consent_event, make_field, make_pseudonym

CATALOGUE = load_default_catalogue()
KNOWN = make_pseudonym("state-known")
NEW = make_pseudonym("state-new")
EDGE = Principal(role=Role.EDGE, edge_id="edge-1", channel="web")


def _seed(session: Session) -> None:
    session.add(Edge(id="edge-1", name="web-1", channel="web", created_at=T0))
    session.commit()
    record_consents(session=session, events=[make_consent_event(KNOWN, Purpose.MARKETING)],
                    principal=EDGE, catalogue=CATALOGUE, audit=RecordingAuditSink(), at=T0)
    session.add(ProfileField(subject=KNOWN, name="feature.recency_days", value_json="1",
                             computed_at=T0, uploaded_purpose="marketing", updated_at=T0))
    session.add(UploadReceipt(edge_id="edge-1", idempotency_key="old-key-1", request_hash="h",
                              response_json="{}", created_at=T0))
    session.commit()


def _load(session: Session) -> UploadBatchState:
    return UploadBatchState.load(session=session, edge_id="edge-1", subjects=[KNOWN, NEW, KNOWN],
                                 keys=["old-key-1", "new-key-1"])


def test_load_reads_receipts_and_consent_of_the_batch(db_session: Session) -> None:
    _seed(db_session)
    state = _load(db_session)
    assert state.receipt("old-key-1") is not None and state.receipt("new-key-1") is None
    assert state.consent(KNOWN).is_granted(Purpose.MARKETING, T0)
    assert state.consent(NEW).events == ()


def test_store_then_flush_updates_known_rows_and_inserts_new_ones(db_session: Session) -> None:
    # Prepare
    _seed(db_session)
    state = _load(db_session)
    later = T0 + timedelta(hours=1)
    # Execute: two writes of the same new field in one batch, one update of a stored field.
    for value in (5, 6):
        state.store(subject=NEW, fields=[make_field("feature.recency_days", value)],
                    purpose=Purpose.MARKETING, channel="web", at=later)
    state.store(subject=KNOWN, fields=[make_field("feature.recency_days", 7)],
                purpose=Purpose.MARKETING, channel="web", at=later)
    state.add_receipt(key="new-key-1", digest="d", response_json="{}", at=later)
    state.flush()
    db_session.commit()
    # Assert
    rows = {(r.subject, r.name): r for r in db_session.exec(select(ProfileField)).all()}
    assert {k: r.value_json for k, r in rows.items()} == {
        (KNOWN, "feature.recency_days"): "7", (NEW, "feature.recency_days"): "6"}
    assert rows[(NEW, "feature.recency_days")].source_edge_id == "edge-1"
    assert state.receipt("new-key-1") is not None
    subjects = {s.pseudonym: s for s in db_session.exec(select(Subject)).all()}
    assert (subjects[NEW].first_seen_at, subjects[NEW].last_seen_at) == (later, later)
    assert (subjects[KNOWN].first_seen_at, subjects[KNOWN].last_seen_at) == (T0, later)
    assert len(db_session.exec(select(UploadReceipt)).all()) == 2
