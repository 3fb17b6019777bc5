"""Signed range exports verify offline with only the public key, and changes are caught."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlmodel import Session

from privacy import SigningKey
from server.audit.append import append_entries
from server.audit.checkpoint import CheckpointPolicy, all_checkpoints
from server.audit.export import ExportProblem, export_range, verify_export
from server.errors import NotFoundError

from ..factories import T0
from .conftest import make_records

KEY = SigningKey.generate()
POLICY = CheckpointPolicy(key=KEY, every=16, clock=lambda: T0)


@pytest.fixture()
def log(db_session: Session) -> Session:
    append_entries(session=db_session, records=make_records(50), checkpoints=POLICY)
    db_session.commit()
    return db_session


@pytest.mark.parametrize(("first", "last"), [(1, 1), (1, 16), (5, 11), (17, 32), (3, 48), (40, 50)])
def test_export_range_verifies_offline_with_the_public_key(
    log: Session, first: int, last: int
) -> None:
    export = export_range(session=log, first=first, last=last, policy=POLICY)
    log.commit()
    # A round trip through JSON text: what an auditor receives.
    check = verify_export(json.loads(json.dumps(export)), public_key=KEY.verify_key)
    assert check.ok and (check.first, check.last, check.entries) == (first, last, last - first + 1)
    assert check.checkpoint_size is not None and check.checkpoint_size >= last
    assert "ps_" not in json.dumps(export) and "subject_salt" not in json.dumps(export)


def test_export_past_last_checkpoint_signs_one_on_demand(log: Session) -> None:
    export = export_range(session=log, first=45, last=50, policy=POLICY)
    log.commit()
    assert export["document"]["checkpoint"]["document"]["size"] == 50
    assert [c.size for c in all_checkpoints(session=log)] == [16, 32, 48, 50]
    assert verify_export(export, public_key=KEY.verify_key).ok


@pytest.mark.parametrize(("first", "last"), [(0, 3), (4, 3), (10, 51)])
def test_export_range_outside_the_log_raises_not_found(log: Session, first: int, last: int) -> None:
    with pytest.raises(NotFoundError):
        export_range(session=log, first=first, last=last, policy=POLICY)


def _resign(export: dict[str, Any]) -> dict[str, Any]:
    """An attacker holding the server key for exports only cannot fix the checkpoint proof."""
    return KEY.signed(export["document"])


def _edit_entry(doc: dict[str, Any]) -> None:
    doc["entries"][2]["outcome"] = "refused" if doc["entries"][2]["outcome"] != "refused" else "x"


def _drop_entry(doc: dict[str, Any]) -> None:
    del doc["entries"][2]
    doc["to"] -= 1


def _swap_entries(doc: dict[str, Any]) -> None:
    doc["entries"][2], doc["entries"][3] = doc["entries"][3], doc["entries"][2]


def _forge_entry_consistently(doc: dict[str, Any]) -> None:
    # Rewrite the last entry and recompute its hash: the chain inside the export holds,
    # the signed Merkle root does not.
    from server.audit.entry_hash import hash_fields

    last = doc["entries"][-1]
    last["actor"] = "admin"
    last["entry_hash"] = hash_fields(
        last["prev_hash"], last["seq"], last["at"], last["actor"], last["role"], last["action"],
        last["purpose"], last["outcome"], last["subject_commitment"], last["detail_json"],
    )  # fmt: skip


def _edit_proof(doc: dict[str, Any]) -> None:
    doc["proof"][0] = "00" * 32


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (_edit_entry, ExportProblem.ENTRY_HASH_MISMATCH),
        (_drop_entry, ExportProblem.SEQ_GAP),
        (_swap_entries, ExportProblem.SEQ_GAP),
        (_forge_entry_consistently, ExportProblem.ROOT_MISMATCH),
        (_edit_proof, ExportProblem.ROOT_MISMATCH),
    ],
    ids=["edit", "drop", "swap", "forge-with-rehash", "proof"],
)
def test_tampered_export_is_refused(
    log: Session, tamper: Callable[[dict[str, Any]], None], problem: ExportProblem
) -> None:
    export = export_range(session=log, first=5, last=11, policy=POLICY)
    changed = copy.deepcopy(export)
    tamper(changed["document"])
    # Unsigned edits break the export signature; re-signed ones are caught by the content.
    assert verify_export(changed, public_key=KEY.verify_key).reason is ExportProblem.SIGNATURE
    assert verify_export(_resign(changed), public_key=KEY.verify_key).reason is problem


def test_export_under_another_key_or_malformed_is_refused(log: Session) -> None:
    export = export_range(session=log, first=1, last=4, policy=POLICY)
    other = SigningKey.generate()
    assert verify_export(export, public_key=other.verify_key).reason is ExportProblem.SIGNATURE
    # Re-signed wholesale with another key: the embedded checkpoint still needs ours.
    forged = other.signed(export["document"])
    check = verify_export(forged, public_key=other.verify_key)
    assert check.reason is ExportProblem.CHECKPOINT_SIGNATURE
    assert verify_export({}, public_key=KEY.verify_key).reason is ExportProblem.SIGNATURE
    broken = KEY.signed({"type": "something else"})
    assert verify_export(broken, public_key=KEY.verify_key).reason is ExportProblem.MALFORMED
