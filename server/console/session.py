"""Console sessions: a signed, short-lived cookie standing for a logged-in officer.

Logging in resolves the officer's bearer token once (:func:`server.crud.token.resolve_principal`)
and stores who they are in a cookie signed with HMAC-SHA256 under a per-process secret; the
token itself is never stored in the cookie. Each session carries a random CSRF token that every
POST form must echo. Sessions expire after :data:`SESSION_TTL`; a session of a stored token is
refused as soon as that token is revoked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from ..principal import Principal
from ..tables.token import ApiToken, Role

#: Name of the session cookie.
SESSION_COOKIE = "console_session"
#: How long a session lasts after login.
SESSION_TTL = timedelta(minutes=30)
#: Roles that may use the compliance pages.
CONSOLE_ROLES = frozenset({Role.COMPLIANCE_OFFICER, Role.ADMIN})


class SessionError(Exception):
    """The session cookie is missing, forged, expired or revoked (one opaque error)."""


@dataclass(frozen=True)
class ConsoleSession:
    """A logged-in console user.

    Parameters
    ----------
    role : Role
        The token's role.
    name : str or None
        The officer's name (named tokens); ``None`` for the static admin token.
    token_id : str or None
        The stored token's id, re-checked for revocation on every request.
    csrf : str
        The session's CSRF token, echoed by every POST form.
    expires_at : int
        Expiry, seconds since the epoch (UTC).
    """

    role: Role
    name: str | None
    token_id: str | None
    csrf: str
    expires_at: int

    @property
    def principal(self) -> Principal:
        """The principal the session acts as (for audit actor strings and crud calls)."""
        return Principal(role=self.role, name=self.name, token_id=self.token_id)

    @property
    def may_use_console(self) -> bool:
        """Whether the role may use the compliance pages."""
        return self.role in CONSOLE_ROLES


def new_session(principal: Principal, *, at: datetime) -> ConsoleSession:
    """Start a session for a principal that just logged in.

    Parameters
    ----------
    principal : Principal
        The resolved token holder.
    at : datetime
        Login time (timezone-aware).

    Returns
    -------
    ConsoleSession
        With a fresh CSRF token and an expiry :data:`SESSION_TTL` from ``at``.
    """
    return ConsoleSession(
        role=principal.role,
        name=principal.name,
        token_id=principal.token_id,
        csrf=secrets.token_urlsafe(24),
        expires_at=int((at + SESSION_TTL).timestamp()),
    )


def _mac(secret: bytes, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``body``."""
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def encode_session(session: ConsoleSession, *, secret: bytes) -> str:
    """Serialise and sign a session for the cookie.

    Parameters
    ----------
    session : ConsoleSession
        The session.
    secret : bytes
        The process's cookie-signing secret.

    Returns
    -------
    str
        ``<base64url JSON>.<hex HMAC>``.
    """
    payload = {
        "r": session.role.value,
        "n": session.name,
        "t": session.token_id,
        "c": session.csrf,
        "e": session.expires_at,
    }
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
    return f"{body.decode()}.{_mac(secret, body)}"


def decode_session(
    cookie: str | None, *, secret: bytes, at: datetime, db: Session
) -> ConsoleSession:
    """Check a session cookie and return the session it carries.

    Parameters
    ----------
    cookie : str or None
        The cookie value.
    secret : bytes
        The process's cookie-signing secret.
    at : datetime
        Now (timezone-aware), for the expiry check.
    db : Session
        A database session, to refuse sessions of revoked or expired tokens.

    Returns
    -------
    ConsoleSession
        The valid session.

    Raises
    ------
    SessionError
        If the cookie is missing, malformed, wrongly signed or expired, or its token was
        revoked or has expired.
    """
    if not cookie or "." not in cookie or len(cookie) > 2048:
        raise SessionError()
    body, mac = cookie.rsplit(".", 1)
    if not hmac.compare_digest(_mac(secret, body.encode()), mac):
        raise SessionError()
    try:
        payload = json.loads(base64.urlsafe_b64decode(body.encode()))
        session = ConsoleSession(
            role=Role(payload["r"]),
            name=payload["n"],
            token_id=payload["t"],
            csrf=str(payload["c"]),
            expires_at=int(payload["e"]),
        )
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise SessionError() from None
    if session.expires_at <= at.timestamp():
        raise SessionError()
    if session.token_id is not None:
        row = db.get(ApiToken, session.token_id)
        if row is None or row.revoked_at is not None:
            raise SessionError()
        if row.expires_at is not None and row.expires_at <= at:
            raise SessionError()
    return session


def csrf_ok(session: ConsoleSession, submitted: str | None) -> bool:
    """Return whether a form's CSRF token matches the session's (constant time).

    Parameters
    ----------
    session : ConsoleSession
        The logged-in session.
    submitted : str or None
        The form's ``csrf`` field.

    Returns
    -------
    bool
        True when they match.
    """
    if not submitted:
        return False
    return hmac.compare_digest(session.csrf.encode(), submitted.encode())
