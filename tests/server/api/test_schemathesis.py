"""Property-based API fuzzing with Schemathesis: every operation, a token of every role.

Schemathesis generates requests from the app's own OpenAPI document; each answer must not
be a 5xx and must conform to the document (status, content type, body schema). The CI run
is one generated request per operation and role (about two minutes, so the module is marked
slow and ``.ci/run`` runs it among its bounded slow tests; ``pytest -m slow
tests/server/api/test_schemathesis.py`` runs it locally); ``FEDPROFILE_FUZZ_EXAMPLES=N``
raises it for a release check (``docs/deploy.md``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
import schemathesis.checks as checks
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume
from hypothesis import settings as hyp_settings

from server.config import ServerSettings
from server.db import create_db_engine, upgrade_database
from server.main import create_app

from ..factories import (
    ADMIN_TOKEN,
    AGENT_TOKEN,
    CONTROLLER,
    ENROLLMENT_TOKEN,
    bearer,
    make_pseudonym,
)

#: What the acceptance asks: no 5xx, and every answer as the document says (status, content
#: type, body). The auth-probing checks re-send requests through Schemathesis's own
#: transport, which cannot reach this in-process app; the authorization matrix test covers
#: who may call what.
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]
ROLES = ("admin", "agent", "edge", "compliance_officer", "analyst", "subject", "anonymous")
EXAMPLES = int(os.environ.get("FEDPROFILE_FUZZ_EXAMPLES", "1"))

pytestmark = pytest.mark.slow

schema = schemathesis.openapi.from_dict(create_app().openapi())


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict]]:
    """One migrated SQLite server for the whole module and a token of every role."""
    tmp = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{tmp / 'server.sqlite'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    settings = ServerSettings(
        database_url=url, enrollment_token=ENROLLMENT_TOKEN, admin_token=ADMIN_TOKEN,
        agent_token=AGENT_TOKEN, master_key_path=tmp / "master.key",
        signing_key_path=tmp / "signing.pem", auth_failure_limit=10**9, **CONTROLLER,
    )  # fmt: skip
    app = create_app(settings, engine=engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        tokens: dict[str, str | None] = {"admin": ADMIN_TOKEN, "agent": AGENT_TOKEN,
                                         "anonymous": None}  # fmt: skip
        edge = client.post("/api/v1/edges", json={"name": "fuzz-edge", "channel": "web"},
                           headers={"X-Enrollment-Token": ENROLLMENT_TOKEN})  # fmt: skip
        tokens["edge"] = edge.json()["token"]
        for role, extra in (("compliance_officer", {"name": "officer-1"}),
                            ("analyst", {"name": "analyst-1"}),
                            ("subject", {"subject": make_pseudonym("fuzz")})):  # fmt: skip
            issued = client.post("/api/v1/tokens", json={"role": role, **extra},
                                 headers=bearer(ADMIN_TOKEN))  # fmt: skip
            assert issued.status_code == 201, issued.text
            tokens[role] = issued.json()["token"]
        yield client, tokens
    engine.dispose()


def _send(client: TestClient, case: Any, token: str | None) -> Any:
    """Send ``case`` as the role's caller (the case carries the header, so checks see it)."""
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    # HTTP/1.1 header values are bytes in Latin-1; a generated value outside it cannot be sent.
    assume(all(str(v).isascii() for v in headers.values()))
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    case.headers = headers
    return client.request(**case.as_transport_kwargs(base_url="http://testserver"))


@pytest.mark.filterwarnings("ignore:Setting per-request cookies:DeprecationWarning")
@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@hyp_settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
def test_no_operation_answers_5xx_or_breaks_its_schema(
    case: Any, role: str, fuzz_target: tuple[TestClient, dict]
) -> None:
    client, tokens = fuzz_target
    response = _send(client, case, tokens[role])
    case.validate_response(response, checks=CHECKS)


def test_the_fuzzer_reaches_every_operation() -> None:
    fuzzed = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    routes = {(method, path)
              for path, item in create_app().openapi()["paths"].items()
              for method in (m.upper() for m in item)}  # fmt: skip
    assert fuzzed == routes and len(fuzzed) >= 40
