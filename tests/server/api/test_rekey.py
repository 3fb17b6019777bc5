"""``POST /api/v1/edges/me/rekey``: edge-only, validated, idempotent, conflicts refused whole."""

from __future__ import annotations

from fastapi.testclient import TestClient

from models import EdgeCredential

from ..factories import (
    ADMIN_TOKEN,
    AGENT_TOKEN,
    as_json,
    bearer,
    make_consent_event,
    make_pseudonym,
    make_upload,
)

A, A2 = make_pseudonym("api-rekey-a"), make_pseudonym("api-rekey-a2")
B, B2 = make_pseudonym("api-rekey-b"), make_pseudonym("api-rekey-b2")
KIDS = {"from_kid": "tk_" + "a" * 16, "to_kid": "tk_" + "b" * 16}
PATH = "/api/v1/edges/me/rekey"


def _store(api: TestClient, edge: EdgeCredential, subject: str) -> None:
    """Consent and one upload for ``subject``, sent by the edge."""
    response = api.post(
        "/api/v1/consents", json=as_json([make_consent_event(subject)]), headers=bearer(edge.token)
    )
    assert response.status_code == 200, response.text
    response = api.put(
        f"/api/v1/subjects/{subject}/profile",
        json=as_json(make_upload()),
        headers={**bearer(edge.token), "Idempotency-Key": f"up-{subject[-10:]}"},
    )
    assert response.status_code == 200, response.text


def _read(api: TestClient, subject: str) -> int:
    response = api.get(
        f"/api/v1/subjects/{subject}/profile",
        params={"purpose": "personalized_service"},
        headers=bearer(AGENT_TOKEN),
    )
    return response.status_code


def _body(*pairs: tuple[str, str]) -> dict[str, object]:
    return {**KIDS, "pairs": [{"old": o, "new": n} for o, n in pairs]}


def test_rekey_when_edge_posts_pairs_then_subject_readable_under_new_pseudonym(
    api: TestClient, edge: EdgeCredential
) -> None:
    _store(api, edge, A)

    response = api.post(PATH, json=_body((A, A2), (B, B2)), headers=bearer(edge.token))

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["applied"], result["already_applied"], result["unknown"]) == (1, 0, 1)
    assert (_read(api, A2), _read(api, A)) == (200, 404)
    verify = api.get("/api/v1/audit/verify", headers=bearer(ADMIN_TOKEN))
    assert verify.status_code == 200 and verify.json()["ok"] is True


def test_rekey_when_posted_twice_then_second_reports_already_applied(
    api: TestClient, edge: EdgeCredential
) -> None:
    _store(api, edge, A)
    api.post(PATH, json=_body((A, A2)), headers=bearer(edge.token))

    again = api.post(PATH, json=_body((A, A2)), headers=bearer(edge.token))

    assert again.status_code == 200
    assert (again.json()["applied"], again.json()["already_applied"]) == (0, 1)


def test_rekey_when_new_pseudonym_taken_then_409_and_nothing_applied(
    api: TestClient, edge: EdgeCredential
) -> None:
    for subject in (A, B, B2):
        _store(api, edge, subject)

    response = api.post(PATH, json=_body((A, A2), (B, B2)), headers=bearer(edge.token))

    assert response.status_code == 409
    assert response.json()["error"] == "conflict"
    assert (_read(api, A), _read(api, A2)) == (200, 404)


def test_rekey_when_caller_not_an_edge_then_refused(api: TestClient) -> None:
    for headers in ({}, bearer(AGENT_TOKEN), bearer(ADMIN_TOKEN)):
        response = api.post(PATH, json=_body((A, A2)), headers=headers)

        assert response.status_code in (401, 403), headers


#: Malformed batches (one app for all: each case is a single request).
INVALID = {
    "duplicate old": _body((A, A2), (A, B2)),
    "chain inside the batch": _body((A, A2), (A2, B2)),
    "empty": {**KIDS, "pairs": []},
    "same key ids": {**_body((A, A2)), "to_kid": KIDS["from_kid"]},
    "raw identifier": {**KIDS, "pairs": [{"old": "13812345678", "new": A2}]},
}


def test_rekey_when_batch_invalid_then_422_without_echo(
    api: TestClient, edge: EdgeCredential
) -> None:
    for case, body in INVALID.items():
        response = api.post(PATH, json=body, headers=bearer(edge.token))

        assert response.status_code == 422, case
        assert "13812345678" not in response.text
