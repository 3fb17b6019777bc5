"""Profile uploads, one or a batch: every field checked against catalogue and consent.

One code path serves ``PUT /subjects/{subject}/profile`` (a batch of one, errors raised) and
``POST /profile-uploads`` (up to 500 items, one outcome each). Each item is all-or-nothing:
if any field is refused (not catalogued, purpose not allowed for the field, wrong value
shape, no consent now, missing separate consent for a sensitive field) nothing of that item
is stored and every refusal is reported. Items are independent: they are decided one by one
in memory against state loaded up front, so a refused item never blocks another. Each item
leaves exactly one audit entry, whatever its outcome; idempotency keys are scoped per edge,
so the same key through either route is the same upload.

A batch is one transaction: take the audit chain's lock, load receipts, consent, subjects and
fields of the whole batch (four queries), decide every item, write the accepted ones and
append all audit entries with one head reservation, commit. Sensitive fields are sealed
under their subject's data key (one more query when the batch holds any); without a master key
ring an accepted sensitive field raises instead of being stored in plain text.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from consent import (
    ConsentError,
    FieldCatalogue,
    Purpose,
    PurposeNotRegisteredError,
    Sensitivity,
    parse_purpose,
)
from models import ProfileUpload, UploadResult
from privacy import MasterKeyRing

from ..audit.append import lock_chain
from ..audit.events import AuditAction, AuditOutcome
from ..audit.record import AuditRecord
from ..audit.sink import AuditSink
from ..errors import (
    ConsentRefusedError,
    FieldValueRefusedError,
    IdempotencyConflictError,
    ServerError,
)
from ..principal import Principal
from .edge import touch_edge
from .idempotency import request_hash
from .profile_check import VALUE_REASONS, audit_name, check_fields
from .restriction import UploadGates
from .upload_state import UploadBatchState

logger = logging.getLogger(__name__)


class UploadItem(Protocol):
    """One subject's upload with its idempotency key (``models.BatchUploadItem`` is one)."""

    @property
    def subject(self) -> str:
        """The pseudonym (validated by the wire record or the route)."""
        ...

    @property
    def idempotency_key(self) -> str:
        """The client-chosen key, scoped per edge."""
        ...

    @property
    def upload(self) -> ProfileUpload:
        """Purpose and fields."""
        ...


@dataclass(frozen=True)
class SingleUpload:
    """An :class:`UploadItem` built from the single route's path, header and body.

    Parameters
    ----------
    subject : str
        The pseudonym.
    idempotency_key : str
        The ``Idempotency-Key`` header.
    upload : ProfileUpload
        The body.
    """

    subject: str
    idempotency_key: str
    upload: ProfileUpload


@dataclass(frozen=True)
class UploadOutcome:
    """What became of one item: a result, or the error the single route would raise.

    Parameters
    ----------
    result : UploadResult or None
        Stored fields (``replayed=True`` for a known key with the same body).
    error : ServerError or ConsentError or None
        ``ConsentRefusedError`` (refused fields, nothing stored), ``IdempotencyConflictError``
        or ``PurposeNotRegisteredError``.
    """

    result: UploadResult | None = None
    error: ServerError | ConsentError | None = None

    def unwrap(self) -> UploadResult:
        """Return the result, or raise the error.

        Returns
        -------
        UploadResult
            The result.

        Raises
        ------
        ServerError, ConsentError
            The item's error.
        """
        if self.error is not None:
            raise self.error
        if self.result is None:
            raise ValueError("an UploadOutcome needs a result or an error")
        return self.result


@dataclass(frozen=True)
class _Context:
    """What every item of one batch shares."""

    state: UploadBatchState
    principal: Principal
    edge_id: str
    catalogue: FieldCatalogue
    at: datetime
    gates: UploadGates


def _renewed_after_erasure(ctx: _Context, subject: str) -> bool:
    """Whether the server holds a consent event of an erased subject newer than its erasure."""
    erased_at = ctx.gates.erased.get(subject)
    if erased_at is None:
        return False
    return any(e.occurred_at > erased_at for e in ctx.state.consent(subject).events)


def _entry(
    ctx: _Context,
    item: UploadItem,
    purpose: Purpose | None,
    outcome: AuditOutcome,
    detail: dict[str, object],
) -> AuditRecord:
    """Build the item's ``profile.write`` audit record."""
    return AuditRecord(
        actor=ctx.principal.actor,
        role=ctx.principal.role.value,
        action=AuditAction.PROFILE_WRITE,
        purpose=None if purpose is None else purpose.value,
        subject=item.subject,
        outcome=outcome,
        detail={"edge_id": ctx.edge_id, **detail},
        at=ctx.at,
    )


def _decide(ctx: _Context, item: UploadItem) -> tuple[UploadOutcome, AuditRecord]:
    """Decide one item against the batch state (applying it when accepted)."""
    fields = item.upload.fields
    # 1. An unknown purpose: the item is malformed (422); nothing else is looked at.
    try:
        purpose = parse_purpose(item.upload.purpose)
    except PurposeNotRegisteredError as exc:
        detail: dict[str, object] = {"fields": len(fields), "reason": "purpose_not_registered"}
        return UploadOutcome(error=exc), _entry(ctx, item, None, AuditOutcome.REFUSED, detail)
    # 2. A known key: replay the stored answer or refuse a different body.
    digest = request_hash({"subject": item.subject, "upload": item.upload.model_dump(mode="json")})
    receipt = ctx.state.receipt(item.idempotency_key)
    if receipt is not None and receipt.request_hash != digest:
        error = IdempotencyConflictError()
        return UploadOutcome(error=error), _entry(ctx, item, purpose, AuditOutcome.CONFLICT, {})
    if receipt is not None:
        stored = UploadResult.model_validate_json(receipt.response_json)
        replayed = stored.model_copy(update={"replayed": True})
        record = _entry(ctx, item, purpose, AuditOutcome.REPLAYED, {"stored": stored.stored})
        return UploadOutcome(result=replayed), record
    # 3. Restricted or erased subjects, suppressed fields (rectified or deleted): refused.
    refusals = ctx.gates.refusals(
        subject=item.subject,
        fields=[f.name for f in fields],
        renewed_after_erasure=_renewed_after_erasure(ctx, item.subject),
    )
    # 4. Check every field against catalogue, value shape and consent now.
    refusals = refusals or check_fields(
        catalogue=ctx.catalogue,
        consent=ctx.state.consent(item.subject),
        fields=fields,
        purpose=purpose,
        at=ctx.at,
    )
    if refusals:
        listed = [
            {"field": audit_name(r.field, ctx.catalogue), "reason": r.reason} for r in refusals
        ]
        malformed = any(r.reason in VALUE_REASONS for r in refusals)
        refused = (FieldValueRefusedError if malformed else ConsentRefusedError)(
            refused=refusals, total=len(fields)
        )
        detail = {"fields": len(fields), "refused": listed}
        return UploadOutcome(error=refused), _entry(
            ctx, item, purpose, AuditOutcome.REFUSED, detail
        )
    # 5. Accept: fields, subject and receipt join the batch's pending writes.
    names = ctx.state.store(
        subject=item.subject,
        fields=fields,
        purpose=purpose,
        channel=ctx.principal.channel,
        at=ctx.at,
        replace=item.upload.replace,
    )
    result = UploadResult(subject=item.subject, purpose=purpose.value, stored=names)
    ctx.state.add_receipt(
        key=item.idempotency_key,
        digest=digest,
        response_json=result.model_dump_json(),
        at=ctx.at,
    )
    return UploadOutcome(result=result), _entry(
        ctx, item, purpose, AuditOutcome.ACCEPTED, {"stored": names}
    )


def upload_profiles(
    *,
    session: Session,
    items: Sequence[UploadItem],
    principal: Principal,
    catalogue: FieldCatalogue,
    audit: AuditSink,
    at: datetime,
    master_keys: MasterKeyRing | None = None,
) -> list[UploadOutcome]:
    """Decide and store a batch of an edge's uploads in one transaction; commits.

    Parameters
    ----------
    session : Session
        A session.
    items : Sequence[UploadItem]
        The uploads, in order; a later item sees what an earlier one stored (a repeated key
        replays or conflicts as a second request would).
    principal : Principal
        The uploading edge.
    catalogue : FieldCatalogue
        The catalogue in force.
    audit : AuditSink
        Receives one ``profile.write`` entry per item, in item order, as one append.
    at : datetime
        The moment of the write (consent is evaluated at it).
    master_keys : MasterKeyRing or None
        The master key ring that wraps subjects' data keys; required when an accepted item
        holds a sensitive field.

    Returns
    -------
    list[UploadOutcome]
        One outcome per item, in item order.

    Raises
    ------
    ValueError
        If ``principal`` is not an edge, or a sensitive field is accepted and
        ``master_keys`` is None (nothing is stored).
    """
    edge_id = principal.require_edge_id()
    if not items:
        return []
    # 1. Serialise with every other audited writer, then load the batch's rows.
    lock_chain(session=session)
    state = UploadBatchState.load(
        session=session,
        edge_id=edge_id,
        subjects=[i.subject for i in items],
        keys=[i.idempotency_key for i in items],
        master_keys=master_keys,
        sensitive=[f.name for f in catalogue.fields if f.sensitivity is Sensitivity.SENSITIVE],
    )
    # 2. Decide every item in order, in memory.
    gates = UploadGates.load(session=session, subjects=[i.subject for i in items])
    ctx = _Context(
        state=state,
        principal=principal,
        edge_id=edge_id,
        catalogue=catalogue,
        at=at,
        gates=gates,
    )
    decided = [_decide(ctx, item) for item in items]
    outcomes = [outcome for outcome, _ in decided]
    # 3. Write accepted items, the edge's last-seen time and every audit entry; commit.
    counts = Counter(record.outcome for _, record in decided)
    state.flush()
    if counts[AuditOutcome.ACCEPTED]:
        touch_edge(session=session, edge_id=edge_id, at=at)
    audit.record_many([record for _, record in decided])
    session.commit()
    logger.info(
        "profile uploads: %d item(s): %d accepted, %d replayed, %d refused, %d conflict",
        len(items),
        counts[AuditOutcome.ACCEPTED],
        counts[AuditOutcome.REPLAYED],
        counts[AuditOutcome.REFUSED],
        counts[AuditOutcome.CONFLICT],
    )
    return outcomes


def upload_profile(
    *,
    session: Session,
    subject: str,
    upload: ProfileUpload,
    principal: Principal,
    idempotency_key: str,
    catalogue: FieldCatalogue,
    audit: AuditSink,
    at: datetime,
    master_keys: MasterKeyRing | None = None,
) -> UploadResult:
    """Store an edge's upload for one subject, or refuse all of it; commits.

    The batch path with one item (:func:`upload_profiles`), its error raised.

    Parameters
    ----------
    session : Session
        A session.
    subject : str
        The pseudonym (validated by the route).
    upload : ProfileUpload
        Purpose and fields.
    principal : Principal
        The uploading edge.
    idempotency_key : str
        The request's ``Idempotency-Key``.
    catalogue : FieldCatalogue
        The catalogue in force.
    audit : AuditSink
        Receives one entry.
    at : datetime
        The moment of the write (consent is evaluated now).
    master_keys : MasterKeyRing or None
        The master key ring; required to store a sensitive field.

    Returns
    -------
    UploadResult
        Stored field names; ``replayed=True`` when the key was seen with the same body.

    Raises
    ------
    PurposeNotRegisteredError
        If the purpose is unknown (audited as ``refused``; nothing stored).
    ConsentRefusedError
        If any field is refused; nothing is stored.
    IdempotencyConflictError
        If the key was used before with a different request.
    ValueError
        If a sensitive field is accepted and ``master_keys`` is None (nothing is stored).
    """
    item = SingleUpload(subject=subject, idempotency_key=idempotency_key, upload=upload)
    (outcome,) = upload_profiles(
        session=session,
        items=[item],
        principal=principal,
        catalogue=catalogue,
        audit=audit,
        at=at,
        master_keys=master_keys,
    )
    return outcome.unwrap()
