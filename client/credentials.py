"""The edge's server credentials: saved once at registration, mode 0600, never printed."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from pydantic import ValidationError

from models import EdgeCredential

from .errors import EdgeConfigError

logger = logging.getLogger(__name__)


def save_credentials(path: Path, credential: EdgeCredential, *, server_url: str) -> None:
    """Write the edge's credentials atomically with mode 0600.

    Parameters
    ----------
    path : Path
        The credentials file (``ClientSettings.credentials_path``).
    credential : EdgeCredential
        The edge id and bearer token the server issued (the token is never logged).
    server_url : str
        The server that issued them, kept for the operator.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({**credential.model_dump(mode="json"), "server_url": server_url}, handle)
    os.replace(tmp, path)
    logger.debug("credentials of edge %s saved", credential.edge_id)


def load_credentials(path: Path) -> EdgeCredential | None:
    """Return the saved credentials, or ``None`` when the edge is not registered.

    Raises
    ------
    EdgeConfigError
        If the file exists but cannot be parsed.
    """
    if not path.exists():
        return None
    try:
        return EdgeCredential.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError):
        raise EdgeConfigError(
            f"credentials file {path} is unreadable; delete it and sync again to re-register"
        ) from None
