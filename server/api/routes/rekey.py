"""``POST /edges/me/rekey``: apply one batch of an edge's tenant key rotation mapping."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from models import RekeyBatch, RekeyBatchResult

from ...crud.rekey import apply_rekey_batch
from ...principal import Principal
from ...tables.token import Role
from ..deps import AuditDep, ClockDep, MasterKeysDep, SessionDep, require_role

router = APIRouter(tags=["rekey"])

RekeyingEdge = Annotated[Principal, Depends(require_role(Role.EDGE))]


@router.post("/edges/me/rekey")
def post_rekey(
    batch: RekeyBatch,
    session: SessionDep,
    principal: RekeyingEdge,
    audit: AuditDep,
    master_keys: MasterKeysDep,
    clock: ClockDep,
) -> RekeyBatchResult:
    """Rename the subjects of ``old -> new`` pairs across every table; one transaction.

    Idempotent (pairs applied before count as ``already_applied``). A pair whose new
    pseudonym is held by another subject refuses the whole batch (409, nothing written).
    Audited as ``subject.alias`` per renamed subject and ``tenant.rekey`` per batch.
    """
    return apply_rekey_batch(
        session=session,
        batch=batch,
        principal=principal,
        audit=audit,
        master_keys=master_keys,
        at=clock(),
    )
