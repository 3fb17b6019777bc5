"""Signed checkpoints: written every N entries and on demand, checked by verify."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from privacy import SigningKey, verify_signed
from server.audit.append import append_entries, create_checkpoint
from server.audit.checkpoint import (
    CheckpointPolicy,
    all_checkpoints,
    covering_checkpoint,
    envelope_of,
    latest_checkpoint,
    policy_from_settings,
)
from server.audit.log import read_head, verify_chain
from server.audit.merkle import MerkleFrontier, leaf_hash
from server.audit.sink import DatabaseAuditSink
from server.audit.verify import ChainProblem

from ..factories import T0
from .conftest import make_records

KEY = SigningKey.generate()


def _policy(every: int = 10) -> CheckpointPolicy:
    return CheckpointPolicy(key=KEY, every=every, clock=lambda: T0)


@pytest.mark.parametrize(("every", "origin"), [(0, "log"), (5, ""), (5, "x" * 65)])
def test_checkpoint_policy_bad_arguments_raise_value_error(every: int, origin: str) -> None:
    with pytest.raises(ValueError):
        CheckpointPolicy(key=KEY, every=every, origin=origin)


def test_sink_with_policy_signs_a_checkpoint_every_n_entries(db_session: Session) -> None:
    sink = DatabaseAuditSink(db_session, checkpoints=_policy(10))
    for record in make_records(25):
        sink.record(
            actor=record.actor, role=record.role, action=record.action, purpose=record.purpose,
            subject=record.subject, outcome=record.outcome, detail=record.detail, at=record.at,
        )  # fmt: skip
    sink.record_many(make_records(17, start=25))  # crosses 30 and 40 in one batch
    db_session.commit()
    checkpoints = list(all_checkpoints(session=db_session))
    assert [c.size for c in checkpoints] == [10, 20, 30, 40]
    report = verify_chain(session=db_session, trusted_keys=[KEY.verify_key], checkpoint_every=10)
    assert report.ok and report.checkpoints == 4 and report.last_good_checkpoint == 40


def test_checkpoint_root_and_head_match_the_entries(db_session: Session) -> None:
    append_entries(session=db_session, records=make_records(10), checkpoints=_policy(10))
    db_session.commit()
    (checkpoint,) = all_checkpoints(session=db_session)
    hashes = db_session.connection().execute(
        text("SELECT entry_hash FROM audit_entry ORDER BY seq")
    ).scalars().all()  # fmt: skip
    frontier = MerkleFrontier()
    frontier.extend(leaf_hash(bytes.fromhex(h)) for h in hashes)
    assert checkpoint.root_hash == frontier.root().hex()
    assert checkpoint.head_hash == hashes[-1] == read_head(session=db_session)[1]
    verify_signed(envelope_of(checkpoint), trusted=KEY.verify_key)
    assert envelope_of(checkpoint)["document"]["type"] == "fedprofile.audit.checkpoint/v1"


def test_create_checkpoint_on_demand_at_head_and_is_idempotent(db_session: Session) -> None:
    append_entries(session=db_session, records=make_records(13), checkpoints=_policy(10))
    first = create_checkpoint(session=db_session, policy=_policy(10))
    again = create_checkpoint(session=db_session, policy=_policy(10))
    db_session.commit()
    assert first.size == again.size == 13 and first.id == again.id
    assert latest_checkpoint(session=db_session) is not None
    assert covering_checkpoint(session=db_session, seq=11) is not None
    assert verify_chain(session=db_session, trusted_keys=[KEY.verify_key]).ok
    # The next due checkpoint extends the on-demand one's frontier correctly.
    append_entries(session=db_session, records=make_records(7, start=13), checkpoints=_policy(10))
    db_session.commit()
    assert [c.size for c in all_checkpoints(session=db_session)] == [10, 13, 20]
    assert verify_chain(session=db_session, trusted_keys=[KEY.verify_key], checkpoint_every=10).ok


def test_entries_appended_without_policy_are_reported_missing_a_checkpoint(
    db_session: Session,
) -> None:
    append_entries(session=db_session, records=make_records(12))
    db_session.commit()
    report = verify_chain(session=db_session, checkpoint_every=10)
    assert (report.ok, report.first_bad_seq, report.reason) == (
        False, 10, ChainProblem.CHECKPOINT_MISSING,
    )  # fmt: skip
    assert verify_chain(session=db_session).ok  # nothing pinned, no interval required


def test_verify_pinned_to_another_key_reports_checkpoint_signature(db_session: Session) -> None:
    append_entries(session=db_session, records=make_records(10), checkpoints=_policy(10))
    db_session.commit()
    other = SigningKey.generate().verify_key
    report = verify_chain(session=db_session, trusted_keys=[other])
    assert (report.ok, report.reason, report.first_bad_seq) == (
        False, ChainProblem.CHECKPOINT_SIGNATURE, 10,
    )  # fmt: skip
    assert verify_chain(session=db_session, trusted_keys=[other, KEY.verify_key]).ok


def test_verify_edited_frontier_reports_frontier_mismatch(db_session: Session) -> None:
    append_entries(session=db_session, records=make_records(10), checkpoints=_policy(10))
    db_session.commit()
    bogus = json.dumps(["00" * 32, "11" * 32])
    db_session.connection().execute(
        text("UPDATE audit_checkpoint SET frontier_json = :f"), {"f": bogus}
    )
    db_session.commit()
    report = verify_chain(session=db_session, trusted_keys=[KEY.verify_key])
    assert report.reason is ChainProblem.CHECKPOINT_FRONTIER_MISMATCH


def test_policy_from_settings_uses_the_configured_key_and_interval(tmp_path: Path) -> None:
    from privacy import load_signing_key_file
    from server.config import ServerSettings

    settings = ServerSettings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        signing_key_path=tmp_path / "signing.pem",
        audit_checkpoint_every=250,
    )
    policy = policy_from_settings(settings, clock=lambda: T0)
    stored = load_signing_key_file(tmp_path / "signing.pem")
    assert policy.every == 250 and policy.clock() == T0
    assert policy.key.verify_key == stored.verify_key
