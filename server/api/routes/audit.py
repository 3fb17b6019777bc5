"""``GET /audit/verify``: recompute the audit hash chain (admin)."""

from __future__ import annotations

from fastapi import APIRouter

from ...audit.log import VerifyReport, verify_chain
from ..deps import SessionDep, admins_only

router = APIRouter(tags=["audit"])


@router.get("/audit/verify", dependencies=[admins_only])
def get_audit_verify(session: SessionDep) -> VerifyReport:
    """Verify every entry's hash, link and sequence number and the head row."""
    return verify_chain(session=session)
