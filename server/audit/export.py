"""Signed exports of a range of the audit log, and their offline verification.

An export of entries ``from..to`` is the envelope ``SigningKey.signed(document)`` where the
document holds the entries (covered fields, hashes, no pseudonyms or salts), the signed
checkpoint that covers ``to`` (the smallest one at or after it, signed on demand when none
exists yet) and the RFC 9162 range proof: the hashes of the Merkle subtrees outside the
range. :func:`verify_export` needs nothing but the export and the server's public key:

1. the export's own signature and the checkpoint's signature verify under the key;
2. the entries are consecutive, each hash recomputes and each links to the one before;
3. the entries' leaves and the proof rebuild the checkpoint's signed Merkle root (and, if the
   range ends at the checkpoint, the last hash is the signed head hash).

So an auditor holding the export and the key knows the entries were in the log, unchanged,
when the checkpoint was signed, without access to our database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session

from privacy import DecryptionError, VerifyKey, verify_signed

from ..errors import NotFoundError
from ..tables.audit_checkpoint import AuditCheckpoint
from ..tables.audit_entry import GENESIS_HASH
from .append import create_checkpoint
from .checkpoint import CHECKPOINT_TYPE, CheckpointPolicy, covering_checkpoint, envelope_of
from .entry_hash import hash_fields, stored_time_text
from .log import iter_entry_rows, read_head
from .merkle import leaf_hash, node_hash, range_proof, root_from_range
from .verify import ROW_COLUMNS

#: ``type`` member of every export document.
EXPORT_TYPE = "fedprofile.audit.export/v1"
#: Entry members an export carries (never ``subject_ref`` or ``subject_salt``).
EXPORT_COLUMNS = ROW_COLUMNS[: ROW_COLUMNS.index("entry_hash") + 1]


class ExportProblem(StrEnum):
    """Why an export did not verify (stable codes; help text in :data:`EXPORT_PROBLEM_HELP`)."""

    MALFORMED = "malformed"
    SIGNATURE = "export_signature_invalid"
    CHECKPOINT_SIGNATURE = "checkpoint_signature_invalid"
    SEQ_GAP = "seq_gap"
    PREV_HASH_MISMATCH = "prev_hash_mismatch"
    ENTRY_HASH_MISMATCH = "entry_hash_mismatch"
    ROOT_MISMATCH = "checkpoint_root_mismatch"
    HEAD_MISMATCH = "checkpoint_head_mismatch"


EXPORT_PROBLEM_HELP: dict[ExportProblem, str] = {
    ExportProblem.MALFORMED: "the file is not an audit export (missing or mistyped members)",
    ExportProblem.SIGNATURE: "the export's signature does not verify under the given key",
    ExportProblem.CHECKPOINT_SIGNATURE: "the included checkpoint's signature does not verify "
    "under the given key, or it does not cover the range",
    ExportProblem.SEQ_GAP: "the entries are not the consecutive range the export claims",
    ExportProblem.PREV_HASH_MISMATCH: "an entry does not link to the entry before it",
    ExportProblem.ENTRY_HASH_MISMATCH: "an entry's fields do not hash to its entry_hash",
    ExportProblem.ROOT_MISMATCH: "the entries and proof do not rebuild the signed Merkle root",
    ExportProblem.HEAD_MISMATCH: "the last entry is not the checkpoint's signed head",
}


class ExportCheck(BaseModel):
    """Result of verifying an export offline.

    Parameters
    ----------
    ok : bool
        True when every check passed.
    first : int or None
        First sequence number of the range (when readable).
    last : int or None
        Last sequence number of the range (when readable).
    entries : int
        Entries checked before stopping.
    checkpoint_size : int or None
        Size of the checkpoint the range was proven against.
    reason : ExportProblem or None
        What failed.
    first_bad_seq : int or None
        The entry where it failed, for entry problems.
    """

    ok: bool
    first: int | None = None
    last: int | None = None
    entries: int = 0
    checkpoint_size: int | None = None
    reason: ExportProblem | None = None
    first_bad_seq: int | None = None


def _subtree_hasher(leaves: Sequence[bytes]) -> Any:
    """Return ``subtree(lo, hi)``: the Merkle hash of ``leaves[lo:hi]`` (no copies)."""

    def subtree(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return leaves[lo]
        k = 1 << ((hi - lo - 1).bit_length() - 1)
        return node_hash(subtree(lo, lo + k), subtree(lo + k, hi))

    return subtree


def export_range(
    *, session: Session, first: int, last: int, policy: CheckpointPolicy
) -> dict[str, Any]:
    """Return the signed export of entries ``first..last`` (inclusive).

    When no checkpoint covers ``last`` yet, one is signed at the current head first (in the
    session's transaction: the caller commits, so the export's checkpoint is stored).

    Parameters
    ----------
    session : Session
        A session on the audited database.
    first, last : int
        The range, ``1 <= first <= last <= head``.
    policy : CheckpointPolicy
        The server's signing key (signs the export and any on-demand checkpoint), origin
        and clock.

    Returns
    -------
    dict[str, Any]
        ``{"document", "signature", "algorithm", "key_id", "public_key"}``; the document holds
        ``type``, ``origin``, ``from``, ``to``, ``entries``, ``checkpoint`` (its envelope),
        ``proof`` (hex subtree hashes) and ``exported_at``.

    Raises
    ------
    NotFoundError
        If the range is empty or reaches past the log's head.
    """
    head_seq, _ = read_head(session=session)
    if not 1 <= first <= last <= head_seq:
        raise NotFoundError(
            kind=f"audit range (the log holds entries 1..{head_seq})", ref=f"{first}..{last}"
        )
    checkpoint: AuditCheckpoint | None = covering_checkpoint(session=session, seq=last)
    if checkpoint is None:
        checkpoint = create_checkpoint(session=session, policy=policy)
    # Leaves of the whole checkpointed tree: the proof needs the subtrees around the range.
    rows = list(iter_entry_rows(session=session, first=1, last=checkpoint.size))
    leaves = [leaf_hash(bytes.fromhex(str(row[10]))) for row in rows]
    proof = range_proof(
        size=checkpoint.size, start=first - 1, end=last, subtree=_subtree_hasher(leaves)
    )
    entries = [
        {
            **dict(zip(EXPORT_COLUMNS, row[: len(EXPORT_COLUMNS)], strict=True)),
            "at": stored_time_text(row[1]),
        }
        for row in rows[first - 1 : last]
    ]
    document = {
        "type": EXPORT_TYPE,
        "origin": checkpoint.origin,
        "from": first,
        "to": last,
        "entries": entries,
        "checkpoint": envelope_of(checkpoint),
        "proof": [h.hex() for h in proof],
        "exported_at": stored_time_text(policy.clock()),
    }
    signed: dict[str, Any] = policy.key.signed(document)
    return signed


def _check_entries(
    entries: Sequence[Mapping[str, Any]], first: int
) -> tuple[ExportProblem, int] | None:
    """Check the entries' numbering, hashes and links; return the first problem or None."""
    previous: str | None = None
    for offset, entry in enumerate(entries):
        seq = first + offset
        if entry["seq"] != seq:
            return ExportProblem.SEQ_GAP, seq
        if previous is not None and entry["prev_hash"] != previous:
            return ExportProblem.PREV_HASH_MISMATCH, seq
        if seq == 1 and entry["prev_hash"] != GENESIS_HASH:
            return ExportProblem.PREV_HASH_MISMATCH, seq
        computed = hash_fields(
            entry["prev_hash"], seq, entry["at"], entry["actor"], entry["role"],
            entry["action"], entry["purpose"], entry["outcome"], entry["subject_commitment"],
            entry["detail_json"],
        )  # fmt: skip
        if computed != entry["entry_hash"]:
            return ExportProblem.ENTRY_HASH_MISMATCH, seq
        previous = computed
    return None


def verify_export(export: Mapping[str, Any], *, public_key: VerifyKey) -> ExportCheck:
    """Verify a signed export offline with only the server's public key.

    Parameters
    ----------
    export : Mapping[str, Any]
        The parsed export file (:func:`export_range` output).
    public_key : VerifyKey
        The server's pinned public key (``GET /api/v1/keys/signing-key``, or the key file's
        public half); the export's own ``public_key`` member is not trusted.

    Returns
    -------
    ExportCheck
        ``ok=True``, or the first problem found.
    """
    # 1. Both signatures, under the pinned key.
    try:
        verify_signed(dict(export), trusted=public_key)
    except DecryptionError:
        return ExportCheck(ok=False, reason=ExportProblem.SIGNATURE)
    try:
        document = export["document"]
        first, last = int(document["from"]), int(document["to"])
        entries = list(document["entries"])
        envelope = dict(document["checkpoint"])
        proof = [bytes.fromhex(h) for h in document["proof"]]
        signed = envelope["document"]
        size, root, head = int(signed["size"]), str(signed["root_hash"]), signed["head_hash"]
        if document["type"] != EXPORT_TYPE or len(entries) != last - first + 1:
            raise ValueError("not an audit export")
    except (KeyError, TypeError, ValueError):
        return ExportCheck(ok=False, reason=ExportProblem.MALFORMED)
    check = ExportCheck(ok=False, first=first, last=last, checkpoint_size=size)
    try:
        verify_signed(envelope, trusted=public_key)
        if signed["type"] != CHECKPOINT_TYPE or not 1 <= first <= last <= size:
            raise DecryptionError("checkpoint does not cover the range")
    except DecryptionError:
        return check.model_copy(update={"reason": ExportProblem.CHECKPOINT_SIGNATURE})
    # 2. The entries themselves.
    try:
        found = _check_entries(entries, first)
    except (KeyError, TypeError, ValueError):
        return check.model_copy(update={"reason": ExportProblem.MALFORMED})
    if found is not None:
        return check.model_copy(
            update={"reason": found[0], "first_bad_seq": found[1], "entries": found[1] - first}
        )
    # 3. The signed Merkle root (and head) over the whole checkpointed log.
    leaves = [leaf_hash(bytes.fromhex(e["entry_hash"])) for e in entries]
    try:
        rebuilt = root_from_range(size=size, start=first - 1, leaves=leaves, proof=proof).hex()
    except ValueError:
        rebuilt = ""
    done = {"entries": len(entries)}
    if rebuilt != root:
        return check.model_copy(update={**done, "reason": ExportProblem.ROOT_MISMATCH})
    if last == size and entries[-1]["entry_hash"] != head:
        return check.model_copy(update={**done, "reason": ExportProblem.HEAD_MISMATCH})
    return check.model_copy(update={**done, "ok": True})
