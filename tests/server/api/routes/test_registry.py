from __future__ import annotations

import hashlib
from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models import EdgeCredential, weights_from_bytes, weights_to_bytes
from server.crud.model_registry import publish_version, record_version_metrics
from server.crud.training import start_run
from server.tables.model_version import ArchitectureSpec, ArraySpec

from ...factories import ADMIN_TOKEN, AGENT_TOKEN, T0, bearer

FIELDS = {"id", "model", "version", "run_id", "server_round", "epsilon", "delta", "metrics",
          "architecture", "sha256", "created_at"}  # fmt: skip
ARCHITECTURE = ArchitectureSpec(
    task="text",
    config={"text-vocabulary": 8000, "text-buckets": 0},
    arrays=[ArraySpec(name="head.weight", shape=[4, 2])],
)


def _weights(value: float) -> bytes:
    return weights_to_bytes({"head.weight": np.full((4, 2), value, dtype=np.float32)})


@pytest.fixture()
def published(memory_engine: Engine) -> str:
    """Two text versions (v2 evaluated) and one behaviour version; returns the run id."""
    with Session(memory_engine) as session:
        run_id = start_run(session=session, model="text", config={}, num_rounds=2, started_at=T0)
        for server_round, (model, value) in enumerate(
            [("text", 1.0), ("text", 2.0), ("behaviour", 3.0)], start=1
        ):
            architecture = ARCHITECTURE.model_copy(update={"task": model})
            publish_version(session=session, model=model, run_id=run_id,
                            server_round=server_round, weights=_weights(value),
                            architecture=architecture, epsilon=0.5 * server_round, delta=1e-5,
                            created_at=T0 + timedelta(minutes=server_round))  # fmt: skip
        record_version_metrics(session=session, model="text", version=2,
                               metrics={"eval-auc": 0.8})  # fmt: skip
    return run_id


def test_list_models_for_readers_and_edges_metadata_only(
    api: TestClient, edge: EdgeCredential, published: str
) -> None:
    for token in (AGENT_TOKEN, ADMIN_TOKEN, edge.token):
        response = api.get("/api/v1/models", headers=bearer(token))
        assert response.status_code == 200
        body = response.json()
        assert [(v["model"], v["version"]) for v in body] == [
            ("behaviour", 1), ("text", 2), ("text", 1)]  # fmt: skip
        assert all(set(v) == FIELDS for v in body)
    text = api.get("/api/v1/models", params={"model": "text", "limit": 1},
                   headers=bearer(AGENT_TOKEN)).json()  # fmt: skip
    assert len(text) == 1 and text[0]["version"] == 2 and text[0]["run_id"] == published
    assert text[0]["metrics"] == {"eval-auc": 0.8} and text[0]["epsilon"] == 1.0
    assert text[0]["architecture"] == ARCHITECTURE.model_dump(mode="json")


def test_list_models_refuses_a_malformed_model_name(api: TestClient) -> None:
    response = api.get("/api/v1/models", params={"model": "13800138000"},
                       headers=bearer(AGENT_TOKEN))  # fmt: skip
    assert response.status_code == 422 and "13800138000" not in response.text


def test_latest_model_and_unknown_model_is_404(
    api: TestClient, edge: EdgeCredential, published: str
) -> None:
    latest = api.get("/api/v1/models/text/latest", headers=bearer(edge.token))
    missing = api.get("/api/v1/models/zh-name/latest", headers=bearer(AGENT_TOKEN))
    assert latest.status_code == 200 and latest.json()["version"] == 2
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found" and "zh-name" not in missing.text


def test_weights_download_for_edges_with_version_and_checksum_headers(
    api: TestClient, edge: EdgeCredential, published: str
) -> None:
    response = api.get("/api/v1/models/text/versions/2/weights", headers=bearer(edge.token))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-model-version"] == "text:v2"
    assert response.headers["x-content-sha256"] == hashlib.sha256(response.content).hexdigest()
    loaded = weights_from_bytes(response.content)
    assert np.array_equal(loaded["head.weight"], np.full((4, 2), 2.0, dtype=np.float32))
    admin = api.get("/api/v1/models/behaviour/versions/1/weights", headers=bearer(ADMIN_TOKEN))
    assert admin.status_code == 200 and admin.headers["x-model-version"] == "behaviour:v1"


def test_weights_download_refuses_agents_and_anonymous_and_unknown_versions(
    api: TestClient, edge: EdgeCredential, published: str
) -> None:
    url = "/api/v1/models/text/versions/{}/weights"
    agent = api.get(url.format(1), headers=bearer(AGENT_TOKEN))
    anonymous = api.get(url.format(1))
    missing = api.get(url.format(9), headers=bearer(edge.token))
    zero = api.get(url.format(0), headers=bearer(edge.token))
    assert agent.status_code == 403 and agent.json()["error"] == "forbidden"
    assert anonymous.status_code == 401
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert zero.status_code == 422


def test_weights_and_metadata_answers_conform_to_the_openapi_document(
    api: TestClient, edge: EdgeCredential, published: str
) -> None:
    import schemathesis
    import schemathesis.checks as checks

    schema = schemathesis.openapi.from_dict(api.app.openapi())  # type: ignore[attr-defined]
    conformance = [checks.status_code_conformance, checks.content_type_conformance,
                   checks.response_schema_conformance]  # fmt: skip
    for path, params in (
        ("/api/v1/models/{model}/versions/{version}/weights", {"model": "text", "version": 2}),
        ("/api/v1/models/{model}/latest", {"model": "text"}),
        ("/api/v1/models", {}),
    ):
        case = schema[path]["GET"].Case(path_parameters=params)
        url = path.format(**params)
        response = api.get(url, headers=bearer(edge.token))
        assert response.status_code == 200
        case.validate_response(response, checks=conformance)
