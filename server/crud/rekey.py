"""Re-keying: rename a subject's rows to its new pseudonym after a tenant key rotation.

An edge that rotated its tenant key (``privacy.TenantKeyChain``) uploads ``old -> new``
pseudonym pairs in batches (``models.RekeyBatch``). The server never sees a tenant key or an
identifier. :func:`apply_rekey_batch` applies one batch in one transaction, under the audit
chain's lock:

1. classify each pair: ``old`` held and ``new`` free -> rename; ``new`` held and ``old``
   already aliased to it -> already applied (a retry, or another edge's identical mapping);
   neither held -> unknown; ``new`` held for another subject, or ``old`` aliased earlier to
   another pseudonym -> conflict, and the whole batch is refused (nothing written);
2. create the new subject rows; move each data key to the new pseudonym and re-seal the
   subject's sealed fields (their associated data names the pseudonym);
3. rename every column holding a pseudonym, found by walking ``SQLModel.metadata`` (a
   foreign key to ``subject.pseudonym``, or a string column named ``subject``), so tables
   added later are covered (``server.crud.rekey_rows``); consent records get their event
   hash recomputed, stored upload answers are rewritten;
4. delete the old subject rows and record aliases ``old -> new`` (``subject_alias``);
   tombstones of erased old pseudonyms are carried to the new ones;
5. audit: one ``subject.alias`` entry per renamed subject (new pseudonym as subject, a salted
   commitment of the old one in detail) and one ``tenant.rekey`` entry for the batch.

The audit log is never rewritten: earlier entries keep the old pseudonym; the alias row and
the ``subject.alias`` entry keep that history linkable.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, insert, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from consent import erasure_hash
from models import RekeyBatch, RekeyBatchResult
from privacy import MasterKeyRing

from ..audit.append import lock_chain
from ..audit.entry_hash import subject_commitment
from ..audit.events import AuditAction, AuditOutcome
from ..audit.record import AuditRecord
from ..audit.sink import AuditSink
from ..errors import ConflictError
from ..principal import Principal
from ..tables.audit_entry import AuditEntry
from ..tables.subject import Subject
from ..tables.subject_alias import SubjectAlias
from ..tables.tombstone import SALT_ID, ErasureSalt, SubjectTombstone
from .rekey_rows import (
    chunks,
    create_subjects,
    move_keys,
    rehash_consents,
    rename_columns,
    rewrite_receipts,
)

logger = logging.getLogger(__name__)

_SUBJECT = Subject.metadata.tables[Subject.__tablename__]
_AUDIT = AuditEntry.metadata.tables[AuditEntry.__tablename__]
_ALIAS = SubjectAlias.metadata.tables[SubjectAlias.__tablename__]
_TOMBSTONE = SubjectTombstone.metadata.tables[SubjectTombstone.__tablename__]
_SALT = ErasureSalt.metadata.tables[ErasureSalt.__tablename__]
#: Conflicting old pseudonyms named in a refusal message.
_SHOWN = 3


@dataclass
class _Plan:
    """How a batch's pairs were classified."""

    rename: dict[str, str] = field(default_factory=dict)
    already: int = 0
    unknown: dict[str, str] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)


def _held(session: Session, pseudonyms: Sequence[str]) -> set[str]:
    """Return which pseudonyms have a subject row."""
    held: set[str] = set()
    for chunk in chunks(sorted(set(pseudonyms))):
        query = sa_select(_SUBJECT.c.pseudonym).where(_SUBJECT.c.pseudonym.in_(chunk))
        held.update(str(r[0]) for r in session.connection().execute(query))
    return held


def _aliases(session: Session, olds: Sequence[str]) -> dict[str, str]:
    """Return the current pseudonym each already-aliased old pseudonym maps to."""
    found: dict[str, str] = {}
    for chunk in chunks(sorted(olds)):
        query = sa_select(_ALIAS.c.old_pseudonym, _ALIAS.c.subject).where(
            _ALIAS.c.old_pseudonym.in_(chunk)
        )
        found.update((str(o), str(s)) for o, s in session.connection().execute(query))
    return found


def _classify(session: Session, pairs: Mapping[str, str]) -> _Plan:
    """Sort the pairs into renames, repeats, unknowns and conflicts (reads only)."""
    held = _held(session, [*pairs, *pairs.values()])
    aliased = _aliases(session, list(pairs))
    plan = _Plan()
    for old, new in pairs.items():
        if old in held and new in held:
            plan.conflicts.append(old)  # the new pseudonym is another subject's already
        elif old in held:
            plan.rename[old] = new
        elif aliased.get(old) == new:
            plan.already += 1
        elif old in aliased:
            plan.conflicts.append(old)  # mapped earlier to another pseudonym (another key)
        else:
            plan.unknown[old] = new
    return plan


def _carry_tombstones(session: Session, unknown: Mapping[str, str]) -> int:
    """Tombstone the new pseudonym of each erased old one; return tombstones written."""
    connection = session.connection()
    row = connection.execute(sa_select(_SALT.c.salt).where(_SALT.c.id == SALT_ID)).first()
    if row is None or not unknown:
        return 0
    salt = str(row[0])
    hashes = {erasure_hash(salt, old): new for old, new in unknown.items()}
    written = 0
    for chunk in chunks(sorted(hashes)):
        query = sa_select(_TOMBSTONE).where(_TOMBSTONE.c.subject_hash.in_(chunk))
        for stone in connection.execute(query).all():
            digest = erasure_hash(salt, hashes[str(stone.subject_hash)])
            connection.execute(delete(_TOMBSTONE).where(_TOMBSTONE.c.subject_hash == digest))
            connection.execute(
                insert(_TOMBSTONE).values(
                    subject_hash=digest, erased_at=stone.erased_at, receipt_id=stone.receipt_id
                )
            )
            written += 1
    return written


def _audit_records(
    *, plan: _Plan, batch: RekeyBatch, principal: Principal, tombstoned: int, at: datetime
) -> list[AuditRecord]:
    """One ``subject.alias`` entry per renamed subject and one ``tenant.rekey`` entry."""
    kids = {"from_kid": batch.from_kid, "to_kid": batch.to_kid}
    records: list[AuditRecord] = []
    for old, new in sorted(plan.rename.items(), key=lambda pair: pair[1]):
        salt = secrets.token_hex(16)
        records.append(
            AuditRecord(
                actor=principal.actor, role=principal.role.value,
                action=AuditAction.SUBJECT_ALIAS, purpose=None, subject=new,
                outcome=AuditOutcome.ACCEPTED,
                detail={**kids, "previous_commitment": subject_commitment(salt, old),
                        "previous_salt": salt},
                at=at,
            )
        )  # fmt: skip
    records.append(
        AuditRecord(
            actor=principal.actor, role=principal.role.value, action=AuditAction.TENANT_REKEY,
            purpose=None, subject=None, outcome=AuditOutcome.ACCEPTED,
            detail={**kids, "pairs": len(batch.pairs), "applied": len(plan.rename),
                    "already_applied": plan.already, "unknown": len(plan.unknown),
                    "tombstoned": tombstoned},
            at=at,
        )
    )  # fmt: skip
    return records


def apply_rekey_batch(
    *,
    session: Session,
    batch: RekeyBatch,
    principal: Principal,
    audit: AuditSink,
    master_keys: MasterKeyRing,
    at: datetime,
) -> RekeyBatchResult:
    """Apply one batch of an edge's ``old -> new`` pseudonym mapping; commits.

    Idempotent: a batch sent again (or the same pairs from another edge of the tenant)
    reports its pairs as ``already_applied`` and changes nothing but the audit log.

    Parameters
    ----------
    session : Session
        The request's session; the batch is one transaction.
    batch : RekeyBatch
        Key ids and pairs (validated: distinct, no pseudonym both old and new).
    principal : Principal
        The calling edge.
    audit : AuditSink
        Receives the ``subject.alias`` and ``tenant.rekey`` entries (same transaction).
    master_keys : MasterKeyRing
        Unwraps and re-wraps the data keys of subjects with sealed fields.
    at : datetime
        When the batch is applied.

    Returns
    -------
    RekeyBatchResult
        Counts of pairs applied, already applied, unknown, tombstones carried, rows renamed
        per table.

    Raises
    ------
    ConflictError
        If a new pseudonym is already held by another subject, or an old one was mapped
        earlier to another pseudonym (an edge with another key chain); nothing is written.
    ValueError
        If ``principal`` is not an edge.
    DecryptionError
        If a data key or sealed field cannot be opened (opaque; nothing is written).
    """
    principal.require_edge_id()
    pairs = {pair.old: pair.new for pair in batch.pairs}
    try:
        lock_chain(session=session)
        # 1. classify (reads only)
        plan = _classify(session, pairs)
        if plan.conflicts:
            shown = ", ".join(sorted(plan.conflicts)[:_SHOWN])
            raise ConflictError(
                f"{len(plan.conflicts)} pair(s) conflict: the new pseudonym is held by another "
                f"subject or the old one was mapped to another pseudonym before (e.g. {shown}); "
                "check that every edge uses the tenant's current key chain; nothing was applied"
            )
        result = _apply(session=session, plan=plan, batch=batch, principal=principal,
                        audit=audit, master_keys=master_keys, at=at)  # fmt: skip
        session.commit()
    except BaseException:
        session.rollback()
        raise
    logger.info(
        "rekey batch from edge %s (%s -> %s): %d renamed, %d already, %d unknown",
        principal.edge_id, batch.from_kid, batch.to_kid,
        result.applied, result.already_applied, result.unknown,
    )  # fmt: skip
    return result


def _apply(
    *,
    session: Session,
    plan: _Plan,
    batch: RekeyBatch,
    principal: Principal,
    audit: AuditSink,
    master_keys: MasterKeyRing,
    at: datetime,
) -> RekeyBatchResult:
    """Run steps 2-5 of :func:`apply_rekey_batch` (no commit)."""
    rename = plan.rename
    counts: dict[str, int] = {}
    resealed = 0
    if rename:
        # 2. new subject rows first (foreign keys), then keys and sealed fields
        create_subjects(session, rename)
        resealed = move_keys(session, rename, master_keys)
        # 3. every pseudonym column; consent hashes; stored upload answers
        counts = rename_columns(session, rename)
        rehash_consents(session, list(rename.values()))
        counts["upload_receipt"] = rewrite_receipts(session, rename)
        # 4. old subject rows go; aliases keep the history linkable
        connection = session.connection()
        for chunk in chunks(sorted(rename)):
            connection.execute(delete(_SUBJECT).where(_SUBJECT.c.pseudonym.in_(chunk)))
        connection.execute(
            insert(_ALIAS),
            [
                {"old_pseudonym": old, "subject": new, "from_kid": batch.from_kid,
                 "to_kid": batch.to_kid, "edge_id": principal.edge_id, "created_at": at}
                for old, new in sorted(rename.items())
            ],
        )  # fmt: skip
        counts[_SUBJECT.name] = len(rename)
    tombstoned = _carry_tombstones(session, plan.unknown)
    # 5. audit, in the same transaction
    audit.record_many(
        _audit_records(plan=plan, batch=batch, principal=principal, tombstoned=tombstoned, at=at)
    )
    return RekeyBatchResult(
        applied=len(rename),
        already_applied=plan.already,
        unknown=len(plan.unknown),
        tombstoned=tombstoned,
        fields_resealed=resealed,
        rows_renamed=dict(sorted(counts.items())),
    )


def aliases_of(*, session: Session, subject: str) -> list[str]:
    """Return the earlier pseudonyms of a subject (from every rotation), sorted.

    Audit entries written before a rotation name these; erasure of ``subject`` should unlink
    them too (the alias rows themselves go with the subject's other rows).

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        The current pseudonym.

    Returns
    -------
    list[str]
        Old pseudonyms, possibly empty.
    """
    rows = session.connection().execute(
        sa_select(_ALIAS.c.old_pseudonym).where(_ALIAS.c.subject == subject)
    )
    return sorted(str(r[0]) for r in rows)


def unlink_alias_audit_refs(*, session: Session, subject: str) -> int:
    """Unlink audit entries naming an earlier pseudonym of ``subject``: null ref and salt.

    For erasure: the audit log keeps entries written before a tenant key rotation under the
    old pseudonym; erasing ``subject`` must unlink those too. Call it before the alias rows
    are deleted with the subject's other rows. Like erasure's own unlinking, it changes no
    hashed column, so the chain still verifies.

    Parameters
    ----------
    session : Session
        Session of the erasure.
    subject : str
        The current pseudonym being erased.

    Returns
    -------
    int
        Audit entries unlinked.
    """
    olds = aliases_of(session=session, subject=subject)
    unlinked = 0
    for chunk in chunks(olds):
        unlinked += (
            session.connection()
            .execute(
                update(_AUDIT)
                .where(_AUDIT.c.subject_ref.in_(chunk))
                .values(subject_ref=None, subject_salt=None)
            )
            .rowcount
        )
    return unlinked
