from __future__ import annotations

import logging

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from server.config import ServerSettings
from server.main import RedactSubjectPathFilter, configure_logging, create_app

from .factories import make_pseudonym


def test_create_app_mounts_every_api_route() -> None:
    app = create_app(ServerSettings(database_url="sqlite://"))
    paths = {
        (path, method.upper())
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    expected = {
        ("/api/v1/edges", "POST"),
        ("/api/v1/consents", "POST"),
        ("/api/v1/subjects/{subject}/profile", "PUT"),
        ("/api/v1/subjects/{subject}/profile", "GET"),
        ("/api/v1/edges/me/ledger", "PUT"),
        ("/api/v1/edges/{edge_id}/ledger", "GET"),
        ("/api/v1/ledgers", "GET"),
        ("/api/v1/training-runs", "GET"),
        ("/api/v1/health", "GET"),
        ("/api/v1/audit/verify", "GET"),
    }
    assert expected <= paths


def test_create_app_without_lifespan_answers_503() -> None:
    client = TestClient(create_app(ServerSettings(database_url="sqlite://")))
    response = client.get("/api/v1/training-runs", headers={"Authorization": "Bearer x"})
    assert response.status_code == 503 and response.json()["error"] == "database_unavailable"


def test_create_app_builds_and_disposes_its_own_engine(memory_engine: Engine) -> None:
    app = create_app(ServerSettings(database_url="sqlite://"))
    with TestClient(app):
        assert app.state.engine is not None
    assert app.state.engine is None


def test_redact_filter_hides_subject_segment() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/api/v1/subjects/+8613800138000/profile?purpose=x", "1.1", 422),
        None,
    )
    RedactSubjectPathFilter().filter(record)
    assert "13800138000" not in record.getMessage()
    assert "/api/v1/subjects/<subject>/profile?purpose=x" in record.getMessage()


@pytest.mark.parametrize(
    "path",
    [
        "/console/consent?subject={s}",
        "/console/consent/{s}/receipts/5e1c0a7e-0000-5000-8000-000000000000",
        "/api/v1/audit/entries?action=profile.read&subject={s}&limit=5",
        "/api/v1/audit/entries?subject=%2B8613800138000",
    ],
)
def test_redact_filter_hides_pseudonyms_in_queries_and_console_paths(path: str) -> None:
    subject = make_pseudonym("someone")
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", path.format(s=subject), "1.1", 200), None,
    )  # fmt: skip
    RedactSubjectPathFilter().filter(record)
    line = record.getMessage()
    assert subject not in line and subject[3:] not in line and "8613800138000" not in line
    assert "<subject>" in line and line.count("GET") == 1


@pytest.mark.parametrize("subject", [make_pseudonym("x")])
def test_configure_logging_filter_survives_uvicorn_config(subject: str) -> None:
    configure_logging("INFO")
    uvicorn.Config(create_app(ServerSettings(database_url="sqlite://")), log_level="info")
    filters = logging.getLogger("uvicorn.access").filters
    assert any(isinstance(f, RedactSubjectPathFilter) for f in filters)
