from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models import EdgeCredential
from server.api.deps import app_settings, require_role
from server.config import ServerSettings
from server.crud.token import revoke_token
from server.main import create_app
from server.tables.token import ApiToken

from ..factories import ADMIN_TOKEN, AGENT_TOKEN, bearer


def test_require_role_without_roles_raises_value_error() -> None:
    with pytest.raises(ValueError):
        require_role()


def test_revoked_edge_token_is_401(
    api: TestClient, edge: EdgeCredential, memory_engine: Engine
) -> None:
    with Session(memory_engine) as session:
        (row,) = session.exec(select(ApiToken)).all()
        revoke_token(session=session, token_id=row.id, at=row.created_at)
    response = api.get("/api/v1/ledgers", headers=bearer(edge.token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_missing_agent_token_setting_disables_agent_role(memory_engine: Engine) -> None:
    settings = ServerSettings(database_url="sqlite://", admin_token=ADMIN_TOKEN)
    with TestClient(create_app(settings, engine=memory_engine)) as client:
        agent = client.get("/api/v1/ledgers", headers=bearer(AGENT_TOKEN))
        admin = client.get("/api/v1/ledgers", headers=bearer(ADMIN_TOKEN))
    assert (agent.status_code, admin.status_code) == (401, 200)


def test_settings_dependency_override_is_honoured(memory_engine: Engine) -> None:
    app = create_app(engine=memory_engine)
    app.dependency_overrides[app_settings] = lambda: ServerSettings(
        database_url="sqlite://", admin_token=ADMIN_TOKEN
    )
    with TestClient(app) as client:
        assert client.get("/api/v1/ledgers", headers=bearer(ADMIN_TOKEN)).status_code == 200


def test_require_role_records_its_roles_and_guards_intersect() -> None:
    from fastapi import Depends, FastAPI
    from fastapi.routing import APIRoute, iter_route_contexts

    from server.api.deps import declared_roles, require_role
    from server.tables.token import Role

    officers = require_role(Role.COMPLIANCE_OFFICER, Role.ADMIN)
    assert officers.allowed_roles == {Role.COMPLIANCE_OFFICER, Role.ADMIN}
    app = FastAPI()

    @app.get("/both", dependencies=[Depends(officers), Depends(require_role(Role.ADMIN))])
    def both() -> None: ...

    @app.get("/none")
    def none() -> None: ...

    found = {
        str(c.path): declared_roles(c.dependant)
        for c in iter_route_contexts(app.routes)
        if isinstance(c.original_route, APIRoute)
    }
    assert found == {"/both": {Role.ADMIN}, "/none": None}
