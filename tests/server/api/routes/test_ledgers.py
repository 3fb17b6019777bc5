from __future__ import annotations

from fastapi.testclient import TestClient

from models import EdgeCredential

from ...factories import ADMIN_TOKEN, AGENT_TOKEN, bearer

REPORT = {"model": "behaviour", "epsilon": 2.1, "delta": 1e-5, "accountant": "prv",
          "budget": 2.0, "exhausted": True, "entries": []}


def test_put_ledger_then_admin_and_agent_see_exhausted(
    api: TestClient, edge: EdgeCredential
) -> None:
    put = api.put("/api/v1/edges/me/ledger", json=REPORT, headers=bearer(edge.token))
    one = api.get(f"/api/v1/edges/{edge.edge_id}/ledger", headers=bearer(AGENT_TOKEN))
    every = api.get("/api/v1/ledgers", headers=bearer(ADMIN_TOKEN))
    assert put.status_code == 200
    assert [(x["model"], x["exhausted"], x["channel"]) for x in one.json()] == [
        ("behaviour", True, "web")
    ]
    assert every.json() == one.json()


def test_get_ledger_unknown_edge_is_404(api: TestClient) -> None:
    response = api.get("/api/v1/edges/unknown/ledger", headers=bearer(ADMIN_TOKEN))
    assert response.status_code == 404


def test_put_ledger_needs_edge_role(api: TestClient) -> None:
    response = api.put("/api/v1/edges/me/ledger", json=REPORT, headers=bearer(ADMIN_TOKEN))
    assert response.status_code == 403
