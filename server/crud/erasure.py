"""Erasure of one subject: destroy its data key, delete its rows, unlink its audit entries.

After :func:`erase_subject` commits, no row of any table names the subject; audit entries
keep their salted ``subject_commitment`` (the hash chain still verifies) but lose
``subject_ref`` and ``subject_salt``, so nothing links them to the pseudonym any more. Its
sealed fields are deleted and, more importantly, its data key is destroyed
(crypto-shredding): copies of those ciphertexts elsewhere (replicas, exports of rows, database
backups) cannot be opened by any remaining key once the master key that wrapped the destroyed
key is retired (``server.crud.key_rotation.rotate_master_key``; the receipt names it).

:func:`erase_subject` is the storage step only. :func:`erase_with_evidence` builds on it for
the data-subject-request workflow (``server.crud.dsr``): it also writes a tombstone (a salted
hash of the pseudonym, so a stale edge cannot re-create the subject), a feed event that
tells every edge to delete the subject (by the same salted hash), audit entries that name no
one (``subject.erase``, ``key.destroy``) and returns the erasure receipt signed with the
server's Ed25519 key (:func:`verify_erasure_receipt` checks it offline).
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, Table, delete, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel

from consent import SubjectEventKind
from privacy import SigningKey, VerifyKey, verify_signed

from ..audit.append import lock_chain
from ..audit.events import AuditAction, AuditOutcome
from ..audit.log import subject_commitment
from ..audit.record import AuditRecord
from ..audit.sink import AuditSink
from ..tables.audit_entry import AuditEntry
from ..tables.subject import Subject
from ..tables.subject_key import SubjectKey
from ..tables.upload_receipt import UploadReceipt
from .subject_events import append_subject_event
from .subject_keys import KeyDestruction, destroy_subject_key
from .tombstone import write_tombstone

logger = logging.getLogger(__name__)

_AUDIT = AuditEntry.metadata.tables[AuditEntry.__tablename__]
_SUBJECT = Subject.metadata.tables[Subject.__tablename__]
_RECEIPT = UploadReceipt.metadata.tables[UploadReceipt.__tablename__]
#: ``type`` member of a signed erasure receipt document.
RECEIPT_TYPE = "fedprofile.erasure_receipt"


@dataclass(frozen=True)
class ErasureReceipt:
    """What an erasure did, without naming the subject.

    Parameters
    ----------
    receipt_id : str
        Random id of this erasure (32 hex digits).
    erased_at : datetime
        When it ran.
    subject_commitment : str
        ``sha256(salt || pseudonym)`` hex: whoever knows the pseudonym can check that the
        receipt is about it; nobody else learns it.
    commitment_salt : str
        The salt (32 hex digits, fresh per receipt).
    subject_found : bool
        Whether the server held a subject row.
    deleted : Mapping[str, int]
        Rows deleted per table (tables with none are listed with 0).
    audit_entries_unlinked : int
        Audit entries whose ``subject_ref`` and ``subject_salt`` were nulled.
    key_destruction : KeyDestruction or None
        Evidence of the destroyed data key; None if the subject had no sensitive fields.
    """

    receipt_id: str
    erased_at: datetime
    subject_commitment: str
    commitment_salt: str
    subject_found: bool
    deleted: Mapping[str, int] = field(default_factory=dict)
    audit_entries_unlinked: int = 0
    key_destruction: KeyDestruction | None = None

    @property
    def backups_pending_master_kid(self) -> str | None:
        """Master key to retire before backups taken earlier are shredded too (or None)."""
        return None if self.key_destruction is None else self.key_destruction.master_kid


def subject_tables() -> list[Table]:
    """Return every table with a foreign key to ``subject.pseudonym``, dependents first.

    Discovered from the registered metadata, so a new table that references subjects is
    erased without changing this module (``subject_key`` included).

    Returns
    -------
    list[Table]
        The tables, in reverse dependency order (safe deletion order).
    """
    found = []
    for table in reversed(SQLModel.metadata.sorted_tables):
        if any(fk.column.table is _SUBJECT for fk in table.foreign_keys):
            found.append(table)
    return found


#: Tables whose loose ``subject`` column is nulled, not deleted, by erasure (the record of a
#: request must outlive its subject: PIPL Art. 54 audits, the erasure receipt).
UNLINK_ONLY = frozenset({"data_subject_request"})
#: Tables whose subject columns are handled explicitly (audit entries keep a commitment).
_EXPLICIT = frozenset({"audit_entry", "subject"})


def loose_subject_columns() -> list[tuple[Table, Column[Any]]]:
    """Return ``(table, column)`` for every column named ``subject`` without a foreign key.

    Discovered from the registered metadata, like :func:`subject_tables`, so a later table
    that stores a pseudonym in a plain ``subject`` column is covered by erasure too.

    Returns
    -------
    list[tuple[Table, Column]]
        The tables and their loose subject column, in metadata order.
    """
    found = []
    for table in SQLModel.metadata.sorted_tables:
        if table.name in _EXPLICIT or "subject" not in table.c:
            continue
        column = table.c["subject"]
        if not any(fk.column.table is _SUBJECT for fk in column.foreign_keys):
            found.append((table, column))
    return found


def _aliases_of(connection: Connection, subject: str) -> list[str]:
    """Earlier pseudonyms recorded for ``subject`` (``subject_alias``, when registered)."""
    table = SQLModel.metadata.tables.get("subject_alias")
    if table is None or "old_pseudonym" not in table.c:
        return []
    rows = connection.execute(sa_select(table.c.old_pseudonym).where(table.c.subject == subject))
    return [str(r[0]) for r in rows]


def erase_subject(*, session: Session, subject: str, at: datetime) -> ErasureReceipt:
    """Erase a subject from the server's database (no commit).

    Steps, in the audit chain's lock (no upload or consent write interleaves):

    1. destroy the subject's wrapped data key (``subject_key``);
    2. delete its rows from every table referencing ``subject`` (profile fields, consent
       records, and any later table with such a foreign key);
    3. delete the upload receipts whose stored answer names it;
    4. null ``subject_ref`` and ``subject_salt`` of its audit entries (commitments stay);
       null the ``subject`` of its data-subject requests and delete its rows from any other
       table with a plain ``subject`` column (:func:`loose_subject_columns`);
    5. delete the subject row.

    Parameters
    ----------
    session : Session
        A session; the caller commits (with its own audit entry, in the same transaction).
    subject : str
        The pseudonym to erase (validated by the caller).
    at : datetime
        The erasure time.

    Returns
    -------
    ErasureReceipt
        Counts and key-destruction evidence; it does not contain the pseudonym.
    """
    lock_chain(session=session)
    connection = session.connection()
    # 0. Earlier pseudonyms of the subject (tenant key rotations): the audit log still
    #    names them, so they are unlinked with the current one.
    refs = [subject, *_aliases_of(connection, subject)]
    # 1. Crypto-shredding: the data key goes first.
    destroyed = destroy_subject_key(session=session, subject=subject)
    deleted: dict[str, int] = {SubjectKey.__tablename__: 0 if destroyed is None else 1}
    # 2. Every table with a foreign key to the subject.
    for table in subject_tables():
        if table.name == SubjectKey.__tablename__:
            continue
        columns = [fk.parent for fk in table.foreign_keys if fk.column.table is _SUBJECT]
        removed = 0
        for column in columns:
            removed += connection.execute(delete(table).where(column == subject)).rowcount
        deleted[table.name] = removed
    # 3. Idempotency receipts: their stored answer names the subject.
    deleted[_RECEIPT.name] = connection.execute(
        delete(_RECEIPT).where(_RECEIPT.c.response_json.contains(subject, autoescape=True))
    ).rowcount
    # 4. Audit entries: keep the hashed commitment, drop what links it to the pseudonym.
    unlinked = connection.execute(
        update(_AUDIT)
        .where(_AUDIT.c.subject_ref.in_(refs))
        .values(subject_ref=None, subject_salt=None)
    ).rowcount
    # 4b. Tables naming subjects without a foreign key (requests must outlive the subject:
    #     their column is nulled; rows of any other such table are deleted).
    for table, column in loose_subject_columns():
        if table.name in UNLINK_ONLY:
            unlinked_rows = connection.execute(
                update(table).where(column == subject).values({column.name: None})
            ).rowcount
            deleted[f"{table.name} (unlinked)"] = unlinked_rows
        else:
            deleted[table.name] = connection.execute(
                delete(table).where(column == subject)
            ).rowcount
    # 5. The subject itself.
    found = connection.execute(delete(_SUBJECT).where(_SUBJECT.c.pseudonym == subject)).rowcount
    deleted[_SUBJECT.name] = found
    salt = secrets.token_hex(16)
    receipt = ErasureReceipt(
        receipt_id=uuid.uuid4().hex,
        erased_at=at,
        subject_commitment=subject_commitment(salt, subject),
        commitment_salt=salt,
        subject_found=found > 0,
        deleted=dict(sorted(deleted.items())),
        audit_entries_unlinked=unlinked,
        key_destruction=destroyed,
    )
    logger.info(
        "erased a subject (receipt %s): %d row(s) deleted, %d audit entr(ies) unlinked, "
        "data key %s",
        receipt.receipt_id,
        sum(deleted.values()),
        unlinked,
        "destroyed" if destroyed is not None else "absent",
    )
    return receipt


# ------------------------------------------------------------------ erasure with evidence


@dataclass(frozen=True)
class SignedErasure:
    """The outcome of :func:`erase_with_evidence`.

    Parameters
    ----------
    receipt : ErasureReceipt
        What the storage step did.
    envelope : dict[str, Any]
        The signed receipt (``SigningKey.signed`` of :func:`receipt_document`).
    """

    receipt: ErasureReceipt
    envelope: dict[str, Any]


def receipt_document(receipt: ErasureReceipt, *, request_id: str | None) -> dict[str, Any]:
    """Return the erasure receipt as the JSON document that is signed.

    Parameters
    ----------
    receipt : ErasureReceipt
        What the erasure did.
    request_id : str or None
        The data-subject request it completes.

    Returns
    -------
    dict[str, Any]
        Receipt and request ids, time, the salted subject commitment and how to recompute
        it, rows erased per table, audit entries unlinked, the destroyed key and the master
        key to retire; never the pseudonym.
    """
    destroyed = receipt.key_destruction
    return {
        "type": RECEIPT_TYPE,
        "version": 1,
        "receipt_id": receipt.receipt_id,
        "request_id": request_id,
        "erased_at": receipt.erased_at.astimezone(UTC).isoformat(),
        "subject_commitment": receipt.subject_commitment,
        "commitment_salt": receipt.commitment_salt,
        "commitment_scheme": "sha256(bytes.fromhex(commitment_salt) || pseudonym)",
        "subject_found": receipt.subject_found,
        "rows_erased": dict(receipt.deleted),
        "audit_entries_unlinked": receipt.audit_entries_unlinked,
        "key_destroyed": None
        if destroyed is None
        else {
            "master_kid": destroyed.master_kid,
            "key_version": destroyed.key_version,
            "wrapped_key_sha256": destroyed.wrapped_key_sha256,
        },
        "master_key_to_retire": receipt.backups_pending_master_kid,
        "tombstoned": True,
        "edges_notified": True,
    }


def verify_erasure_receipt(
    envelope: dict[str, Any], *, trusted: VerifyKey | None = None, subject: str | None = None
) -> dict[str, Any]:
    """Check a signed erasure receipt offline; optionally that it is about ``subject``.

    Parameters
    ----------
    envelope : dict[str, Any]
        The signed receipt.
    trusted : VerifyKey or None
        The server's public key (``GET /api/v1/signing-key``, pinned out of band); ``None``
        trusts the envelope's own key (integrity only).
    subject : str or None
        A pseudonym the receipt must be about.

    Returns
    -------
    dict[str, Any]
        The verified document.

    Raises
    ------
    DecryptionError
        If the signature does not verify (opaque).
    ValueError
        If the document is not an erasure receipt, or is about another subject.
    """
    verify_signed(envelope, trusted=trusted)
    document: dict[str, Any] = envelope["document"]
    if document.get("type") != RECEIPT_TYPE:
        raise ValueError("the signed document is not an erasure receipt")
    if subject is not None:
        salt, commitment = document["commitment_salt"], document["subject_commitment"]
        if subject_commitment(str(salt), subject) != commitment:
            raise ValueError("the erasure receipt is about another subject")
    return document


def erase_with_evidence(
    *,
    session: Session,
    subject: str,
    request_id: str | None,
    actor: str,
    role: str,
    audit: AuditSink,
    signing_key: SigningKey,
    at: datetime,
) -> SignedErasure:
    """Erase a subject, tombstone it, tell the edges, audit and sign the receipt (no commit).

    Steps, in the audit chain's lock:

    1. :func:`erase_subject` (key destroyed first, every referencing row, audit unlinking);
    2. a tombstone ``sha256(salt || pseudonym)`` under the deployment salt;
    3. an ``erasure`` feed event carrying the same salted hash (never the pseudonym);
    4. ``subject.erase`` and, when a key was destroyed, ``key.destroy`` audit entries with
       no subject (they hold the receipt's salted commitment and counts);
    5. the receipt document signed with ``signing_key``.

    Parameters
    ----------
    session : Session
        Session of the enclosing request; the caller commits.
    subject : str
        The pseudonym to erase.
    request_id : str or None
        The data-subject request being executed.
    actor, role : str
        Who executes it (audit).
    audit : AuditSink
        Receives the entries.
    signing_key : SigningKey
        The server's evidence key.
    at : datetime
        Erasure time.

    Returns
    -------
    SignedErasure
        The receipt and its signed envelope.
    """
    lock_chain(session=session)
    receipt = erase_subject(session=session, subject=subject, at=at)
    salt, digest = write_tombstone(
        session=session, subject=subject, receipt_id=receipt.receipt_id, at=at
    )
    append_subject_event(
        session=session,
        kind=SubjectEventKind.ERASURE,
        at=at,
        subject_hash=digest,
        hash_salt=salt,
        request_id=request_id,
    )
    document = receipt_document(receipt, request_id=request_id)
    records = [
        AuditRecord(
            actor=actor,
            role=role,
            action=AuditAction.SUBJECT_ERASE,
            purpose=None,
            subject=None,
            outcome=AuditOutcome.ACCEPTED,
            detail={
                "request_id": request_id,
                "receipt_id": receipt.receipt_id,
                "subject_commitment": receipt.subject_commitment,
                "rows_erased": dict(receipt.deleted),
                "audit_entries_unlinked": receipt.audit_entries_unlinked,
            },
            at=at,
        )
    ]
    if receipt.key_destruction is not None:
        records.append(
            AuditRecord(
                actor=actor,
                role=role,
                action=AuditAction.KEY_DESTROY,
                purpose=None,
                subject=None,
                outcome=AuditOutcome.ACCEPTED,
                detail={"receipt_id": receipt.receipt_id, **document["key_destroyed"]},
                at=at,
            )
        )
    audit.record_many(records)
    return SignedErasure(receipt=receipt, envelope=signing_key.signed(document))
