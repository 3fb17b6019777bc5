"""``/audit``: list, verify, checkpoint and export the tamper-evident audit log.

Compliance officers and admins only. Each route parses its parameters and calls one plain
function of ``server.audit`` (``query.list_entries``, ``log.verify_chain``,
``query.checkpoint_page``, ``export.export_range``), the same ones the console uses.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from models import INT64_MAX, BoundedTime

from ...audit.checkpoint import CheckpointPolicy
from ...audit.events import AuditAction
from ...audit.export import export_range
from ...audit.log import VerifyReport, verify_chain
from ...audit.parallel import resolve_workers
from ...audit.principal_action import audit_action
from ...audit.query import (
    MAX_PAGE,
    CheckpointPage,
    EntryFilter,
    EntryPage,
    Order,
    checkpoint_page,
    list_entries,
)
from ...tables.token import Role
from ..deps import (
    AuditDep,
    ClockDep,
    OfficerPrincipal,
    SessionDep,
    SettingsDep,
    SigningKeyDep,
    require_role,
)

router = APIRouter(tags=["audit"])

#: Compliance officers and admins read, verify and export the log.
officers = Depends(require_role(Role.COMPLIANCE_OFFICER, Role.ADMIN))

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size")]


@router.get("/audit/entries", dependencies=[officers])
def get_audit_entries(
    session: SessionDep,
    actor: Annotated[str | None, Query(max_length=64, description="Exact actor")] = None,
    action: Annotated[str | None, Query(max_length=40, description="Exact action")] = None,
    purpose: Annotated[str | None, Query(max_length=40, description="Exact purpose")] = None,
    subject: Annotated[
        str | None, Query(max_length=67, description="Subject pseudonym (ps_...)")
    ] = None,
    seq_from: Annotated[int | None, Query(ge=1, le=INT64_MAX, description="Smallest seq")] = None,
    seq_to: Annotated[int | None, Query(ge=1, le=INT64_MAX, description="Largest seq")] = None,
    at_from: Annotated[BoundedTime | None, Query(description="Earliest time (inclusive)")] = None,
    at_to: Annotated[BoundedTime | None, Query(description="Latest time (exclusive)")] = None,
    order: Annotated[Order, Query(description="desc: newest first")] = "desc",
    cursor: Annotated[
        int | None, Query(ge=1, le=INT64_MAX, description="next_cursor of the last page")
    ] = None,
    limit: Limit = 100,
) -> EntryPage:
    """List entries matching every given filter, one keyset page at a time (no pseudonyms)."""
    filters = EntryFilter(
        actor=actor, action=action, purpose=purpose, subject=subject,
        seq_from=seq_from, seq_to=seq_to, at_from=at_from, at_to=at_to,
    )  # fmt: skip
    return list_entries(session=session, filters=filters, cursor=cursor, limit=limit, order=order)


@router.get("/audit/verify", dependencies=[officers])
def get_audit_verify(
    session: SessionDep, settings: SettingsDep, key: SigningKeyDep
) -> VerifyReport:
    """Verify every entry, link and salted commitment, and every checkpoint under our key."""
    return verify_chain(
        session=session,
        trusted_keys=[key.verify_key],
        checkpoint_every=settings.audit_checkpoint_every,
        workers=resolve_workers(settings.audit_verify_workers),
    )


@router.get("/audit/checkpoints", dependencies=[officers])
def get_audit_checkpoints(
    session: SessionDep,
    before_size: Annotated[
        int | None, Query(ge=1, le=INT64_MAX, description="next_before_size of the last page")
    ] = None,
    limit: Limit = 100,
) -> CheckpointPage:
    """List signed checkpoints, newest first, each with its signed envelope."""
    return checkpoint_page(session=session, limit=limit, before_size=before_size)


@router.get("/audit/export")
def get_audit_export(
    session: SessionDep,
    key: SigningKeyDep,
    clock: ClockDep,
    principal: OfficerPrincipal,
    audit: AuditDep,
    first: Annotated[int, Query(alias="from", ge=1, le=INT64_MAX, description="First seq")],
    last: Annotated[int, Query(alias="to", ge=1, le=INT64_MAX, description="Last seq")],
) -> dict[str, Any]:
    """Return entries ``from..to`` signed, with the covering checkpoint and Merkle proof.

    Signs a checkpoint at the head first when none covers ``to`` yet. Verify the result
    offline with ``fedprofile audit verify-export FILE --public-key KEY``. Audited as
    ``audit.export`` after the range is cut (the entry is not part of its own export).
    """
    export = export_range(
        session=session, first=first, last=last, policy=CheckpointPolicy(key=key, clock=clock)
    )
    audit_action(
        session, audit, principal, action=AuditAction.AUDIT_EXPORT, at=clock(),
        detail={"from": first, "to": last},
    )  # fmt: skip
    return export
