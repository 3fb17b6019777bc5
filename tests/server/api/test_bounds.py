"""Valid-shaped but unrepresentable input gets a clean 422, never a 5xx (issue 13, item 2).

Integers past 64 bits in query parameters, times at the ends of the range in queries, uploads
and consent events, integers past float range as field values and ``1e400`` in a ledger
report used to crash the server. Every route's integer parameters are bounded (an OpenAPI
check keeps new routes honest) and every time goes through one bounded type.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from models import INT64_MAX, EdgeCredential

from ..factories import ADMIN_TOKEN, bearer, make_consent_event, make_pseudonym

TOO_BIG = str(INT64_MAX + 1)
EARLY = "0001-01-01T00:00:00+14:00"
LATE = "9999-12-31T23:59:59-12:00"
SUBJECT = make_pseudonym("bounds")


@pytest.mark.parametrize(
    "query",
    [
        f"/audit/checkpoints?before_size={TOO_BIG}",
        f"/audit/entries?cursor={TOO_BIG}",
        f"/audit/entries?seq_from={TOO_BIG}",
        f"/audit/entries?seq_to={TOO_BIG}",
        f"/audit/export?from=1&to={TOO_BIG}",
        "/audit/entries?at_from=" + EARLY.replace("+", "%2B"),
        f"/audit/entries?at_to={LATE}",
        "/dsr?due_before=" + EARLY.replace("+", "%2B"),
    ],
)
def test_unrepresentable_query_values_are_422_without_echo(api: TestClient, query: str) -> None:
    response = api.get(f"/api/v1{query}", headers=bearer(ADMIN_TOKEN))
    assert response.status_code == 422, response.text
    assert TOO_BIG not in response.text and "9999-12-31" not in response.text


def _event(**change: object) -> dict[str, object]:
    event = json.loads(make_consent_event(SUBJECT).model_dump_json())
    event.update(change)
    return event


@pytest.mark.parametrize("change", [{"occurred_at": EARLY}, {"expires_at": LATE}])
def test_consent_events_at_the_ends_of_time_are_422(
    api: TestClient, edge: EdgeCredential, change: dict[str, object]
) -> None:
    response = api.post("/api/v1/consents", json=[_event(**change)], headers=bearer(edge.token))
    assert response.status_code == 422, response.text
    good = api.post("/api/v1/consents", json=[_event()], headers=bearer(edge.token))
    assert good.status_code == 200


@pytest.mark.parametrize(
    ("value", "computed_at", "status"),
    [(10**400, "2026-11-01T00:00:00+00:00", 422), (5, EARLY, 422), (5, LATE, 422)],
)
def test_field_values_and_times_out_of_range_are_refused(
    api: TestClient, edge: EdgeCredential, value: int, computed_at: str, status: int
) -> None:
    assert api.post("/api/v1/consents", json=[_event()], headers=bearer(edge.token)).is_success
    upload = {"purpose": "personalized_service", "fields": [
        {"name": "feature.monetary_90d", "value": value, "computed_at": computed_at}]}  # fmt: skip
    response = api.put(f"/api/v1/subjects/{SUBJECT}/profile", json=upload,
                       headers={**bearer(edge.token), "Idempotency-Key": "b1"})  # fmt: skip
    assert response.status_code == status, response.text
    assert str(10**400)[:20] not in response.text


def test_an_infinite_epsilon_in_a_ledger_report_is_422(
    api: TestClient, edge: EdgeCredential
) -> None:
    body = b'{"model": "behaviour", "epsilon": 1e400, "delta": 1e-5, "accountant": "rdp"}'
    headers = {**bearer(edge.token), "Content-Type": "application/json"}
    response = api.put("/api/v1/edges/me/ledger", content=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["problems"][0]["type"] == "finite_number"


def test_every_integer_parameter_of_every_route_is_bounded_to_64_bits(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    unbounded = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                options = parameter["schema"].get("anyOf", [parameter["schema"]])
                for option in options:
                    if option.get("type") == "integer" and option.get("maximum", 2**64) > INT64_MAX:
                        unbounded.append(f"{method.upper()} {path} {parameter['name']}")
    assert unbounded == []
