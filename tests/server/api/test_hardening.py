"""Hostile and malformed requests get clean refusals (issue 13, items 3, 4 and 6).

Each test is written as the bad input: oversized bodies, NUL characters and lone surrogates,
token guessing, ids that are really phone numbers, identifier-shaped values and labels,
field values out of their catalogued type, and future ``computed_at``. Storage-facing cases
run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session

from models import EdgeCredential
from server.api.errors import ERROR_HELP
from server.config import ServerSettings
from server.db import create_db_engine, upgrade_database
from server.main import create_app
from server.tables.audit_entry import AuditEntry
from server.tables.profile_field import ProfileField

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
    make_pseudonym,
)

SUBJECT = make_pseudonym("hardening")
PHONE = "13812345678"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stack(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[TestClient, EdgeCredential, object]]:
    """The API on a migrated SQLite file or PostgreSQL schema, one edge, consent on file."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade_database(url)
    engine = create_db_engine(url)
    settings = ServerSettings(
        database_url=url, enrollment_token=ENROLLMENT_TOKEN, admin_token=ADMIN_TOKEN,
        agent_token=AGENT_TOKEN, master_key_path=tmp_path / "master.key",
        signing_key_path=tmp_path / "signing.pem", max_body_bytes=256 * 1024, **CONTROLLER,
    )  # fmt: skip
    app = create_app(settings, engine=engine, clock=FakeClock())
    try:
        with TestClient(app) as client:
            answer = client.post("/api/v1/edges", json={"name": "web-h", "channel": "web"},
                                 headers={"X-Enrollment-Token": ENROLLMENT_TOKEN})  # fmt: skip
            edge = EdgeCredential.model_validate(answer.json())
            events = [make_consent_event(SUBJECT)]
            client.post("/api/v1/consents", json=as_json(events),
                        headers=bearer(edge.token)).raise_for_status()  # fmt: skip
            yield client, edge, engine
    finally:
        engine.dispose()


def _field(name: str, value: object, **extra: object) -> dict[str, object]:
    return {"name": name, "value": value, "confidence": 0.8,
            "computed_at": (T0 - timedelta(hours=1)).isoformat(), **extra}  # fmt: skip


def _put(client: TestClient, edge: EdgeCredential, fields: list[dict[str, object]], key: str):
    return client.put(
        f"/api/v1/subjects/{SUBJECT}/profile",
        content=json.dumps({"purpose": "personalized_service", "fields": fields}),
        headers={**bearer(edge.token), "Idempotency-Key": key,
                 "Content-Type": "application/json"},  # fmt: skip
    )


def _stored(engine: object) -> list[ProfileField]:
    with Session(engine) as session:  # type: ignore[arg-type]
        return list(session.scalars(select(ProfileField)))


# ------------------------------------------------------------------ item 3: body limits


def test_an_anonymous_oversized_body_is_refused_before_it_is_parsed(
    stack: tuple[TestClient, EdgeCredential, object],
) -> None:
    client, _, engine = stack
    huge = json.dumps({"name": "x" * (200 * 1024), "channel": "web"})

    answer = client.post("/api/v1/edges", content=huge,
                         headers={"Content-Type": "application/json"})  # fmt: skip

    assert answer.status_code == 413
    assert answer.json()["error"] == "body_too_large"
    assert answer.json()["limit_bytes"] == 64 * 1024
    assert "xxxx" not in answer.text


def test_a_credentialed_body_above_the_configured_limit_is_refused(
    stack: tuple[TestClient, EdgeCredential, object],
) -> None:
    client, edge, engine = stack
    big = {"purpose": "personalized_service",
           "fields": [_field("feature.recency_days", 3)],
           "pad": "y" * (300 * 1024)}  # fmt: skip

    answer = client.put(f"/api/v1/subjects/{SUBJECT}/profile", content=json.dumps(big),
                        headers={**bearer(edge.token), "Idempotency-Key": "big-1",
                                 "Content-Type": "application/json"})  # fmt: skip

    assert answer.status_code == 413 and answer.json()["limit_bytes"] == 256 * 1024
    assert _stored(engine) == []


def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit() -> None:
    """Without Content-Length the middleware counts; the app never reads past the limit."""
    import anyio

    from server.api.body_limit import BodyLimitMiddleware

    chunk = b"a" * 8192
    handed_out = 0

    async def receive() -> dict[str, object]:
        nonlocal handed_out
        handed_out += 1
        return {"type": "http.request", "body": chunk, "more_body": handed_out < 10_000}

    async def app(scope: dict, receive_, send) -> None:  # type: ignore[no-untyped-def]
        while (await receive_()).get("more_body"):
            pass

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    middleware = BodyLimitMiddleware(app, limits=lambda: (1 << 20, 64 * 1024))
    scope = {"type": "http", "method": "POST", "path": "/api/v1/edges", "headers": []}
    anyio.run(middleware, scope, receive, send)

    assert sent[0]["status"] == 413
    assert handed_out == 64 * 1024 // len(chunk) + 1  # stopped at the first chunk past 64 KiB


# ------------------------------------------------------------------ item 6: NUL, surrogates


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('"a\\u0000b"', "NUL character"),
        ('"a\\ud800"', "unpaired surrogate"),
        ('"\\udc00a"', "unpaired surrogate"),
        ('"\\ud800\\\\udc00"', "unpaired surrogate"),  # the second is text, not an escape
    ],
)
def test_strings_no_database_can_hold_are_refused_with_422(
    stack: tuple[TestClient, EdgeCredential, object], text: str, problem: str
) -> None:
    client, edge, engine = stack
    body = ('{"purpose": "personalized_service", "fields": [{"name": "feature.recency_days", '
            '"value": 3, "computed_at": "2026-11-20T08:00:00Z", "explanation": '
            f'[{{"feature": "recency_days", "weight": 0.1, "label_en": {text}}}]}}]}}')  # fmt: skip

    answer = client.put(f"/api/v1/subjects/{SUBJECT}/profile", content=body,
                        headers={**bearer(edge.token), "Idempotency-Key": "nul-1",
                                 "Content-Type": "application/json"})  # fmt: skip

    assert answer.status_code == 422, answer.text
    assert answer.json()["problems"][0]["msg"].startswith(problem)
    assert _stored(engine) == []


def test_paired_surrogates_and_escaped_backslashes_are_fine() -> None:
    from server.api.text_guard import unsafe_json_text

    assert unsafe_json_text(b'{"a": "\\ud83d\\ude00", "b": "\\\\u0000"}') is None
    assert unsafe_json_text(b'{"a": "\\u00e9"}') is None


def test_nul_in_a_query_or_path_is_refused(
    stack: tuple[TestClient, EdgeCredential, object],
) -> None:
    client, _, _ = stack
    read = client.get(f"/api/v1/subjects/{SUBJECT}/profile?purpose=marketing%00x",
                      headers=bearer(AGENT_TOKEN))  # fmt: skip
    path = client.get("/api/v1/dsr/abc%00def", headers=bearer(ADMIN_TOKEN))

    assert read.status_code == 422 and read.json()["problems"][0]["loc"] == ["query"]
    assert path.status_code == 422 and path.json()["problems"][0]["loc"] == ["path"]


# ------------------------------------------------------------------ item 6: no echo


def test_error_bodies_never_repeat_the_id_a_caller_sent(
    stack: tuple[TestClient, EdgeCredential, object],
) -> None:
    client, _, _ = stack
    missing = client.get(f"/api/v1/dsr/{PHONE}", headers=bearer(ADMIN_TOKEN))
    taken = client.post("/api/v1/edges", json={"name": "web-h", "channel": "web"},
                        headers={"X-Enrollment-Token": ENROLLMENT_TOKEN})  # fmt: skip

    assert missing.status_code == 404 and PHONE not in missing.text
    assert taken.status_code == 409 and "web-h" not in taken.text


# ------------------------------------------------------------------ item 6: guessing


def test_token_guessing_is_locked_out_and_audited_once(
    stack: tuple[TestClient, EdgeCredential, object],
) -> None:
    client, _, engine = stack
    answers = [client.get("/api/v1/ledgers", headers=bearer(f"wrong-token-{i:04d}-xxxxxxxx"))
               for i in range(25)]  # fmt: skip
    valid = client.get("/api/v1/ledgers", headers=bearer(ADMIN_TOKEN))

    assert [a.status_code for a in answers] == [401] * 20 + [429] * 5
    assert int(answers[-1].headers["Retry-After"]) > 0
    assert answers[-1].json()["error"] == "too_many_failed_logins"
    assert valid.status_code == 429  # the lockout holds whatever the client sends
    with Session(engine) as session:  # type: ignore[arg-type]
        throttled = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "auth.throttle")
        ).all()
    assert len(throttled) == 1
    detail = json.loads(throttled[0].detail_json)
    assert detail == {"failures": 20, "window_s": 60.0, "lockout_s": 300.0}
    assert throttled[0].actor.startswith("client:") and "testclient" not in throttled[0].actor


# ------------------------------------------------------------------ item 6: headers, OpenAPI


def test_console_and_api_answers_carry_security_headers(
    stack: tuple[TestClient, EdgeCredential, object],
) -> None:
    client, _, _ = stack
    page = client.get("/console/login")
    api = client.get("/api/v1/health")

    for answer in (page, api):
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert api.headers["content-security-policy"].startswith("default-src 'none'")


def test_console_templates_need_no_inline_style_or_script() -> None:
    from server.console.charts import PALETTE

    templates = Path(__file__).resolve().parents[3] / "server" / "console" / "templates"
    css = (templates.parent / "static" / "console.css").read_text(encoding="utf-8")
    for template in templates.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert 'style="' not in text and "<style" not in text, template.name
        assert "<script>" not in text and "onclick=" not in text, template.name
    for index, colour in enumerate(PALETTE):
        assert f".swatch-{index} {{ background: {colour}; }}" in css


def test_openapi_documents_every_error_status_and_code() -> None:
    schema = create_app().openapi()
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            documented = set(operation["responses"])
            missing = {"400", "401", "403", "404", "409", "413", "422", "429", "503"} - documented
            assert not missing, f"{method.upper()} {path} lacks {sorted(missing)}"
            body = operation["responses"]["404"]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorBody"}
    for code in ERROR_HELP:
        assert f"`{code}`" in schema["info"]["description"]


# ------------------------------------------------------------------ item 4: typed values


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        (_field("feature.preferred_category", "张伟 身份证11010519491231002X"), "invalid_value"),
        (_field("feature.monetary_90d", 13812345678), "invalid_value"),
        (_field("feature.frequency_90d", -1), "invalid_value"),
        (_field("feature.recency_days", 3,
                explanation=[{"feature": "orders", "weight": 0.1}]),  # fmt: skip
         "uncatalogued_explanation"),
        (_field("feature.recency_days", 3,
                explanation=[{"feature": "recency_days", "weight": 0.1,
                              "label_zh": f"客户{PHONE}"}]),  # fmt: skip
         "uncatalogued_explanation"),
        ({**_field("feature.recency_days", 3), "computed_at": "3000-01-01T00:00:00Z"},
         "invalid_request"),
        ({**_field("feature.recency_days", 3),
          "computed_at": (T0 + timedelta(days=1)).isoformat()}, "computed_in_future"),
    ],
)
def test_untyped_or_uncatalogued_values_are_refused_without_echo(
    stack: tuple[TestClient, EdgeCredential, object], field: dict[str, object], reason: str
) -> None:
    client, edge, engine = stack

    answer = _put(client, edge, [field], "typed-1")

    assert answer.status_code == 422, answer.text
    body = answer.json()
    if reason == "invalid_request":
        assert body["error"] == "invalid_request"
    else:
        assert body["error"] == "invalid_field_value"
        assert [r["reason"] for r in body["refused"]] == [reason]
    for secret in (PHONE, "11010519491231002X", "张伟", "13812345678"):
        assert secret not in answer.text
    assert _stored(engine) == []


def test_a_typed_upload_is_stored(stack: tuple[TestClient, EdgeCredential, object]) -> None:
    client, edge, engine = stack
    fields = [
        _field("feature.preferred_category", "books"),
        _field("feature.monetary_90d", 1234.5),
        _field("tag.high_interaction_willingness", True,
               explanation=[{"feature": "sessions_30d", "weight": 0.4,
                             "label_zh": "近30天会话数", "label_en": ""}]),  # fmt: skip
    ]

    answer = _put(client, edge, fields, "typed-ok")

    assert answer.status_code == 200, answer.text
    assert len(_stored(engine)) == 3


def test_every_catalogued_explanation_label_passes_the_identifier_screen() -> None:
    from models.tags import FEATURE_INFO
    from privacy.pii_screen import pii_shapes

    for name, info in FEATURE_INFO.items():
        assert not pii_shapes(name) and not pii_shapes(info.label_zh)
        assert not pii_shapes(info.label_en)


def test_error_code_table_counts_every_row() -> None:
    rows = [r for r in create_app().openapi()["info"]["description"].splitlines()
            if r.startswith("| `")]  # fmt: skip
    assert len(rows) == len(ERROR_HELP)


# ------------------------------------------------------------------ item 4: property test

_PLANTS = st.sampled_from(
    [PHONE, "138 1234 5678", "+86 139-1234-5678", "11010519491231002X", "6222021234567890123",
     "zhang.wei@example.com", "li＠qq．com", "一三八一二三四五六七八", "０２０－１４５６２２６２"]
)  # fmt: skip


@hyp_settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    plant=_PLANTS,
    prefix=st.text(max_size=8),
    suffix=st.text(max_size=8),
    where=st.sampled_from(["value", "label_zh", "label_en", "number"]),
    field=st.sampled_from(["feature.preferred_category", "feature.monetary_90d",
                           "feature.recency_days", "finance.payment_risk_level"]),  # fmt: skip
)
def test_planted_identifiers_are_never_stored(
    stack: tuple[TestClient, EdgeCredential, object],
    plant: str, prefix: str, suffix: str, where: str, field: str,
) -> None:
    client, edge, engine = stack
    text = prefix + plant + suffix
    if where == "number":
        digits = "".join(ch for ch in plant if ch.isdigit())
        value: object = int(digits) if digits else text
        item = _field(field, value)
    elif where == "value":
        item = _field(field, text)
    else:
        explanation = {"feature": "recency_days", "weight": 0.2, where: text[:64]}
        item = _field("feature.recency_days", 3, explanation=[explanation])

    answer = _put(client, edge, [item], f"plant-{abs(hash((text, where, field)))}")

    assert answer.status_code in (403, 422), answer.text
    assert plant not in answer.text
    stored = json.dumps(
        [[json.loads(row.value_json or "null"), json.loads(row.explanation_json)]
         for row in _stored(engine)],
        ensure_ascii=False,
    )  # fmt: skip
    assert plant not in stored
