"""Idempotency of uploads: the request digest a receipt is compared with.

Receipts (``UploadReceipt``) are loaded and written per batch by
``server.crud.upload_state``; the same key and digest replay, another digest conflicts.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def request_hash(payload: dict[str, Any]) -> str:
    """Return the SHA-256 of the canonical JSON of a request.

    Parameters
    ----------
    payload : dict[str, Any]
        JSON-ready request content (path parameters and body).

    Returns
    -------
    str
        64 hex digits.
    """
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
