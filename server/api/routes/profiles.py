"""Profile routes: consent-checked uploads (one subject or a batch) and purpose-bound reads."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query

from models import (
    IDEMPOTENCY_HEADER,
    PSEUDONYM_REGEX,
    BatchUploadRequest,
    BatchUploadResponse,
    ProfileRead,
    ProfileUpload,
    UploadResult,
)

from ...crud.upload import upload_profile, upload_profiles
from ...profiles.read import read_profile
from ..batch import batch_response
from ..deps import (
    AuditDep,
    CatalogueDep,
    ClockDep,
    EdgePrincipal,
    MasterKeysDep,
    ReaderPrincipal,
    SessionDep,
)

router = APIRouter(tags=["profiles"])

SubjectPath = Annotated[
    str, Path(pattern=PSEUDONYM_REGEX, description="the subject's pseudonym (ps_ + 64 hex)")
]
IdempotencyKey = Annotated[
    str,
    Header(
        alias=IDEMPOTENCY_HEADER,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="client-chosen key; a retry with the same key and body is answered once",
    ),
]


@router.put("/subjects/{subject}/profile")
def put_profile(
    subject: SubjectPath,
    upload: ProfileUpload,
    idempotency_key: IdempotencyKey,
    session: SessionDep,
    principal: EdgePrincipal,
    catalogue: CatalogueDep,
    audit: AuditDep,
    clock: ClockDep,
    master_keys: MasterKeysDep,
) -> UploadResult:
    """Store catalogued, consented fields for one subject; all or nothing.

    Any refused field yields 403 ``consent_refused`` listing every refusal, and nothing is
    stored. Audited as ``profile.write`` (accepted, refused, replayed or conflict).
    """
    return upload_profile(
        session=session,
        subject=subject,
        upload=upload,
        principal=principal,
        idempotency_key=idempotency_key,
        catalogue=catalogue,
        audit=audit,
        at=clock(),
        master_keys=master_keys,
    )


@router.post("/profile-uploads")
def post_profile_uploads(
    batch: BatchUploadRequest,
    session: SessionDep,
    principal: EdgePrincipal,
    catalogue: CatalogueDep,
    audit: AuditDep,
    clock: ClockDep,
    master_keys: MasterKeysDep,
) -> BatchUploadResponse:
    """Store up to 500 subjects' uploads in one transaction; each item stands alone.

    Every item gets what ``PUT /subjects/{subject}/profile`` with its ``idempotency_key``
    would answer (200 stored or replayed, 403 ``consent_refused``, 409, 422), in request
    order; the request itself is 200. Audited as ``profile.write``, one entry per item.
    """
    outcomes = upload_profiles(
        session=session,
        items=batch.items,
        principal=principal,
        catalogue=catalogue,
        audit=audit,
        at=clock(),
        master_keys=master_keys,
    )
    return batch_response(batch.items, outcomes)


@router.get("/subjects/{subject}/profile")
def get_profile(
    subject: SubjectPath,
    purpose: Annotated[str, Query(min_length=1, max_length=40, description="stated purpose")],
    session: SessionDep,
    principal: ReaderPrincipal,
    catalogue: CatalogueDep,
    audit: AuditDep,
    clock: ClockDep,
    master_keys: MasterKeysDep,
    breakdown: Annotated[
        Literal["channel"] | None,
        Query(description="'channel': list each field's per-edge contributions"),
    ] = None,
) -> ProfileRead:
    """Return the fields the catalogue and the subject's consent allow for ``purpose`` now.

    Each field is merged over the edges that contributed it by the catalogue's rule
    (``merge``); derived tags are recomputed from the merged fields. Unknown purposes give
    422 ``purpose_not_registered`` with the known ones. Audited as ``profile.read``.
    """
    return read_profile(
        session=session,
        subject=subject,
        purpose=purpose,
        principal=principal,
        catalogue=catalogue,
        audit=audit,
        at=clock(),
        master_keys=master_keys,
        breakdown=breakdown == "channel",
    )
