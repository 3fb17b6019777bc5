from __future__ import annotations

import dataclasses
import json
import random
import stat
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from client.config import ClientSettings
from client.credentials import load_credentials
from client.errors import EdgeConfigError, RegistrationError, ServerUnavailableError
from client.ingest import ingest_file
from client.outbox import content_hash, idempotency_key, retry_delay
from client.profile import build_profiles
from client.store import EdgeStore
from client.uploader import EdgeUploader
from models import ExplanationItem, LedgerReport, ProfileFieldIn, ProfileUpload
from privacy import IdentifierKind, Pseudonymizer

from .edge_factories import (
    ENROLLMENT_TOKEN,
    KEY,
    NOW,
    PHONE,
    PHONE_2,
    FakeScrubber,
    FakeServer,
    active_customer_lines,
    asgi_app,
    consent_line,
    free_port,
    uvicorn_server,
    write_jsonl,
)

A = Pseudonymizer(KEY).pseudonym(IdentifierKind.PHONE, PHONE)
B = Pseudonymizer(KEY).pseudonym(IdentifierKind.PHONE, PHONE_2)


class Clock:
    """Wall clock plus a settable offset (the store stamps queued items with the wall clock)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture()
def settings(tmp_path: Path) -> ClientSettings:
    return ClientSettings(
        edge_dir=tmp_path / "edge",
        server_url="http://testserver",
        upload_purposes=("personalized_service", "service_routing", "marketing"),
    )


@pytest.fixture()
def store(settings: ClientSettings, tmp_path: Path) -> Iterator[EdgeStore]:
    """Two customers with behaviour; A consents to personalized_service, B to nothing."""
    rows = active_customer_lines(PHONE, prefix="a") + active_customer_lines(PHONE_2, prefix="b")
    rows.append(consent_line("c1", phone=PHONE, purpose="personalized_service"))
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    with EdgeStore.for_edge_dir(settings.edge_dir) as s:
        ingest_file(
            store=s, path=path, pseudonymizer=Pseudonymizer(KEY), detector=FakeScrubber(), now=NOW
        )
        build_profiles(store=s, now=NOW)
        yield s


def _uploader(
    store: EdgeStore,
    settings: ClientSettings,
    server: FakeServer,
    clock: Clock | None = None,
    **kw: object,
) -> EdgeUploader:
    up = EdgeUploader(
        store=store,
        settings=settings,
        transport=server.transport(),
        clock=clock or Clock(),
        rng=random.Random(0),
        **kw,
    )  # type: ignore[arg-type]
    if not up.registered:
        up.register("web-1", "web", ENROLLMENT_TOKEN)
    return up


def _restamp(store: EdgeStore, subject: str) -> None:
    """Store the subject's fields again with a new computation time only (same content)."""
    store.put_profile_fields(
        [
            dataclasses.replace(f, computed_at=f.computed_at + 3600)
            for f in store.profile_fields(subject=subject)
        ]
    )


def _change(store: EdgeStore, subject: str, days: float = 1.0) -> None:
    """Change one field value of the subject (new content, new computation time)."""
    [field] = [
        f for f in store.profile_fields(subject=subject) if f.field == "feature.recency_days"
    ]
    store.put_profile_fields(
        [
            dataclasses.replace(
                field, value=float(field.value) + days, computed_at=field.computed_at + 1
            )
        ]
    )


def _puts(server: FakeServer) -> int:
    return server.upload_attempts


def _is_upload(request: httpx.Request) -> bool:
    path = request.url.path
    return (request.method == "PUT" and "/subjects/" in path) or path.endswith("/profile-uploads")


def _answer_profile_puts(status: int) -> Callable[[httpx.Request], httpx.Response | None]:
    def intercept(request: httpx.Request) -> httpx.Response | None:
        if _is_upload(request):
            return httpx.Response(status, json={"error": "injected"})
        return None

    return intercept


def test_register_when_token_valid_then_credentials_saved_0600(
    store: EdgeStore, settings: ClientSettings
) -> None:
    server = FakeServer()

    with _uploader(store, settings, server) as up:
        assert up.registered and up.edge_id == "edge_1"

    path = settings.credentials_path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_credentials(path).token == server.token  # type: ignore[union-attr]
    assert store.get_meta("edge_id") == "edge_1"
    assert server.token not in repr(up)


def test_register_when_token_wrong_then_registration_error(
    store: EdgeStore, settings: ClientSettings
) -> None:
    up = EdgeUploader(store=store, settings=settings, transport=FakeServer().transport())

    with pytest.raises(RegistrationError, match="refused the enrollment token") as info:
        up.register("web-1", "web", "wrong-token")

    assert "wrong-token" not in str(info.value)
    assert not settings.credentials_path.exists()


def test_register_when_server_down_then_server_unavailable(
    store: EdgeStore, settings: ClientSettings
) -> None:
    up = EdgeUploader(store=store, settings=settings, transport=FakeServer(down=True).transport())

    with pytest.raises(ServerUnavailableError):
        up.register("web-1", "web", ENROLLMENT_TOKEN)


def test_sync_when_not_registered_then_edge_config_error(
    store: EdgeStore, settings: ClientSettings
) -> None:
    up = EdgeUploader(store=store, settings=settings, transport=FakeServer().transport())

    with pytest.raises(EdgeConfigError, match="not registered"):
        up.sync(now=NOW)


def test_sync_when_consent_partial_then_only_allowed_fields_leave_the_edge(
    store: EdgeStore, settings: ClientSettings
) -> None:
    # Prepare
    server = FakeServer()

    # Execute
    with _uploader(store, settings, server) as up:
        report = up.sync(now=NOW)

    # Assert: A's personalized_service upload only; B has no consent at all
    assert list(server.stored) == [(A, "personalized_service")]
    sent = {f["name"] for f in server.stored[(A, "personalized_service")]["fields"]}
    catalogue_allowed = {
        "tag.high_purchasing_power",
        "tag.high_interaction_willingness",
        "tag.common_question_tendency",
        "tag.churn_risk",
        "feature.recency_days",
        "feature.frequency_90d",
        "feature.monetary_90d",
        "feature.preferred_category",
        "feature.complaints_90d",
        "feature.cs_messages_90d",
        "feature.active_days_30d",
    }
    assert sent == catalogue_allowed
    assert report.consents_sent == 1 and report.uploads_delivered == 1
    assert report.fields_uploaded == len(sent)
    assert report.fields_withheld["no_consent_for_purpose"] > 0
    assert "purpose_not_allowed_for_field" not in report.fields_withheld  # not applicable
    assert report.pending == 0 and report.failed == 0 and report.server_reachable
    assert store.consent_events(unsynced_only=True) == []


def test_sync_when_nothing_changed_then_nothing_new_enqueued_or_sent(
    store: EdgeStore, settings: ClientSettings
) -> None:
    server = FakeServer()
    with _uploader(store, settings, server) as up:
        up.sync(now=NOW)
        puts_before = _puts(server)

        again = up.sync(now=NOW)

    assert again.uploads_enqueued == 0 and again.uploads_unchanged == 1
    assert again.uploads_delivered == 0 and again.consents_sent == 0
    assert _puts(server) == puts_before


def test_sync_when_server_refuses_then_reasons_recorded_and_not_retried(
    store: EdgeStore, settings: ClientSettings
) -> None:
    # Prepare: the server never received the consent (simulated by dropping it)
    server = FakeServer()
    clock = Clock()
    with _uploader(store, settings, server, clock) as up:
        up.sync(now=NOW)  # delivers once
        _change(store, A)
        server.consents.clear()

        # Execute
        report = up.sync(now=NOW)
        clock.offset = 10_000
        later = up.sync(now=NOW)

    # Assert
    assert report.refused_by_server == {"no_consent_for_purpose": 11}  # every field sent
    assert report.uploads_delivered == 0 and report.pending == 0
    assert store.outbox_counts()["refused"] == 1
    assert later.uploads_delivered == 0 and later.refused_by_server == {}
    assert later.uploads_unchanged == 1 and later.uploads_enqueued == 0  # not re-sent


def test_sync_when_server_errors_then_backoff_and_later_delivery(
    store: EdgeStore, settings: ClientSettings
) -> None:
    # Prepare: profile PUTs answer 503 at first
    server = FakeServer(intercept=_answer_profile_puts(503))
    clock = Clock()
    with _uploader(store, settings, server, clock) as up:
        # Execute
        first = up.sync(now=NOW)
        server.intercept = None
        immediately = up.sync(now=NOW)
        clock.offset = settings.retry_max_seconds * 2
        later = up.sync(now=NOW)

    # Assert
    assert first.retried == 1 and first.pending == 1 and first.uploads_delivered == 0
    assert immediately.uploads_delivered == 0 and immediately.pending == 1  # not due yet
    assert later.uploads_delivered == 1 and later.pending == 0
    assert list(server.deliveries.values()) == [1]


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [(0, 1.5, 2.5), (1, 3.0, 5.0), (3, 12.0, 20.0), (9, 675.0, 1125.0), (40, 675.0, 1125.0)],
)
def test_retry_delay_when_attempts_grow_then_exponential_capped_with_jitter(
    settings: ClientSettings, attempts: int, low: float, high: float
) -> None:
    rng = random.Random(7)

    delays = [retry_delay(attempts, settings=settings, rng=rng) for _ in range(200)]

    assert all(low <= d <= high for d in delays)
    assert max(delays) - min(delays) > 0  # jittered


def test_sync_when_server_errors_then_item_retried_at_backoff_time(
    store: EdgeStore, settings: ClientSettings
) -> None:
    server = FakeServer(intercept=_answer_profile_puts(503))
    clock = Clock()
    with _uploader(store, settings, server, clock) as up:
        started = clock()
        up.sync(now=NOW)

    [item] = store.due(now=started + 1e9)
    assert item.attempts == 1 and item.status == "pending"
    assert store.due(now=started + 1.4) == []  # base 2 s minus 25 % jitter
    assert len(store.due(now=started + 2.6)) == 1


def test_sync_when_token_rejected_then_flagged_and_uploads_stay_queued(
    store: EdgeStore, settings: ClientSettings
) -> None:
    server = FakeServer()
    with _uploader(store, settings, server) as up:
        server.token = "rotated-" + "z" * 20

        report = up.sync(now=NOW)

    assert report.credentials_rejected and report.uploads_delivered == 0
    assert report.pending == 1 and report.failed == 0
    assert store.consent_events(unsynced_only=True) != []


def test_sync_when_client_error_then_failed_permanently(
    store: EdgeStore, settings: ClientSettings
) -> None:
    server = FakeServer(intercept=_answer_profile_puts(422))
    with _uploader(store, settings, server) as up:
        report = up.sync(now=NOW)
        server.intercept = None
        again = up.sync(now=NOW + timedelta(seconds=1))

    assert report.failed == 1 and report.pending == 0
    assert any("HTTP 422" in note for note in report.notes)
    assert again.uploads_delivered == 0 and again.failed == 1


def _withdraw(store: EdgeStore, tmp_path: Path, purpose: str = "personalized_service") -> None:
    path = write_jsonl(
        tmp_path / "w.jsonl",
        [
            consent_line(
                "c2",
                phone=PHONE,
                purpose=purpose,
                status="withdrawn",
                ts=NOW - timedelta(minutes=1),
            )
        ],
    )
    ingest_file(
        store=store, path=path, pseudonymizer=Pseudonymizer(KEY), detector=FakeScrubber(), now=NOW
    )


def test_sync_when_consent_withdrawn_before_delivery_then_superseded_never_sent(
    store: EdgeStore, settings: ClientSettings, tmp_path: Path
) -> None:
    server = FakeServer()
    with _uploader(store, settings, server) as up:
        server.down = True
        up.sync(now=NOW)  # queued, not delivered
        server.down = False
        _withdraw(store, tmp_path)

        report = up.sync(now=NOW)

    assert report.uploads_superseded == 1 and report.uploads_delivered == 0
    assert report.uploads_enqueued == 0 and report.fields_withheld["no_consent_for_purpose"] > 0
    assert server.stored == {} and _puts(server) == 0
    assert store.outbox_counts() == {
        "pending": 0,
        "delivered": 0,
        "refused": 0,
        "failed": 0,
        "superseded": 1,
    }


def test_sync_when_queued_item_lost_consent_then_superseded_at_delivery(
    store: EdgeStore, settings: ClientSettings
) -> None:
    # Prepare: an item for a subject without profile or consent (so step 2 cannot close it)
    stranger = "ps_" + "7" * 64
    upload = ProfileUpload(
        purpose="marketing",
        fields=[ProfileFieldIn(name="tag.churn_risk", value=True, computed_at=NOW)],
    )
    store.enqueue(
        kind="profile",
        idempotency_key="k-stranger",
        content_hash=content_hash(upload),
        payload=upload.model_dump(mode="json"),
        subject=stranger,
        purpose="marketing",
    )
    server = FakeServer()

    # Execute
    with _uploader(store, settings, server) as up:
        report = up.sync(now=NOW)

    # Assert
    assert report.withheld_at_delivery == 1 and report.uploads_delivered == 1  # A's upload
    assert (stranger, "marketing") not in server.stored
    assert store.outbox_counts()["superseded"] == 1


def test_sync_when_rebuilt_with_same_values_then_second_sync_queues_nothing(
    store: EdgeStore, settings: ClientSettings
) -> None:
    server = FakeServer()
    with _uploader(store, settings, server) as up:
        first = up.sync(now=NOW)
        build_profiles(store=store, now=NOW)  # a rebuild: same values
        _restamp(store, A)  # and one whose computation time moved on
        second = up.sync(now=NOW)

    assert first.uploads_enqueued == 1 and first.uploads_delivered == 1
    assert second.uploads_enqueued == 0 and second.uploads_unchanged == 1
    assert second.uploads_delivered == 0 and _puts(server) == 1
    assert store.count("outbox") == 1


def test_sync_when_content_changes_during_outage_then_only_latest_delivered(
    store: EdgeStore, settings: ClientSettings
) -> None:
    # Prepare
    server = FakeServer()
    clock = Clock()
    with _uploader(store, settings, server, clock) as up:
        # Execute: three versions queued while the server is down, then it comes back
        server.down = True
        up.sync(now=NOW)
        versions = []
        for day in (1.0, 2.0):
            _change(store, A, days=day)
            versions.append(up.sync(now=NOW))
        server.down = False
        clock.offset = settings.retry_max_seconds * 2
        back = up.sync(now=NOW)

    # Assert: no backlog of stale versions; the server got the newest once
    assert [v.uploads_superseded for v in versions] == [1, 1]
    assert [v.pending for v in versions] == [1, 1]
    assert back.uploads_delivered == 1 and _puts(server) == 1
    sent = {f["name"]: f["value"] for f in server.stored[(A, "personalized_service")]["fields"]}
    latest = {f.field: f.value for f in store.profile_fields(subject=A)}
    assert sent["feature.recency_days"] == latest["feature.recency_days"]
    assert store.outbox_counts() == {
        "pending": 0,
        "delivered": 1,
        "refused": 0,
        "failed": 0,
        "superseded": 2,
    }


def test_sync_when_outage_then_pending_and_delivered_exactly_once_after(
    store: EdgeStore, settings: ClientSettings, tmp_path: Path
) -> None:
    # Prepare: more consented subjects so several uploads queue up
    rows = [
        consent_line(f"g{p}", phone=PHONE_2, purpose=p) for p in ("marketing", "service_routing")
    ]
    rows.append(consent_line("g3", phone=PHONE, purpose="service_routing"))
    ingest_file(
        store=store,
        path=write_jsonl(tmp_path / "g.jsonl", rows),
        pseudonymizer=Pseudonymizer(KEY),
        detector=FakeScrubber(),
        now=NOW,
    )
    server = FakeServer()
    clock = Clock()

    with _uploader(store, settings, server, clock) as up:
        # Execute: server down for two syncs, then back
        server.down = True
        down1 = up.sync(now=NOW)
        down2 = up.sync(now=NOW)
        server.down = False
        clock.offset = settings.retry_max_seconds * 2
        back = up.sync(now=NOW)
        again = up.sync(now=NOW)

    # Assert
    assert not down1.server_reachable and down1.pending == 4 and down1.uploads_delivered == 0
    assert down2.pending == 4 and down2.uploads_enqueued == 0
    assert back.server_reachable and back.uploads_delivered == 4 and back.pending == 0
    assert again.uploads_delivered == 0
    assert set(server.stored) == {
        (A, "personalized_service"),
        (A, "service_routing"),
        (B, "marketing"),
        (B, "service_routing"),
    }
    assert all(n == 1 for n in server.deliveries.values()) and len(server.deliveries) == 4


def test_sync_when_response_lost_then_replay_counted_not_duplicated(
    store: EdgeStore, settings: ClientSettings
) -> None:
    server = FakeServer()
    clock = Clock()

    def lose_response(request: httpx.Request) -> httpx.Response | None:
        if _is_upload(request):
            server.intercept = None
            server.handle(request)  # stored on the server ...
            server.intercept = lose_response
            raise httpx.ReadTimeout("lost", request=request)  # ... but the answer is lost
        return None

    server.intercept = lose_response
    with _uploader(store, settings, server, clock) as up:
        lost = up.sync(now=NOW)
        server.intercept = None
        clock.offset = settings.retry_max_seconds * 2
        retried = up.sync(now=NOW)

    assert lost.pending == 1
    assert retried.uploads_delivered == 1 and retried.uploads_replayed == 1
    assert list(server.deliveries.values()) == [1]


def test_sync_when_ledger_models_then_reports_sent(
    store: EdgeStore, settings: ClientSettings
) -> None:
    store.save_ledger_state("behaviour", {"mechanism": "test"})
    server = FakeServer()
    ledger = LedgerReport(model="behaviour", epsilon=1.5, delta=1e-5, accountant="prv")

    with _uploader(store, settings, server, ledger_reporter=lambda s, m: ledger) as up:
        report = up.sync(now=NOW)

    assert report.ledgers_sent == 1
    assert server.ledgers == [json.loads(ledger.model_dump_json())]


def test_sync_when_ledger_state_unreadable_then_noted_and_sync_completes(
    store: EdgeStore, settings: ClientSettings
) -> None:
    pytest.importorskip("client.ledger")
    store.save_ledger_state("behaviour", {"mechanism": "not-a-ledger", "version": -1})
    server = FakeServer()

    with _uploader(store, settings, server) as up:  # default reporter: client.ledger
        report = up.sync(now=NOW)

    assert report.ledgers_sent == 0 and report.uploads_delivered == 1
    assert any("ledger of model behaviour cannot be read" in n for n in report.notes)


def test_idempotency_key_when_payload_changes_then_key_changes() -> None:
    base = {"edge_id": "e", "subject": A, "purpose": "marketing", "payload": {"fields": [1]}}

    key = idempotency_key(**base)  # type: ignore[arg-type]

    assert key == idempotency_key(**base)  # type: ignore[arg-type]
    assert key != idempotency_key(**{**base, "payload": {"fields": [2]}})  # type: ignore[arg-type]
    assert key != idempotency_key(**{**base, "edge_id": "f"})  # type: ignore[arg-type]


_BASE_FIELD = {
    "name": "tag.churn_risk",
    "value": True,
    "confidence": 0.8,
    "explanation": [ExplanationItem(feature="recency_days", weight=0.5)],
    "provisional": False,
    "computed_at": NOW,
}


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"computed_at": NOW + timedelta(hours=5)}, True),
        ({}, True),
        ({"value": False}, False),
        ({"confidence": 0.81}, False),
        ({"confidence": None}, False),
        ({"explanation": [ExplanationItem(feature="recency_days", weight=0.6)]}, False),
        ({"explanation": []}, False),
        ({"provisional": True}, False),
        ({"name": "tag.high_purchasing_power"}, False),
    ],
)
def test_content_hash_when_field_changes_then_only_computed_at_ignored(
    change: dict[str, object], same: bool
) -> None:
    base = ProfileUpload(purpose="marketing", fields=[ProfileFieldIn(**_BASE_FIELD)])  # type: ignore[arg-type]
    other = ProfileUpload(
        purpose="marketing",
        fields=[ProfileFieldIn(**{**_BASE_FIELD, **change})],  # type: ignore[arg-type]
    )

    assert (content_hash(base) == content_hash(other)) is same


def test_content_hash_when_fields_reordered_or_purpose_changes_then_as_expected() -> None:
    f1 = ProfileFieldIn(**_BASE_FIELD)  # type: ignore[arg-type]
    f2 = ProfileFieldIn(**{**_BASE_FIELD, "name": "tag.high_purchasing_power"})  # type: ignore[arg-type]

    one = content_hash(ProfileUpload(purpose="marketing", fields=[f1, f2]))

    assert one == content_hash(ProfileUpload(purpose="marketing", fields=[f2, f1]))
    assert one != content_hash(ProfileUpload(purpose="service_routing", fields=[f1, f2]))


def test_sync_over_http_when_server_restarts_then_exactly_once(
    store: EdgeStore, settings: ClientSettings
) -> None:
    # Prepare: a real HTTP server (uvicorn on a free loopback port) around the fake API
    server = FakeServer()
    port = free_port()
    http_settings = settings.override(server_url=f"http://127.0.0.1:{port}", http_timeout=5.0)
    clock = Clock()
    with uvicorn_server(asgi_app(server), port):
        up = EdgeUploader(store=store, settings=http_settings, clock=clock)
        up.register("web-1", "web", ENROLLMENT_TOKEN)

    # Execute: the server is stopped (connection refused), then started again
    with up:
        down = up.sync(now=NOW)
        with uvicorn_server(asgi_app(server), port):
            clock.offset = settings.retry_max_seconds * 2
            back = up.sync(now=NOW)
            again = up.sync(now=NOW)

    # Assert
    assert not down.server_reachable and down.pending == 1
    assert back.uploads_delivered == 1 and back.pending == 0
    assert again.uploads_delivered == 0
    assert list(server.deliveries.values()) == [1]


def test_sync_against_real_server_when_it_restarts_then_every_field_delivered_once(
    store: EdgeStore, settings: ClientSettings, tmp_path: Path
) -> None:
    """The outage test against ``server.main.create_app`` behind uvicorn on 127.0.0.1."""
    main = pytest.importorskip("server.main")
    from sqlmodel import Session, SQLModel, func, select

    import server.tables  # noqa: F401  (registers the tables)
    from server.config import ServerSettings
    from server.db import create_db_engine
    from server.tables.upload_receipt import UploadReceipt

    # Prepare: a file database that survives the restart, a clock fixed at NOW
    rows = [
        consent_line("g1", phone=PHONE_2, purpose="marketing"),
        consent_line("g2", phone=PHONE, purpose="service_routing"),
    ]
    ingest_file(
        store=store,
        path=write_jsonl(tmp_path / "g.jsonl", rows),
        pseudonymizer=Pseudonymizer(KEY),
        detector=FakeScrubber(),
        now=NOW,
    )
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    engine = create_db_engine(url)
    SQLModel.metadata.create_all(engine)
    server_settings = ServerSettings(
        database_url=url,
        enrollment_token=ENROLLMENT_TOKEN,
        admin_token="admin-" + "a" * 24,
        agent_token="agent-" + "b" * 24,
    )
    app = main.create_app(server_settings, engine=engine, clock=lambda: NOW)
    port = free_port()
    edge_settings = settings.override(server_url=f"http://127.0.0.1:{port}", http_timeout=5.0)
    clock = Clock()
    up = EdgeUploader(store=store, settings=edge_settings, clock=clock)
    with uvicorn_server(app, port):
        up.register("web-1", "web", ENROLLMENT_TOKEN)

    # Execute: sync while the server is down, then twice after it is back
    with up:
        down = up.sync(now=NOW)
        with uvicorn_server(app, port):
            clock.offset = settings.retry_max_seconds * 2
            back = up.sync(now=NOW)
            again = up.sync(now=NOW)

    # Assert
    assert not down.server_reachable and down.pending == 3 and down.uploads_delivered == 0
    assert back.server_reachable and back.uploads_delivered == 3, back.notes
    assert back.pending == 0 and back.refused_by_server == {}
    assert again.uploads_delivered == 0 and again.uploads_enqueued == 0
    with Session(engine) as session:
        receipts = session.exec(select(func.count()).select_from(UploadReceipt)).one()
    assert receipts == 3
    engine.dispose()
