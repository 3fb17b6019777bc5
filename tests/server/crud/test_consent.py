from __future__ import annotations

from datetime import timedelta, timezone

from sqlmodel import Session, select

from consent import ConsentEvent, ConsentStatus, Purpose, load_default_catalogue
from models import ConsentBatchResult
from server.crud.consent import consent_state, consent_states, event_hash, record_consents
from server.crud.upload import upload_profile
from server.principal import Principal
from server.tables.consent_record import ConsentRecord
from server.tables.edge import Edge
from server.tables.profile_field import ProfileField
from server.tables.token import Role

from ..factories import T0, RecordingAuditSink, make_consent_event, make_pseudonym, make_upload

CATALOGUE = load_default_catalogue()
EDGE = Principal(role=Role.EDGE, edge_id="edge-1", channel="web")
SUBJECT = make_pseudonym("consent-subject")


def _record(
    session: Session, events: list[ConsentEvent], sink: RecordingAuditSink | None = None
) -> ConsentBatchResult:
    return record_consents(
        session=session, events=events, principal=EDGE, catalogue=CATALOGUE,
        audit=sink or RecordingAuditSink(), at=T0,
    )


def _seed_edge(session: Session) -> None:
    session.add(Edge(id="edge-1", name="web-1", channel="web", created_at=T0))
    session.commit()


def test_event_hash_same_instant_other_offset_is_equal() -> None:
    event = make_consent_event(SUBJECT)
    shifted = event.model_copy(
        update={"occurred_at": event.occurred_at.astimezone(timezone(timedelta(hours=8)))}
    )
    assert event_hash(event) == event_hash(shifted)
    assert event_hash(event) != event_hash(event.model_copy(update={"separate": True}))


def test_record_consents_resent_events_are_counted_as_duplicates(db_session: Session) -> None:
    _seed_edge(db_session)
    events = [make_consent_event(SUBJECT), make_consent_event(SUBJECT, Purpose.MARKETING)]
    first = _record(db_session, events)
    second = _record(db_session, [*events, events[0]])
    stored = db_session.exec(select(ConsentRecord)).all()
    assert (first.recorded, first.duplicates) == (2, 0)
    assert (second.recorded, second.duplicates) == (0, 3)
    assert len(stored) == 2


def test_record_consents_audits_one_entry_per_subject(db_session: Session) -> None:
    _seed_edge(db_session)
    other = make_pseudonym("other-subject")
    sink = RecordingAuditSink()
    _record(db_session, [make_consent_event(SUBJECT), make_consent_event(other),
                         make_consent_event(other, Purpose.MARKETING)], sink)
    assert sorted((e.subject, e.detail["recorded"]) for e in sink.entries) == sorted(
        [(SUBJECT, 1), (other, 2)]
    )
    assert all(e.action == "consent.record" for e in sink.entries)


def test_consent_state_folds_stored_records(db_session: Session) -> None:
    _seed_edge(db_session)
    _record(db_session, [
        make_consent_event(SUBJECT),
        make_consent_event(SUBJECT, status=ConsentStatus.WITHDRAWN,
                           occurred_at=T0 - timedelta(minutes=1)),
    ])
    state = consent_state(session=db_session, subject=SUBJECT)
    assert not state.is_granted(Purpose.PERSONALIZED_SERVICE, T0)


def _stored_names(session: Session) -> list[str]:
    return sorted(r.name for r in session.exec(select(ProfileField)).all())


def test_record_consents_withdrawal_purges_fields_no_purpose_allows(db_session: Session) -> None:
    # Prepare: recency_days is allowed for personalized_service, marketing and analytics;
    # the subject granted only personalized_service.
    _seed_edge(db_session)
    _record(db_session, [make_consent_event(SUBJECT)])
    upload_profile(
        session=db_session, subject=SUBJECT, upload=make_upload(), principal=EDGE,
        idempotency_key="k", catalogue=CATALOGUE, audit=RecordingAuditSink(), at=T0,
    )
    sink = RecordingAuditSink()
    # Execute
    _record(db_session, [make_consent_event(
        SUBJECT, status=ConsentStatus.WITHDRAWN, occurred_at=T0 - timedelta(seconds=1))], sink)
    # Assert
    assert _stored_names(db_session) == []
    assert sink.entries[0].detail["purged_fields"] == [
        "feature.recency_days", "tag.high_purchasing_power"
    ]


def test_record_consents_withdrawal_keeps_fields_another_purpose_allows(
    db_session: Session,
) -> None:
    _seed_edge(db_session)
    _record(db_session, [make_consent_event(SUBJECT),
                         make_consent_event(SUBJECT, Purpose.MARKETING)])
    upload_profile(
        session=db_session, subject=SUBJECT, upload=make_upload(), principal=EDGE,
        idempotency_key="k", catalogue=CATALOGUE, audit=RecordingAuditSink(), at=T0,
    )
    _record(db_session, [make_consent_event(
        SUBJECT, status=ConsentStatus.WITHDRAWN, occurred_at=T0 - timedelta(seconds=1))])
    assert _stored_names(db_session) == ["feature.recency_days", "tag.high_purchasing_power"]


def test_consent_states_folds_each_subject_separately(db_session: Session) -> None:
    other = make_pseudonym("consent-other")
    unknown = make_pseudonym("consent-unknown")
    _seed_edge(db_session)
    _record(db_session, [make_consent_event(SUBJECT), make_consent_event(other, Purpose.MARKETING)])
    states = consent_states(session=db_session, subjects=[SUBJECT, other, unknown])
    assert states[SUBJECT].granted_purposes(T0) == consent_state(
        session=db_session, subject=SUBJECT).granted_purposes(T0)
    assert (Purpose.PERSONALIZED_SERVICE in states[SUBJECT].granted_purposes(T0),
            Purpose.MARKETING in states[other].granted_purposes(T0),
            states[unknown].events) == (True, True, ())
