"""Profile uploads, single and batched: one code path, independent items, one audit entry each."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from consent import ConsentEvent, Purpose, PurposeNotRegisteredError, load_default_catalogue
from models import BatchUploadItem, ProfileUpload, UploadResult
from server.audit.log import count_entries, verify_chain
from server.audit.sink import DatabaseAuditSink
from server.crud.consent import record_consents
from server.crud.upload import UploadOutcome, upload_profile, upload_profiles
from server.db import create_db_engine, upgrade_database
from server.errors import ConsentRefusedError, IdempotencyConflictError
from server.principal import Principal
from server.tables.edge import Edge
from server.tables.profile_field import ProfileField
from server.tables.subject import Subject
from server.tables.token import Role
from server.tables.upload_receipt import UploadReceipt

from ..factories import (
    T0,
    RecordingAuditSink,
    make_consent_event,
    make_field,
    make_item,
    make_pseudonym,
    make_upload,
)

CATALOGUE = load_default_catalogue()
SUBJECT = make_pseudonym("profile-subject")
OTHER = make_pseudonym("other-subject")
EDGE = Principal(role=Role.EDGE, edge_id="edge-1", channel="web")


def _seed(session: Session, *events: ConsentEvent) -> Session:
    session.add(Edge(id="edge-1", name="web-1", channel="web", created_at=T0))
    session.commit()
    record_consents(session=session, events=list(events) or [make_consent_event(SUBJECT)],
                    principal=EDGE, catalogue=CATALOGUE, audit=RecordingAuditSink(), at=T0)
    return session


@pytest.fixture()
def seeded(db_session: Session) -> Session:
    return _seed(db_session)


def _upload(
    session: Session,
    upload: ProfileUpload | None = None,
    key: str = "k1",
    sink: RecordingAuditSink | None = None,
) -> UploadResult:
    return upload_profile(
        session=session, subject=SUBJECT, upload=upload or make_upload(), principal=EDGE,
        idempotency_key=key, catalogue=CATALOGUE, audit=sink or RecordingAuditSink(), at=T0,
    )


def _batch(
    session: Session, items: list[BatchUploadItem], sink: RecordingAuditSink | None = None
) -> list[UploadOutcome]:
    return upload_profiles(session=session, items=items, principal=EDGE, catalogue=CATALOGUE,
                           audit=sink or RecordingAuditSink(), at=T0)


def _stored(session: Session) -> dict[tuple[str, str], tuple[str, str]]:
    rows = session.exec(select(ProfileField)).all()
    return {(r.subject, r.name): (r.value_json, r.uploaded_purpose) for r in rows}


# ------------------------------------------------------------------ single uploads


def test_upload_profile_refusal_stores_nothing_and_audits_codes_only(seeded: Session) -> None:
    sink = RecordingAuditSink()
    upload = make_upload(fields=[make_field("tag.high_purchasing_power"),
                                 make_field("contact.phone_13800138000", "x")])
    with pytest.raises(ConsentRefusedError) as info:
        _upload(seeded, upload, sink=sink)
    assert [r.reason for r in info.value.refused] == ["field_not_catalogued"]
    assert seeded.exec(select(ProfileField)).all() == []
    assert seeded.exec(select(UploadReceipt)).all() == []
    (entry,) = sink.entries
    assert entry.outcome == "refused"
    assert "13800138000" not in str(entry.detail)


def test_upload_profile_same_key_same_body_replays_without_second_write(seeded: Session) -> None:
    sink = RecordingAuditSink()
    first = _upload(seeded, sink=sink)
    second = _upload(seeded, sink=sink)
    assert (first.replayed, second.replayed) == (False, True)
    assert second.stored == first.stored
    assert len(seeded.exec(select(ProfileField)).all()) == 2
    assert [e.outcome for e in sink.entries] == ["accepted", "replayed"]


def test_upload_profile_same_key_other_body_conflicts(seeded: Session) -> None:
    _upload(seeded)
    other = make_upload(fields=[make_field("tag.high_purchasing_power", False)])
    with pytest.raises(IdempotencyConflictError):
        _upload(seeded, other)


def test_upload_profile_second_upload_replaces_values(seeded: Session) -> None:
    _upload(seeded)
    _upload(seeded, make_upload(fields=[make_field("feature.recency_days", 40)]), key="k2")
    rows = {r.name: r.value_json for r in seeded.exec(select(ProfileField)).all()}
    assert rows == {"feature.recency_days": "40", "tag.high_purchasing_power": "true"}


def test_upload_profile_unknown_purpose_raises_and_audits_without_purpose(
    seeded: Session,
) -> None:
    sink = RecordingAuditSink()
    with pytest.raises(PurposeNotRegisteredError):
        _upload(seeded, make_upload(purpose="upselling"), sink=sink)
    (entry,) = sink.entries
    assert (entry.outcome, entry.purpose) == ("refused", None)
    assert entry.detail == {"edge_id": "edge-1", "fields": 2, "reason": "purpose_not_registered"}
    assert seeded.exec(select(ProfileField)).all() == []


# ------------------------------------------------------------------ batches


def test_upload_profiles_refused_item_does_not_block_the_others(seeded: Session) -> None:
    # Prepare: SUBJECT has consent, OTHER has none.
    items = [make_item(SUBJECT, "key-0001"), make_item(OTHER, "key-0002"),
             make_item(SUBJECT, "key-0003", make_upload("marketing"))]
    sink = RecordingAuditSink()
    # Execute
    outcomes = _batch(seeded, items, sink)
    # Assert
    assert [type(o.error).__name__ if o.error else "ok" for o in outcomes] == [
        "ok", "ConsentRefusedError", "ConsentRefusedError"]
    assert {s for s, _ in _stored(seeded)} == {SUBJECT}
    assert seeded.get(Subject, OTHER) is None
    assert [e.outcome for e in sink.entries] == ["accepted", "refused", "refused"]
    assert [e.subject for e in sink.entries] == [SUBJECT, OTHER, SUBJECT]


@pytest.mark.parametrize(
    ("second", "expected"),
    [(make_upload(), ["accepted", "replayed"]),
     (make_upload(fields=[make_field("feature.recency_days", 99)]), ["accepted", "conflict"])],
    ids=["same-body-replays", "other-body-conflicts"],
)
def test_upload_profiles_repeated_key_in_one_batch_acts_like_a_second_request(
    seeded: Session, second: ProfileUpload, expected: list[str]
) -> None:
    sink = RecordingAuditSink()
    outcomes = _batch(seeded, [make_item(SUBJECT, "key-0001"),
                               make_item(SUBJECT, "key-0001", second)], sink)
    assert [e.outcome for e in sink.entries] == expected
    assert outcomes[0].unwrap().replayed is False
    assert len(seeded.exec(select(UploadReceipt)).all()) == 1
    assert _stored(seeded)[(SUBJECT, "feature.recency_days")][0] == "12"


def test_upload_profiles_later_item_overwrites_earlier_field_of_same_subject(
    seeded: Session,
) -> None:
    first = make_upload(fields=[make_field("feature.recency_days", 1)])
    second = make_upload(fields=[make_field("feature.recency_days", 2)])
    _batch(seeded, [make_item(SUBJECT, "key-0001", first), make_item(SUBJECT, "key-0002", second)])
    assert _stored(seeded) == {(SUBJECT, "feature.recency_days"): ("2", "personalized_service")}


def test_upload_profiles_matches_the_same_uploads_sent_one_by_one(
    memory_engine: Engine, tmp_path: Path
) -> None:
    # Prepare: the same consent on two databases; a mixed sequence of uploads.
    events = [make_consent_event(SUBJECT), make_consent_event(SUBJECT, Purpose.MARKETING),
              make_consent_event(OTHER, Purpose.MARKETING)]
    items = [
        make_item(SUBJECT, "key-0001"),
        make_item(OTHER, "key-0002", make_upload("marketing")),
        make_item(SUBJECT, "key-0003", make_upload("marketing", [make_field("tag.churn_risk")])),
        make_item(OTHER, "key-0004"),
        make_item(SUBJECT, "key-0001"),
        make_item(SUBJECT, "key-0005", make_upload(
            "marketing", [make_field("feature.recency_days", 30)])),
    ]
    other_engine = create_db_engine(f"sqlite:///{tmp_path / 'one-by-one.sqlite'}")
    upgrade_database(f"sqlite:///{tmp_path / 'one-by-one.sqlite'}")
    batch_sink, single_sink = RecordingAuditSink(), RecordingAuditSink()
    try:
        with Session(memory_engine) as batch_s, Session(other_engine) as single_s:
            _seed(batch_s, *events)
            _seed(single_s, *events)
            # Execute
            _batch(batch_s, items, batch_sink)
            for item in items:
                try:
                    upload_profile(session=single_s, subject=item.subject, upload=item.upload,
                                   principal=EDGE, idempotency_key=item.idempotency_key,
                                   catalogue=CATALOGUE, audit=single_sink, at=T0)
                except (ConsentRefusedError, IdempotencyConflictError):
                    pass
            # Assert
            assert _stored(batch_s) == _stored(single_s)
            assert len(_stored(batch_s)) == 4
    finally:
        other_engine.dispose()
    assert [(e.subject, e.outcome, e.detail) for e in batch_sink.entries] == [
        (e.subject, e.outcome, e.detail) for e in single_sink.entries]


def test_upload_profiles_touches_subject_once_and_keeps_first_seen(seeded: Session) -> None:
    _upload(seeded)
    later = T0.replace(hour=T0.hour + 1)
    upload_profiles(session=seeded, items=[make_item(SUBJECT, "key-0002"),
                                           make_item(SUBJECT, "key-0003")],
                    principal=EDGE, catalogue=CATALOGUE, audit=RecordingAuditSink(), at=later)
    seeded.expire_all()
    subject = seeded.get(Subject, SUBJECT)
    assert subject is not None
    assert (subject.first_seen_at, subject.last_seen_at) == (T0, later)


def test_upload_profiles_empty_batch_writes_and_audits_nothing(seeded: Session) -> None:
    sink = RecordingAuditSink()
    assert _batch(seeded, [], sink) == [] and sink.entries == []


def test_upload_profiles_non_edge_principal_is_value_error(seeded: Session) -> None:
    with pytest.raises(ValueError, match="edge"):
        upload_profiles(session=seeded, items=[make_item(SUBJECT, "key-0001")],
                        principal=Principal(role=Role.ADMIN), catalogue=CATALOGUE,
                        audit=RecordingAuditSink(), at=T0)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [(UploadOutcome(result=UploadResult(subject=SUBJECT, purpose="marketing", stored=[])), None),
     (UploadOutcome(error=IdempotencyConflictError()), IdempotencyConflictError),
     (UploadOutcome(), ValueError)],
    ids=["result", "error", "neither"],
)
def test_upload_outcome_unwrap(outcome: UploadOutcome, expected: type[Exception] | None) -> None:
    if expected is None:
        assert outcome.unwrap() is outcome.result
    else:
        with pytest.raises(expected):
            outcome.unwrap()


# ------------------------------------------------------------------ concurrency


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def file_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database shared by threads: a SQLite file or a PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'concurrent.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade_database(url)
    engine = create_db_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


EDGES = [Principal(role=Role.EDGE, edge_id=f"edge-{n}", channel="web") for n in range(4)]
SHARED = [make_pseudonym(f"shared-{n}") for n in range(10)]


def _run_threads(engine: Engine, batches: int) -> list[BaseException]:
    """Four edges upload batches over the same subjects while consent batches arrive."""
    errors: list[BaseException] = []

    def uploads(edge: Principal) -> None:
        for b in range(batches):
            items = [make_item(s, f"{edge.edge_id}-{b}-{n:02d}") for n, s in enumerate(SHARED)]
            with Session(engine, expire_on_commit=False) as session:
                outcomes = upload_profiles(session=session, items=items, principal=edge,
                                           catalogue=CATALOGUE, audit=DatabaseAuditSink(session),
                                           at=T0)
            assert all(o.error is None for o in outcomes)

    def consents() -> None:
        for b in range(batches):
            events = [make_consent_event(s, Purpose.ANALYTICS, notice_version=f"v{b}")
                      for s in SHARED]
            with Session(engine, expire_on_commit=False) as session:
                record_consents(session=session, events=events, principal=EDGES[0],
                                catalogue=CATALOGUE, audit=DatabaseAuditSink(session), at=T0)

    def guarded(target: Callable[..., None], *args: object) -> None:
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the caller's assert
            errors.append(exc)

    pool = [threading.Thread(target=guarded, args=(uploads, e)) for e in EDGES]
    pool.append(threading.Thread(target=guarded, args=(consents,)))
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in pool)
    return errors


def test_upload_profiles_concurrent_batches_keep_the_chain_valid(file_engine: Engine) -> None:
    # Prepare: four edges, consent for every shared subject.
    with Session(file_engine) as session:
        session.add_all([Edge(id=e.edge_id, name=e.edge_id, channel="web", created_at=T0)
                         for e in EDGES if e.edge_id])
        session.commit()
        record_consents(session=session, events=[make_consent_event(s) for s in SHARED],
                        principal=EDGES[0], catalogue=CATALOGUE,
                        audit=DatabaseAuditSink(session), at=T0)
        before = count_entries(session=session)
    # Execute: 4 edges x 3 batches x 10 items, with 3 consent batches interleaved.
    errors = _run_threads(file_engine, batches=3)
    # Assert: no lost or forked entry, every item stored once (one contribution per edge).
    assert errors == []
    with Session(file_engine) as session:
        report = verify_chain(session=session)
        receipts = len(session.exec(select(UploadReceipt)).all())
        fields = len(session.exec(select(ProfileField)).all())
    assert report.ok
    assert report.entries == before + 4 * 3 * 10 + 3 * 10
    assert receipts == 120 and fields == len(EDGES) * 2 * len(SHARED)
