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


@pytest.mark.parametrize(
    ("role", "name", "subject", "actor"),
    [
        (Role.COMPLIANCE_OFFICER, "li.wei", None, "compliance_officer:li.wei"),
        (Role.ANALYST, "ana", None, "analyst:ana"),
        (Role.SUBJECT, None, "ps_" + "a" * 64, "subject"),
    ],
)
def test_named_token_resolves_to_holder_subject_and_token_id(
    db_session: Session, role: Role, name: str | None, subject: str | None, actor: str
) -> None:
    raw, row = issue_token(session=db_session, role=role, at=T0, name=name, subject=subject)
    db_session.commit()
    principal = resolve_principal(session=db_session, token=raw, static_tokens=STATIC, at=T0)
    assert (principal.role, principal.name, principal.subject) == (role, name, subject)
    assert principal.token_id == row.id and principal.actor == actor


@pytest.mark.parametrize(
    "kwargs",
    [
        {"role": Role.COMPLIANCE_OFFICER},
        {"role": Role.SUBJECT},
        {"role": Role.AGENT, "name": "a", "subject": "ps_" + "a" * 64},
        {"role": Role.SUBJECT, "subject": "not-a-pseudonym"},
        {"role": Role.AGENT, "name": "a", "edge_id": "e1"},
    ],
)
def test_issue_token_refuses_bindings_that_do_not_fit(
    db_session: Session, kwargs: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        issue_token(session=db_session, at=T0, **kwargs)  # type: ignore[arg-type]


def test_expired_token_is_refused_at_and_after_expiry(db_session: Session) -> None:
    from datetime import timedelta

    raw, _ = issue_token(
        session=db_session, role=Role.AGENT, name="a", at=T0, expires_at=T0 + timedelta(hours=1)
    )
    db_session.commit()
    resolve_principal(session=db_session, token=raw, static_tokens=STATIC, at=T0)
    with pytest.raises(UnauthenticatedError):
        resolve_principal(
            session=db_session, token=raw, static_tokens=STATIC, at=T0 + timedelta(hours=1)
        )


def test_compliance_officer_role_fits_the_migrated_postgresql_column(postgres_url: str) -> None:
    from server.db import create_db_engine, upgrade_database

    upgrade_database(postgres_url)
    engine = create_db_engine(postgres_url)
    try:
        with Session(engine) as session:
            raw, _ = issue_token(session=session, role=Role.COMPLIANCE_OFFICER, name="dpo", at=T0)
            session.commit()
            principal = resolve_principal(session=session, token=raw, static_tokens=STATIC)
        assert principal.role is Role.COMPLIANCE_OFFICER and principal.name == "dpo"
    finally:
        engine.dispose()
