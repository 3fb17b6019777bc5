"""Profile reads: purpose-bound, retention-aware, audited (uploads: ``test_upload.py``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from consent import load_default_catalogue
from models import ProfileUpload
from server.crud.consent import record_consents
from server.crud.upload import upload_profile
from server.errors import NotFoundError
from server.principal import Principal
from server.profiles.read import read_profile
from server.tables.edge import Edge
from server.tables.token import Role

from ..factories import (
    T0,
    RecordingAuditSink,
    make_consent_event,
    make_field,
    make_pseudonym,
    make_upload,
)

CATALOGUE = load_default_catalogue()
SUBJECT = make_pseudonym("profile-subject")
EDGE = Principal(role=Role.EDGE, edge_id="edge-1", channel="web")
AGENT = Principal(role=Role.AGENT)


@pytest.fixture()
def seeded(db_session: Session) -> Session:
    db_session.add(Edge(id="edge-1", name="web-1", channel="web", created_at=T0))
    db_session.commit()
    record_consents(session=db_session, events=[make_consent_event(SUBJECT)], principal=EDGE,
                    catalogue=CATALOGUE, audit=RecordingAuditSink(), at=T0)
    return db_session


def _upload(session: Session, upload: ProfileUpload) -> None:
    upload_profile(
        session=session, subject=SUBJECT, upload=upload, principal=EDGE, idempotency_key="k1",
        catalogue=CATALOGUE, audit=RecordingAuditSink(), at=T0,
    )


def test_read_profile_past_retention_is_withheld(seeded: Session) -> None:
    old = T0 - timedelta(days=181)  # recency_days keeps 180 days
    _upload(seeded, make_upload(fields=[make_field("feature.recency_days", 3, computed_at=old),
                                        make_field("tag.high_purchasing_power")]))
    profile = read_profile(session=seeded, subject=SUBJECT, purpose="personalized_service",
                           principal=AGENT, catalogue=CATALOGUE, audit=RecordingAuditSink(),
                           at=T0)
    assert [f.name for f in profile.fields] == ["tag.high_purchasing_power"]
    assert profile.withheld == 1


def test_read_profile_unknown_subject_raises_not_found_and_audits(db_session: Session) -> None:
    sink = RecordingAuditSink()
    with pytest.raises(NotFoundError):
        read_profile(session=db_session, subject=SUBJECT, purpose="marketing", principal=AGENT,
                     catalogue=CATALOGUE, audit=sink, at=T0)
    assert [e.outcome for e in sink.entries] == ["not_found"]
