"""Server-level property test: random grants, withdrawals, notices, uploads and reads.

Runs the real storage path (SQLite in memory, the audit chain, purge on withdrawal) and checks
each read against ``consent.evaluate`` over everything sent so far (the consent-level
properties check ``evaluate`` itself against an independent oracle): no read ever returns a
field its consent does not allow at that moment, and no stored field outlives every purpose
that allowed it.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, SQLModel

from consent import (
    ConsentEvent,
    ConsentState,
    ConsentStatus,
    Notice,
    NoticeDraft,
    NoticeRegistry,
    Purpose,
    evaluate,
    load_default_catalogue,
)
from models import ProfileUpload
from server.audit.sink import DatabaseAuditSink
from server.crud.consent import record_consents
from server.crud.notice import publish_notice
from server.crud.profile_store import fields_of
from server.crud.upload import upload_profile
from server.db import create_db_engine
from server.errors import ConsentRefusedError
from server.principal import Principal
from server.profiles.read import read_profile
from server.tables.edge import Edge
from server.tables.token import Role

from ..factories import T0, make_field, make_pseudonym

CATALOGUE = load_default_catalogue()
NORMAL = [f for f in CATALOGUE.fields if f.sensitivity.value == "normal"]
SUBJECT = make_pseudonym("property-subject")
EDGE = Principal(role=Role.EDGE, edge_id="edge-p", channel="web")
OFFICER = Principal(role=Role.COMPLIANCE_OFFICER, name="dpo")
AGENT = Principal(role=Role.AGENT, name="agent")
PURPOSES = list(Purpose)

_consent = st.tuples(
    st.just("consent"),
    st.sampled_from(PURPOSES),
    st.sampled_from([ConsentStatus.GRANTED, ConsentStatus.WITHDRAWN, ConsentStatus.REVOKED]),
    st.sampled_from(["v0", "v1", "v2"]),
)
_notice = st.tuples(
    st.just("notice"), st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=2), st.booleans()
)
_upload = st.tuples(
    st.just("upload"),
    st.sampled_from(PURPOSES),
    st.lists(st.sampled_from([f.name for f in NORMAL]), min_size=1, max_size=3, unique=True),
)
_read = st.tuples(st.just("read"), st.sampled_from(PURPOSES))
OPS = st.lists(st.one_of(_consent, _notice, _upload, _read), min_size=3, max_size=14)


def _value(name: str) -> bool | int | str:
    kind = CATALOGUE.get(name).value_type.value
    return {"tag": True, "boolean": True, "number": 3, "string": "books"}[kind]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_reads_never_return_a_field_consent_does_not_allow_now(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    engine = create_db_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    events: list[ConsentEvent] = []
    notices: list[Notice] = []
    try:
        with Session(engine, expire_on_commit=False) as session:
            session.add(Edge(id="edge-p", name="edge-p", channel="web", created_at=T0))
            session.commit()
            audit = DatabaseAuditSink(session)
            for step, op in enumerate(ops):
                at = T0 + timedelta(minutes=step + 1)
                if op[0] == "consent":
                    _, purpose, status, version = op
                    event = ConsentEvent(
                        subject=SUBJECT,
                        purpose=purpose,
                        status=status,
                        occurred_at=at,
                        notice_version=version,
                        channel="web",
                    )
                    events.append(event)
                    record_consents(
                        session=session,
                        events=[event],
                        principal=EDGE,
                        catalogue=CATALOGUE,
                        audit=audit,
                        at=at,
                    )
                elif op[0] == "notice":
                    draft = NoticeDraft(
                        version=f"v{len(notices) + 1}",
                        purposes=tuple(op[1]),
                        material=op[2],
                        content_hash="f" * 64,
                        url="https://example.com/n",
                        language="zh-CN",
                    )
                    notice, _ = publish_notice(
                        session=session, draft=draft, principal=OFFICER, audit=audit, at=at
                    )
                    notices.append(notice)
                elif op[0] == "upload":
                    upload = ProfileUpload(
                        purpose=op[1].value,
                        fields=[make_field(n, _value(n), computed_at=at) for n in op[2]],
                    )
                    try:
                        upload_profile(
                            session=session,
                            subject=SUBJECT,
                            upload=upload,
                            principal=EDGE,
                            idempotency_key=f"k{step}",
                            catalogue=CATALOGUE,
                            audit=audit,
                            at=at,
                        )
                    except ConsentRefusedError:
                        session.rollback()
                else:
                    state = ConsentState(events, notices=NoticeRegistry(notices))
                    if not events:
                        continue  # the server knows nothing of the subject yet (404)
                    read = read_profile(
                        session=session,
                        subject=SUBJECT,
                        purpose=op[1].value,
                        principal=AGENT,
                        catalogue=CATALOGUE,
                        audit=audit,
                        at=at,
                    )
                    for field in read.fields:
                        decision = evaluate(
                            catalogue=CATALOGUE,
                            consent=state,
                            field=field.name,
                            purpose=op[1],
                            at=at,
                        )
                        assert decision.allowed, (field.name, op[1], decision.reason)
                # No stored field outlives every purpose that allowed it (withdrawal purges).
                bare = ConsentState(events)
                for row in fields_of(session=session, subject=SUBJECT):
                    assert any(bare.is_granted(p, at) for p in CATALOGUE.get(row.name).purposes), (
                        row.name
                    )
    finally:
        engine.dispose()
