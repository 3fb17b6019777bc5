"""Bearer tokens: issue (shown once), store hashed, list, revoke, resolve to a ``Principal``.

Static role secrets (admin, agent) come from the settings; every other token is issued by an
admin (``POST /tokens``, ``fedprofile token issue``) or at edge registration and stored as
SHA-256 hex. A stored token is bound to its role and, by role, to an edge and channel
(``edge``), a holder name (agents, analysts, compliance officers, admins) or a pseudonym
(``subject``). :func:`resolve_principal` turns a presented token into the ``Principal`` the
routes and the console act as. Every failure is the same opaque ``UnauthenticatedError``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from pydantic import SecretStr
from sqlmodel import Session, col, select

from consent import PSEUDONYM_PATTERN

from ..errors import UnauthenticatedError
from ..principal import Principal
from ..tables.token import NAMED_ROLES, ApiToken, ApiTokenPublic, Role

#: Longest bearer token looked up (longer ones are refused without a query).
MAX_TOKEN_LENGTH = 256
#: Holder names: letters, digits and ``. _ @ -`` (1-64), e.g. ``li.wei`` or ``dpo-team``.
HOLDER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


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


def _binding_problems(
    role: Role, edge_id: str | None, name: str | None, subject: str | None
) -> list[str]:
    """Return why the role's binding is incomplete or wrong (empty when it is right)."""
    problems: list[str] = []
    if role is Role.EDGE and edge_id is None:
        problems.append("edge_id is required for an edge token")
    if role is not Role.EDGE and edge_id is not None:
        problems.append("only edge tokens belong to an edge")
    if role is Role.SUBJECT and subject is None:
        problems.append("a subject token needs the subject's pseudonym")
    if role is not Role.SUBJECT and subject is not None:
        problems.append("only subject tokens are bound to a pseudonym")
    if subject is not None and not re.fullmatch(PSEUDONYM_PATTERN, subject):
        problems.append("subject must be a pseudonym (ps_ + 64 hex digits)")
    if role in NAMED_ROLES and name is None:
        problems.append(f"a {role.value} token needs a holder name")
    if name is not None and not re.fullmatch(HOLDER_NAME_PATTERN, name):
        problems.append("holder name must be 1-64 letters, digits or . _ @ - (no spaces)")
    return problems


def issue_token(
    *,
    session: Session,
    role: Role,
    edge_id: str | None = None,
    channel: str | None = None,
    at: datetime,
    name: str | None = None,
    subject: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[str, ApiToken]:
    """Create a random bearer token and store its hash (no commit).

    Parameters
    ----------
    session : Session
        Session of the enclosing write.
    role : Role
        The token's role.
    edge_id : str or None
        The edge it belongs to (required for ``edge``, refused otherwise).
    channel : str or None
        The edge's channel.
    at : datetime
        Issue time.
    name : str or None
        The holder's name; required for agents, analysts, compliance officers and admins
        (the audit log names them ``<role>:<name>``), optional for edges and subjects.
    subject : str or None
        The pseudonym a ``subject`` token acts on (required for it, refused otherwise).
    expires_at : datetime or None
        When the token stops working; ``None`` for no expiry.

    Returns
    -------
    tuple[str, ApiToken]
        The raw token (to show once) and the stored row.

    Raises
    ------
    ValueError
        If the binding does not fit the role (the message lists every problem).
    """
    problems = _binding_problems(role, edge_id, name, subject)
    if expires_at is not None and expires_at <= at:
        problems.append("expires_at must be after the issue time")
    if problems:
        raise ValueError("; ".join(problems))
    raw = secrets.token_urlsafe(32)
    row = ApiToken(
        id=str(uuid.uuid4()),
        token_hash=hash_token(raw),
        role=role,
        edge_id=edge_id,
        channel=channel,
        holder_name=name,
        subject=subject,
        expires_at=expires_at,
        created_at=at,
    )
    session.add(row)
    return raw, row


def list_tokens(*, session: Session, include_revoked: bool = False) -> list[ApiTokenPublic]:
    """Return the stored tokens' metadata, newest first (never a hash).

    Parameters
    ----------
    session : Session
        A session.
    include_revoked : bool
        Whether revoked tokens are listed too.

    Returns
    -------
    list[ApiTokenPublic]
        One entry per token.
    """
    stmt = select(ApiToken).order_by(col(ApiToken.created_at).desc(), col(ApiToken.id))
    if not include_revoked:
        stmt = stmt.where(col(ApiToken.revoked_at).is_(None))
    return [ApiTokenPublic.model_validate(row, from_attributes=True) for row in session.exec(stmt)]


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


def to_principal(row: ApiToken) -> Principal:
    """Return the principal a stored token stands for.

    Parameters
    ----------
    row : ApiToken
        A stored token.

    Returns
    -------
    Principal
        Role, edge and channel, holder name, subject and token id of the row.
    """
    return Principal(
        role=Role(row.role),
        edge_id=row.edge_id,
        channel=row.channel,
        name=row.holder_name,
        subject=row.subject,
        token_id=row.id,
    )


def resolve_principal(
    *,
    session: Session,
    token: str | None,
    static_tokens: Mapping[Role, SecretStr | None],
    at: datetime | None = None,
) -> Principal:
    """Resolve a bearer token to the principal it stands for.

    This is the one function that turns a presented token into a caller: the API's
    ``get_principal`` dependency and the console's login both use it.

    Parameters
    ----------
    session : Session
        A session for looking up issued tokens.
    token : str or None
        The presented bearer token.
    static_tokens : Mapping[Role, SecretStr or None]
        Role secrets from the settings (``None`` disables that secret).
    at : datetime or None
        The moment of use; a token whose ``expires_at`` is at or before it is refused.
        ``None`` means now (UTC system time), so an expired token never passes.

    Returns
    -------
    Principal
        The caller; ``name``, ``subject`` and ``token_id`` are filled for stored tokens.

    Raises
    ------
    UnauthenticatedError
        If the token is missing, unknown, revoked, expired or too long (one opaque message).
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
    moment = at if at is not None else datetime.now(UTC)
    if row.expires_at is not None and row.expires_at <= moment:
        raise UnauthenticatedError()
    return to_principal(row)
