"""Console sessions: signed cookies that expire, die with their token and carry a CSRF token."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from server.console.session import (
    SESSION_TTL,
    SessionError,
    csrf_ok,
    decode_session,
    encode_session,
    new_session,
)
from server.crud.token import issue_token, revoke_token
from server.principal import Principal
from server.tables.token import Role
from tests.server.factories import T0

SECRET = b"k" * 32


def _officer(db_session: Session) -> Principal:
    _, row = issue_token(session=db_session, role=Role.COMPLIANCE_OFFICER, name="li.wei", at=T0)
    db_session.commit()
    return Principal(role=Role.COMPLIANCE_OFFICER, name="li.wei", token_id=row.id)


def test_round_trip_keeps_who_and_csrf(db_session: Session) -> None:
    session = new_session(_officer(db_session), at=T0)
    cookie = encode_session(session, secret=SECRET)
    back = decode_session(cookie, secret=SECRET, at=T0 + timedelta(minutes=1), db=db_session)
    assert back == session
    assert back.principal.actor == "compliance_officer:li.wei"
    assert back.may_use_console


def test_tampered_or_foreign_cookie_is_refused(db_session: Session) -> None:
    cookie = encode_session(new_session(_officer(db_session), at=T0), secret=SECRET)
    body, mac = cookie.rsplit(".", 1)
    forged = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + mac
    for bad in (forged, cookie + "0", "", None, "no-dot"):
        with pytest.raises(SessionError):
            decode_session(bad, secret=SECRET, at=T0, db=db_session)
    with pytest.raises(SessionError):
        decode_session(cookie, secret=b"x" * 32, at=T0, db=db_session)


def test_session_expires_after_ttl(db_session: Session) -> None:
    cookie = encode_session(new_session(_officer(db_session), at=T0), secret=SECRET)
    decode_session(cookie, secret=SECRET, at=T0 + SESSION_TTL - timedelta(seconds=1), db=db_session)
    with pytest.raises(SessionError):
        decode_session(cookie, secret=SECRET, at=T0 + SESSION_TTL, db=db_session)


def test_revoking_the_token_ends_the_session(db_session: Session) -> None:
    principal = _officer(db_session)
    cookie = encode_session(new_session(principal, at=T0), secret=SECRET)
    assert principal.token_id is not None
    assert revoke_token(session=db_session, token_id=principal.token_id, at=T0)
    with pytest.raises(SessionError):
        decode_session(cookie, secret=SECRET, at=T0, db=db_session)


def test_csrf_must_match_exactly() -> None:
    session = new_session(Principal(role=Role.ADMIN), at=T0)
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None)
    assert not csrf_ok(session, "")
    assert not csrf_ok(session, session.csrf + "x")


def test_agent_session_may_not_use_console() -> None:
    assert not new_session(Principal(role=Role.AGENT, name="desk"), at=T0).may_use_console


def test_session_ends_when_its_token_expires(db_session: Session) -> None:
    _, row = issue_token(
        session=db_session,
        role=Role.COMPLIANCE_OFFICER,
        name="temp",
        at=T0,
        expires_at=T0 + timedelta(minutes=10),
    )
    db_session.commit()
    principal = Principal(role=Role.COMPLIANCE_OFFICER, name="temp", token_id=row.id)
    cookie = encode_session(new_session(principal, at=T0), secret=SECRET)
    decode_session(cookie, secret=SECRET, at=T0 + timedelta(minutes=9), db=db_session)
    with pytest.raises(SessionError):
        decode_session(cookie, secret=SECRET, at=T0 + timedelta(minutes=10), db=db_session)
