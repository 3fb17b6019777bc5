"""``GET /api/v1/signing-key``: the public key that verifies our receipts and checkpoints.

Anyone (a subject, a regulator, an auditor) may fetch it; pin it out of band to check
authenticity rather than only integrity.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from privacy import SIGNATURE_ALGORITHM

from ..deps import SigningKeyDep

router = APIRouter(tags=["keys"])


class SigningKeyPublic(BaseModel):
    """The server's public evidence-signing key."""

    algorithm: str
    key_id: str
    public_key: str


@router.get("/signing-key", response_model=SigningKeyPublic)
def get_signing_key_route(key: SigningKeyDep) -> SigningKeyPublic:
    """Return the public Ed25519 key (base64url) and its id."""
    public = key.verify_key
    return SigningKeyPublic(
        algorithm=SIGNATURE_ALGORITHM, key_id=public.key_id, public_key=public.to_text()
    )
