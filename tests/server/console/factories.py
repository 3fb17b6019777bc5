"""Factories of the console tests: officer tokens, logging in, seeding through the API."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from consent import ConsentStatus, Purpose
from server.crud.token import issue_token
from server.tables.token import Role
from tests.server.factories import T0, as_json, bearer, make_consent_event, make_pseudonym

_CSRF = re.compile(r'name="(?:csrf|login_csrf)" value="([^"]+)"')


def issue_named(engine: Engine, name: str, role: Role = Role.COMPLIANCE_OFFICER) -> str:
    """Issue and commit a named token; return the raw token."""
    with Session(engine) as session:
        raw, _ = issue_token(session=session, role=role, name=name, at=T0 - timedelta(days=1))
        session.commit()
    return raw


def csrf_of(html: str) -> str:
    """Return the first CSRF token in a rendered page."""
    found = _CSRF.search(html)
    assert found is not None, "page has no CSRF field"
    return found.group(1)


def login(client: TestClient, token: str) -> Any:
    """Log in through the form (GET for the login CSRF cookie, then POST)."""
    page = client.get("/console/login")
    return client.post(
        "/console/login",
        data={"token": token, "login_csrf": csrf_of(page.text)},
        follow_redirects=False,
    )


def logged_in(client: TestClient, token: str) -> str:
    """Log in and return the session's CSRF token (read from the budget page)."""
    response = login(client, token)
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/console/budget").text)


def seed_consents(api: TestClient, edge_token: str, subjects: int) -> list[str]:
    """Post grants (and one withdrawal per fifth subject) for ``subjects`` pseudonyms."""
    pseudonyms = [make_pseudonym(f"console-{i}") for i in range(subjects)]
    events = []
    for i, subject in enumerate(pseudonyms):
        events.append(make_consent_event(subject, Purpose.PERSONALIZED_SERVICE))
        events.append(make_consent_event(subject, Purpose.MARKETING, notice_version="2026-10"))
        if i % 5 == 0:
            events.append(
                make_consent_event(
                    subject,
                    Purpose.MARKETING,
                    status=ConsentStatus.WITHDRAWN,
                    occurred_at=T0 - timedelta(hours=1),
                    notice_version="2026-10",
                )
            )
    response = api.post("/api/v1/consents", json=as_json(events), headers=bearer(edge_token))
    assert response.status_code == 200, response.text
    return pseudonyms


def create_dsr(api: TestClient, officer_token: str, subject: str, kind: str) -> str:
    """Create a data-subject request through the API; return its id."""
    response = api.post(
        "/api/v1/dsr",
        json={"subject": subject, "request_type": kind, "channel": "desk"},
        headers=bearer(officer_token),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def ledger_report(
    model: str,
    epsilons: list[float],
    budget: float | None = 8.0,
    *,
    rounds_per_run: int | None = None,
    exhausted: bool = False,
) -> dict[str, Any]:
    """Return a ledger report body with one entry per cumulative ε value.

    ``rounds_per_run`` splits the entries into consecutive runs (one run when ``None``).
    """
    entries = [
        {
            "run_id": f"run-{1 if rounds_per_run is None else 1 + i // rounds_per_run}",
            "round": i + 1,
            "model": model,
            "accountant": "prv",
            "noise_multiplier": 1.0,
            "sample_rate": 0.01,
            "steps": 100 * (i + 1),
            "delta": 1e-5,
            "epsilon_after": eps,
            "neighbouring": "add_remove",
            "sampling": "poisson",
            "level": "sample",
            "recorded_at": (T0 + timedelta(minutes=i)).isoformat(),
        }
        for i, eps in enumerate(epsilons)
    ]
    return {
        "model": model,
        "epsilon": epsilons[-1],
        "delta": 1e-5,
        "accountant": "prv",
        "budget": budget,
        "exhausted": exhausted,
        "entries": entries,
    }
