from __future__ import annotations

from fastapi.testclient import TestClient

from privacy import VerifyKey


def test_signing_key_is_public_and_parses(api: TestClient) -> None:
    response = api.get("/api/v1/signing-key")

    assert response.status_code == 200
    body = response.json()
    key = VerifyKey.from_text(body["public_key"])
    assert body["algorithm"] == "Ed25519" and body["key_id"] == key.key_id
