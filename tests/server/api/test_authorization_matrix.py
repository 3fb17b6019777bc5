"""Every route, every role: only the roles a route declares get past authorization.

Routes are enumerated from ``create_app(...)`` itself, so routes other rooms add later are
covered without editing this file. A route's declared roles are read from its dependency tree
(``require_role(...)`` records them as ``allowed_roles``). A route that declares no roles must
be listed below as public (or as authenticated another way) or the test fails.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlmodel import Session, SQLModel

from models import EdgeCredential
from server.api.deps import declared_roles
from server.config import ServerSettings
from server.crud.token import issue_token
from server.db import create_db_engine
from server.main import create_app
from server.tables.token import Role

from ..factories import ADMIN_TOKEN, ENROLLMENT_TOKEN, T0, FakeClock, bearer, make_pseudonym

#: Routes anyone may call, with or without a token: (method, path).
PUBLIC = {
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/signing-key"),
    ("GET", "/api/v1/purposes"),
    ("GET", "/api/v1/notices"),
}
#: Routes that check roles in their body rather than with ``require_role``: the roles a
#: bearer must hold. ``POST /edges`` also admits the enrollment header (tests/.../test_edges).
CHECKED_IN_ROUTE = {("POST", "/api/v1/edges"): frozenset({Role.ADMIN})}
#: Valid bodies for routes that check roles in their body (validation runs before the check).
VALID_BODIES: dict[tuple[str, str], object] = {
    ("POST", "/api/v1/edges"): {"name": "matrix-edge", "channel": "web"},
}
#: Path prefixes authenticated by something other than a bearer token (the console's signed
#: session cookie; its role checks are tested in tests/server/console).
OTHER_AUTH_PREFIXES = ("/console",)

SUBJECT = make_pseudonym("matrix-subject")
PATH_VALUES = {
    "subject": SUBJECT,
    "field": "tag.churn_risk",
    "receipt_id": str(uuid.UUID(int=1)),
    "request_id": str(uuid.UUID(int=2)),
    "token_id": str(uuid.UUID(int=3)),
    "action": "approve",
    "model": "behaviour",
    "version": "1",
}


@dataclass(frozen=True)
class RouteCase:
    method: str
    path: str
    roles: frozenset[Role] | None  # None: public

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _routes(app: FastAPI) -> Iterator[tuple[str, str, frozenset[Role] | None]]:
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        for method in sorted(context.methods or ()):
            yield method, str(context.path), declared_roles(context.dependant)


def _cases() -> list[RouteCase]:
    app = create_app(ServerSettings(database_url="sqlite://", admin_token=ADMIN_TOKEN))
    cases = []
    for method, path, roles in _routes(app):
        if path.startswith(OTHER_AUTH_PREFIXES):
            continue
        key = (method, path)
        if key in CHECKED_IN_ROUTE:
            roles = CHECKED_IN_ROUTE[key]
        elif key in PUBLIC:
            assert roles is None, f"{key} is listed public but declares roles {roles}"
        else:
            assert roles, f"{method} {path} declares no roles and is not listed as public"
        cases.append(RouteCase(method, path, roles))
    return cases


CASES = _cases()


def test_matrix_covers_the_api() -> None:
    ids = {c.id for c in CASES}
    # The routes this room owns are all in the matrix (others join as they are added).
    for route in (
        "POST /api/v1/tokens",
        "GET /api/v1/me/profile",
        "POST /api/v1/notices",
        "PUT /api/v1/me/personalization",
        "DELETE /api/v1/me/tags/{field}",
        "GET /api/v1/models",
        "GET /api/v1/models/{model}/latest",
        "GET /api/v1/models/{model}/versions/{version}/weights",
    ):
        assert route in ids
    assert len(CASES) >= 30


@dataclass
class Harness:
    client: TestClient
    tokens: dict[Role, str]
    edge_id: str


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    """One app for the whole matrix, with a working bearer token of every role."""
    engine = create_db_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    settings = ServerSettings(
        database_url="sqlite://", enrollment_token=ENROLLMENT_TOKEN, admin_token=ADMIN_TOKEN
    )
    app = create_app(settings, engine=engine, clock=FakeClock())
    try:
        with TestClient(app) as client:
            registered = client.post(
                "/api/v1/edges",
                json={"name": "web-1", "channel": "web"},
                headers={"X-Enrollment-Token": ENROLLMENT_TOKEN},
            )
            assert registered.status_code == 201, registered.text
            edge = EdgeCredential.model_validate(registered.json())
            issued = {Role.ADMIN: ADMIN_TOKEN, Role.EDGE: edge.token}
            with Session(engine) as session:
                for role, name, subject in (
                    (Role.AGENT, "agent-1", None),
                    (Role.ANALYST, "analyst-1", None),
                    (Role.COMPLIANCE_OFFICER, "dpo", None),
                    (Role.SUBJECT, None, SUBJECT),
                ):
                    raw, _ = issue_token(
                        session=session, role=role, at=T0, name=name, subject=subject
                    )
                    issued[role] = raw
                session.commit()
            assert set(issued) == set(Role)
            yield Harness(client=client, tokens=issued, edge_id=edge.edge_id)
    finally:
        engine.dispose()


def _url(path: str, edge_id: str) -> str:
    values = {**PATH_VALUES, "edge_id": edge_id}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "x"), path)


def _got_past(status: int, body: object) -> bool:
    """Whether a response came from past the authorization step."""
    if status == 401:
        return False
    if status == 403:
        # A 403 for a domain reason (e.g. consent_refused) is past authorization.
        return isinstance(body, dict) and body.get("error") not in {"forbidden", "unauthorized"}
    return True


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_only_declared_roles_get_past_authorization(case: RouteCase, harness: Harness) -> None:
    url = _url(case.path, harness.edge_id)
    body = VALID_BODIES.get(
        (case.method, case.path), None if case.method in {"GET", "DELETE"} else {}
    )
    client = harness.client
    for role, token in sorted(harness.tokens.items()):
        response = client.request(case.method, url, json=body, headers=bearer(token))
        payload = response.json() if response.content else None
        allowed = case.roles is None or role in case.roles
        assert _got_past(response.status_code, payload) is allowed, (
            f"{case.id} as {role.value}: {response.status_code} {payload}"
        )
        if not allowed:
            assert response.status_code == 403 and payload["error"] == "forbidden"
    anonymous = client.request(case.method, url, json=body)
    if case.roles is None:
        assert anonymous.status_code not in {401, 403}, case.id
    else:
        assert anonymous.status_code == 401, f"{case.id} without a token"


ROLE_ORDER = [
    Role.EDGE,
    Role.AGENT,
    Role.ANALYST,
    Role.COMPLIANCE_OFFICER,
    Role.ADMIN,
    Role.SUBJECT,
]
TABLE_BEGIN = "<!-- roles-table:begin -->"
TABLE_END = "<!-- roles-table:end -->"


def _row(case: RouteCase) -> str:
    route = f"`{case.method} {case.path.removeprefix('/api/v1')}`"
    if case.roles is None:
        route += " (public, no token needed)"
    marks = ["✓" if case.roles is None or r in case.roles else "" for r in ROLE_ORDER]
    return f"| {route} | " + " | ".join(marks) + " |"


def roles_table() -> str:
    """The roles table of docs/consent.md, generated from the app's declared roles."""
    header = "| route (under `/api/v1`) | " + " | ".join(r.value for r in ROLE_ORDER) + " |"
    rule = "|---|" + "---|" * len(ROLE_ORDER)
    return "\n".join([header, rule, *(_row(c) for c in CASES)])


def test_docs_roles_table_matches_the_code() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "consent.md").read_text("utf-8")
    documented = text.split(TABLE_BEGIN)[1].split(TABLE_END)[0].strip().splitlines()[2:]
    generated = set(roles_table().splitlines()[2:])
    # Every documented row says what the code declares (regenerate with
    # `python -m tests.server.api.test_authorization_matrix`); new routes may lag the docs.
    stale = [row for row in documented if row not in generated]
    assert not stale, stale


if __name__ == "__main__":
    print(roles_table())  # noqa: T201
