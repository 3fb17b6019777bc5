"""Every server error class has a status and documented code; bodies never echo inputs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import server.errors as errors_module
from consent import ConsentError, FieldNotCataloguedError, PurposeNotRegisteredError
from server.api.errors import ERROR_HELP, STATUS, describe_error
from server.errors import (
    ConsentRefusedError,
    IdempotencyConflictError,
    NotFoundError,
    ServerError,
)

from ..factories import ADMIN_TOKEN, bearer


def _subclasses(cls: type[ServerError]) -> list[type[ServerError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


@pytest.mark.parametrize("cls", _subclasses(ServerError), ids=lambda c: c.__name__)
def test_every_server_error_has_status_and_help(cls: type[ServerError]) -> None:
    assert cls in STATUS
    assert ERROR_HELP.get(cls.code)


def test_every_error_class_is_defined_in_server_errors() -> None:
    assert {c.__module__ for c in _subclasses(ServerError)} == {errors_module.__name__}


def test_validation_error_body_lists_rules_without_input(api: TestClient) -> None:
    secret_like = "张三-13800138000"
    response = api.post(
        "/api/v1/edges", json={"name": secret_like, "channel": "web"}, headers=bearer(ADMIN_TOKEN)
    )
    body = response.json()
    assert response.status_code == 422 and body["error"] == "invalid_request"
    assert body["problems"][0]["loc"] == ["body", "name"]
    assert "13800138000" not in response.text


def test_unknown_route_has_common_body(api: TestClient) -> None:
    response = api.get("/api/v1/nowhere")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (IdempotencyConflictError(), 409, "idempotency_conflict"),
        (ConsentRefusedError(refused=[], total=1), 403, "consent_refused"),
        (NotFoundError(kind="edge", ref="e1"), 404, "not_found"),
        (PurposeNotRegisteredError("upselling", known=["marketing"]), 422,
         "purpose_not_registered"),
        (FieldNotCataloguedError("tag.x"), 422, "consent_error"),
    ],
    ids=["conflict", "refused", "not-found", "purpose", "other-consent-error"],
)
def test_describe_error_gives_the_handlers_status_and_code(
    exc: ServerError | ConsentError, status: int, code: str
) -> None:
    assert describe_error(exc)[0] == status
    assert describe_error(exc)[1]["error"] == code
