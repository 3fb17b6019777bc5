"""Properties of persons (invariant 8): merging never widens consent; a split restores it.

Random pseudonyms with random consent grants each upload a field; a shared identity token
links them into one person. Reading through any pseudonym must return a field for a purpose
only when *every* linked pseudonym grants that purpose; detaching them gives back exactly the
reads and consent states each had alone.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, SQLModel

import server.tables  # noqa: F401  (registers the tables)
from consent import Purpose, load_default_catalogue
from models import IdentityTokenBatch, IdentityTokenItem, IdentityTokenWire
from server.audit.sink import DatabaseAuditSink
from server.crud.consent import consent_state, record_consents
from server.crud.upload import upload_profile
from server.db import create_db_engine
from server.identity.governance import detach_subject, merge_subjects
from server.identity.tokens import record_tokens
from server.principal import Principal
from server.profiles.read import read_profile
from server.tables.audit_entry import AuditHead
from server.tables.edge import Edge
from server.tables.token import Role

from ..factories import T0, make_consent_event, make_field, make_pseudonym, make_upload

CATALOGUE = load_default_catalogue()
EDGE = Principal(role=Role.EDGE, edge_id="edge-1", channel="app")
OFFICER = Principal(role=Role.COMPLIANCE_OFFICER, name="alice")
AGENT = Principal(role=Role.AGENT)
PURPOSES = (Purpose.PERSONALIZED_SERVICE, Purpose.MARKETING, Purpose.ANALYTICS)
TOKEN = "it_" + "ab" * 32

grants = st.lists(st.sets(st.sampled_from(PURPOSES), min_size=1), min_size=2, max_size=4)


def _world(granted: list[set[Purpose]]) -> tuple[Session, list[str]]:
    engine = create_db_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    session = Session(engine, expire_on_commit=False)
    session.add(AuditHead())
    session.add(Edge(id="edge-1", name="app-1", channel="app", created_at=T0))
    session.commit()
    subjects = [make_pseudonym(f"person-prop-{i}") for i in range(len(granted))]
    for i, (subject, purposes) in enumerate(zip(subjects, granted, strict=True)):
        events = [make_consent_event(subject, p) for p in sorted(purposes)]
        record_consents(session=session, events=events, principal=EDGE, catalogue=CATALOGUE,
                        audit=DatabaseAuditSink(session), at=T0)  # fmt: skip
        for purpose in sorted(purposes):
            upload = make_upload(purpose.value, [make_field("feature.frequency_90d", i + 1)])
            outcome = upload_profile(
                session=session, subject=subject, upload=upload, principal=EDGE,
                idempotency_key=f"k-{i}-{purpose.value}", catalogue=CATALOGUE,
                audit=DatabaseAuditSink(session), at=T0,
            )  # fmt: skip
            assert outcome.stored
    return session, subjects


def _reads(session: Session, subject: str) -> dict[str, list[tuple[str, object]]]:
    out = {}
    for purpose in PURPOSES:
        read = read_profile(session=session, subject=subject, purpose=purpose.value,
                            principal=AGENT, catalogue=CATALOGUE,
                            audit=DatabaseAuditSink(session), at=T0)  # fmt: skip
        out[purpose.value] = [(f.name, f.value) for f in read.fields]
    return out


def _consent(session: Session, subject: str) -> tuple[object, ...]:
    """A pseudonym's consent state as comparable data: events, suppressions, grants."""
    state = consent_state(session=session, subject=subject)
    return state.events, state.suppressed_fields, state.granted_purposes(T0)


def _link(session: Session, subjects: list[str]) -> None:
    items = [IdentityTokenItem(subject=s, tokens=[IdentityTokenWire(kind="email", token=TOKEN)])
             for s in subjects]  # fmt: skip
    record_tokens(session=session, batch=IdentityTokenBatch(items=items), principal=EDGE,
                  audit=DatabaseAuditSink(session), hub_limit=5, at=T0)  # fmt: skip


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grants)
def test_no_merge_widens_consent_and_a_split_restores_it_exactly(
    granted: list[set[Purpose]],
) -> None:
    session, subjects = _world(granted)
    alone = {s: _reads(session, s) for s in subjects}
    states = {s: _consent(session, s) for s in subjects}

    _link(session, subjects)

    common = set.intersection(*granted)
    for subject in subjects:
        merged = _reads(session, subject)
        for purpose in PURPOSES:
            if purpose in common:
                # Every member grants it: the person's fields are merged over all of them.
                assert merged[purpose.value] == [("feature.frequency_90d",
                                                  sum(range(1, len(subjects) + 1)))]  # fmt: skip
            else:
                assert merged[purpose.value] == []  # one member's refusal wins
    for subject in subjects:
        detach_subject(session=session, subject=subject, reason="property test split",
                       principal=OFFICER, audit=DatabaseAuditSink(session), hub_limit=5,
                       at=T0)  # fmt: skip
    for subject in subjects:
        assert _reads(session, subject) == alone[subject]
        assert _consent(session, subject) == states[subject]
    session.close()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grants)
def test_an_officer_merge_never_widens_consent_either(granted: list[set[Purpose]]) -> None:
    session, subjects = _world(granted)
    for other in subjects[1:]:
        merge_subjects(session=session, subject=subjects[0], other=other, reason="same person",
                       principal=OFFICER, audit=DatabaseAuditSink(session), hub_limit=5,
                       at=T0)  # fmt: skip
    common = set.intersection(*granted)
    reads = _reads(session, subjects[-1])
    assert {p for p in PURPOSES if reads[p.value]} == common
    session.close()
