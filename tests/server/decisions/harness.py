"""A decision-service harness: the real app on a migrated database, an edge, consents, fields.

Shared by the routing scenarios (SQLite file and PostgreSQL) and the consent property test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

import server.tables  # noqa: F401  (registers the tables)
from consent import ConsentStatus, Purpose
from models import EdgeCredential
from server.config import ServerSettings
from server.crud.token import issue_token
from server.db import create_db_engine, upgrade_database
from server.main import create_app
from server.tables.token import Role

from ..factories import (
    ADMIN_TOKEN,
    AGENT_TOKEN,
    CONTROLLER,
    ENROLLMENT_TOKEN,
    T0,
    FakeClock,
    as_json,
    bearer,
    make_consent_event,
    make_field,
    make_upload,
)


def signals(intent: str, emotion: str, urgency: str, p: float = 0.95) -> dict[str, Any]:
    """Live signals of one message: every head at probability ``p``."""
    return {
        "intent": {"label": intent, "probability": p},
        "emotion": {"label": emotion, "probability": p},
        "urgency": {"label": urgency, "probability": p},
    }


@dataclass
class DecisionApi:
    """The app, its engine and clock, and one registered desk edge."""

    client: TestClient
    engine: Engine
    clock: FakeClock
    edge: EdgeCredential

    def consent(self, subject: str, *purposes: Purpose, withdraw: bool = False) -> None:
        """Grant (or withdraw, an hour before now) ``purposes`` for ``subject``."""
        status = ConsentStatus.WITHDRAWN if withdraw else ConsentStatus.GRANTED
        at = self.clock.now - (timedelta(hours=1) if withdraw else timedelta(days=1))
        events = [
            make_consent_event(subject, p, status=status, occurred_at=at, channel="desk")
            for p in purposes
        ]
        response = self.client.post(
            "/api/v1/consents", json=as_json(events), headers=bearer(self.edge.token)
        )
        assert response.status_code == 200, response.text

    def upload(self, subject: str, purpose: str, **values: Any) -> None:
        """Upload catalogued fields (``feature__monetary_90d=...``: ``__`` for ``.``)."""
        fields = [make_field(name.replace("__", "."), v) for name, v in values.items()]
        response = self.client.put(
            f"/api/v1/subjects/{subject}/profile",
            json=as_json(make_upload(purpose, fields)),
            headers={**bearer(self.edge.token), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 200, response.text

    def decide(self, subject: str, sig: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """Ask for a decision as the edge; returns the answer's JSON."""
        body = {"subject": subject, "channel": "desk", "signals": sig or {}, **kw}
        response = self.client.post(
            "/api/v1/decisions", json=body, headers=bearer(self.edge.token)
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def subject_headers(self, subject: str) -> dict[str, str]:
        """A subject token's headers for ``/me``."""
        with Session(self.engine) as session:
            raw, _ = issue_token(session=session, role=Role.SUBJECT, at=T0, subject=subject)
            session.commit()
        return bearer(raw)

    def flush_audit(self) -> int:
        """Append the pending decisions' audit entries now."""
        count: int = self.client.app.state.decision_audit.flush()  # type: ignore[attr-defined]
        return count


def decision_api(url: str, *, migrate: bool = True) -> Iterator[DecisionApi]:
    """The app on ``url`` (migrated) with a registered desk edge."""
    if migrate:
        upgrade_database(url)
    engine = create_db_engine(url)
    clock = FakeClock()
    settings = ServerSettings(
        database_url=url, enrollment_token=ENROLLMENT_TOKEN, admin_token=ADMIN_TOKEN,
        agent_token=AGENT_TOKEN, decision_audit_interval=3600, **CONTROLLER,
    )  # fmt: skip
    try:
        with TestClient(create_app(settings, engine=engine, clock=clock)) as client:
            response = client.post(
                "/api/v1/edges", json={"name": "desk-1", "channel": "desk"},
                headers={"X-Enrollment-Token": ENROLLMENT_TOKEN},
            )  # fmt: skip
            assert response.status_code == 201, response.text
            yield DecisionApi(client, engine, clock, EdgeCredential.model_validate(response.json()))
    finally:
        engine.dispose()
