"""Bearer tokens: issue (shown once), store hashed, resolve to a ``Principal``.

Static role secrets (admin, agent) come from the settings; edge tokens are issued at
registration and stored as SHA-256 hex. Every failure is the same opaque
``UnauthenticatedError``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime

from pydantic import SecretStr
from sqlmodel import Session, col, select

from ..errors import UnauthenticatedError
from ..principal import Principal
from ..tables.token import ApiToken, Role

#: Longest bearer token looked up (longer ones are refused without a query).
MAX_TOKEN_LENGTH = 256


def hash_token(token: str) -> str:
    """Return the hex SHA-256 of a bearer token.

    Parameters
    ----------
    token : str
        The raw token.

    Returns
    -------
    str
        64 hex digits; the only form stored.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    *,
    session: Session,
    role: Role,
    edge_id: str | None,
    channel: str | None,
    at: datetime,
) -> tuple[str, ApiToken]:
    """Create a random bearer token and store its hash (no commit).

    Parameters
    ----------
    session : Session
        Session of the enclosing write.
    role : Role
        The token's role.
    edge_id : str or None
        The edge it belongs to (required for ``edge``).
    channel : str or None
        The edge's channel.
    at : datetime
        Issue time.

    Returns
    -------
    tuple[str, ApiToken]
        The raw token (to show once) and the stored row.

    Raises
    ------
    ValueError
        If ``role`` is ``edge`` and ``edge_id`` is missing.
    """
    if role is Role.EDGE and edge_id is None:
        raise ValueError("edge_id is required for an edge token")
    raw = secrets.token_urlsafe(32)
    row = ApiToken(
        id=str(uuid.uuid4()),
        token_hash=hash_token(raw),
        role=role,
        edge_id=edge_id,
        channel=channel,
        created_at=at,
    )
    session.add(row)
    return raw, row


def revoke_token(*, session: Session, token_id: str, at: datetime) -> bool:
    """Mark a token revoked and commit.

    Parameters
    ----------
    session : Session
        A session.
    token_id : str
        The token's id.
    at : datetime
        Revocation time.

    Returns
    -------
    bool
        Whether a live token was revoked.
    """
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = at
    session.add(row)
    session.commit()
    return True


def _matches(secret: SecretStr | None, token: str) -> bool:
    """Constant-time comparison with a configured secret."""
    if secret is None:
        return False
    return hmac.compare_digest(secret.get_secret_value().encode(), token.encode())


def resolve_principal(
    *,
    session: Session,
    token: str | None,
    static_tokens: Mapping[Role, SecretStr | None],
) -> Principal:
    """Resolve a bearer token to the principal it stands for.

    Parameters
    ----------
    session : Session
        A session for looking up issued tokens.
    token : str or None
        The presented bearer token.
    static_tokens : Mapping[Role, SecretStr or None]
        Role secrets from the settings (``None`` disables that secret).

    Returns
    -------
    Principal
        The caller.

    Raises
    ------
    UnauthenticatedError
        If the token is missing, unknown, revoked or too long (one opaque message).
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise UnauthenticatedError()
    matched = [role for role, secret in static_tokens.items() if _matches(secret, token)]
    if matched:
        return Principal(role=matched[0])
    row = session.exec(
        select(ApiToken).where(col(ApiToken.token_hash) == hash_token(token))
    ).first()
    if row is None or row.revoked_at is not None:
        raise UnauthenticatedError()
    return Principal(role=Role(row.role), edge_id=row.edge_id, channel=row.channel)
