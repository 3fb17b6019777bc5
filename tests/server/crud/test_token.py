from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlmodel import Session, select

from server.crud.token import hash_token, issue_token, resolve_principal, revoke_token
from server.errors import UnauthenticatedError
from server.tables.edge import Edge
from server.tables.token import ApiToken, Role

from ..factories import ADMIN_TOKEN, T0

STATIC = {Role.ADMIN: SecretStr(ADMIN_TOKEN), Role.AGENT: None}


def _edge_token(session: Session) -> tuple[str, ApiToken]:
    session.add(Edge(id="e1", name="e1", channel="app", created_at=T0))
    session.flush()
    raw, row = issue_token(session=session, role=Role.EDGE, edge_id="e1", channel="app", at=T0)
    session.commit()
    return raw, row


def test_issue_token_stores_only_the_hash(db_session: Session) -> None:
    raw, _ = _edge_token(db_session)
    (stored,) = db_session.exec(select(ApiToken)).all()
    assert stored.token_hash == hash_token(raw) and raw not in stored.model_dump_json()


def test_resolve_principal_edge_token_gives_edge_principal(db_session: Session) -> None:
    raw, _ = _edge_token(db_session)
    principal = resolve_principal(session=db_session, token=raw, static_tokens=STATIC)
    assert (principal.role, principal.edge_id, principal.actor) == (Role.EDGE, "e1", "edge:e1")


def test_resolve_principal_static_admin_token(db_session: Session) -> None:
    principal = resolve_principal(session=db_session, token=ADMIN_TOKEN, static_tokens=STATIC)
    assert principal.role is Role.ADMIN and principal.actor == "admin"


@pytest.mark.parametrize("token", [None, "", "unknown-token-value", "x" * 300])
def test_resolve_principal_bad_token_is_unauthenticated(
    db_session: Session, token: str | None
) -> None:
    with pytest.raises(UnauthenticatedError):
        resolve_principal(session=db_session, token=token, static_tokens=STATIC)


def test_resolve_principal_revoked_token_is_unauthenticated(db_session: Session) -> None:
    raw, row = _edge_token(db_session)
    assert revoke_token(session=db_session, token_id=row.id, at=T0)
    assert not revoke_token(session=db_session, token_id=row.id, at=T0)
    with pytest.raises(UnauthenticatedError):
        resolve_principal(session=db_session, token=raw, static_tokens=STATIC)


def test_issue_token_edge_role_without_edge_raises_value_error(db_session: Session) -> None:
    with pytest.raises(ValueError):
        issue_token(session=db_session, role=Role.EDGE, edge_id=None, channel=None, at=T0)
