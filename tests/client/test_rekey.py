"""Tenant key rotation end to end: an edge re-keys its store and the real server's rows."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel
from typer.testing import CliRunner

import server.tables  # noqa: F401  (registers the tables)
from client.cli import edge_app
from client.config import ClientSettings, get_client_settings
from client.edge import init_edge
from client.errors import EdgeConfigError, ServerUnavailableError
from client.ingest import ingest_file
from client.profile import build_profiles
from client.rekey import open_edge_pseudonymizer, rekey_edge
from client.rekey_transport import HttpRekeyTransport, RekeyTransport, rekey_transport
from client.store import EdgeStore
from client.uploader import EdgeUploader
from models import Channel, RekeyBatch, RekeyBatchResult
from privacy import (
    IdentifierKind,
    Pseudonymizer,
    create_key_file,
    create_tenant_key_chain_file,
    load_key_file,
    load_tenant_key_chain,
    rotate_tenant_key_file,
)
from server.audit.log import verify_chain
from server.config import ServerSettings
from server.db import create_db_engine
from server.main import create_app

from ..server.factories import ADMIN_TOKEN, AGENT_TOKEN, ENROLLMENT_TOKEN, FakeClock
from .edge_factories import (
    NOW,
    PHONE,
    PHONE_2,
    FakeScrubber,
    active_customer_lines,
    consent_line,
    write_jsonl,
)

PURPOSE = "personalized_service"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture()
def engine() -> Iterator[Engine]:
    engine = create_db_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture()
def api(engine: Engine) -> Iterator[TestClient]:
    settings = ServerSettings(
        database_url="sqlite://",
        enrollment_token=ENROLLMENT_TOKEN,
        admin_token=ADMIN_TOKEN,
        agent_token=AGENT_TOKEN,
    )
    with TestClient(create_app(settings, engine=engine, clock=FakeClock())) as client:
        yield client


def _settings(edge_dir: Path) -> ClientSettings:
    return ClientSettings(
        edge_dir=edge_dir, server_url="http://testserver", upload_purposes=(PURPOSE,)
    )


def _ingest(store: EdgeStore, path: Path, phones: tuple[str, ...]) -> None:
    rows = []
    for n, phone in enumerate(phones):
        rows += active_customer_lines(phone, prefix=f"p{n}")
        rows.append(consent_line(f"c{n}", phone=phone, purpose=PURPOSE))
    ingest_file(
        store=store,
        path=write_jsonl(path, rows),
        pseudonymizer=open_edge_pseudonymizer(store),
        detector=FakeScrubber(),
        now=NOW,
    )
    build_profiles(store=store, now=NOW)


def _edge(
    tmp_path: Path,
    api: TestClient,
    name: str,
    *,
    phones: tuple[str, ...] = (PHONE, PHONE_2),
    tenant_key: Path | None = None,
) -> ClientSettings:
    """An initialised, registered edge whose customers' profiles reached the server."""
    settings = _settings(tmp_path / name)
    init_edge(edge_dir=settings.edge_dir, name=name, channel=Channel.WEB, tenant_key=tenant_key)
    with EdgeStore.for_edge_dir(settings.edge_dir) as store:
        _ingest(store, tmp_path / f"{name}.jsonl", phones)
        with EdgeUploader(store=store, settings=settings, transport=api._transport) as up:
            up.register(name, "web", ENROLLMENT_TOKEN)
            report = up.sync(now=NOW)
    assert report.uploads_delivered == len(phones)
    return settings


def _pseudonym(settings: ClientSettings, phone: str) -> str:
    with EdgeStore.for_edge_dir(settings.edge_dir) as store:
        return open_edge_pseudonymizer(store).pseudonym(IdentifierKind.PHONE, phone)


def _profile(api: TestClient, subject: str) -> httpx.Response:
    return api.get(f"/api/v1/subjects/{subject}/profile", params={"purpose": PURPOSE},
                   headers=ADMIN)  # fmt: skip


def _fields(api: TestClient, subject: str) -> dict[str, object]:
    response = _profile(api, subject)
    assert response.status_code == 200, response.text
    return {f["name"]: f["value"] for f in response.json()["fields"]}


def _transport(settings: ClientSettings, api: TestClient) -> HttpRekeyTransport:
    transport = rekey_transport(settings, transport=api._transport)
    assert transport is not None
    return transport


def test_rekey_when_generated_then_store_and_server_follow_new_pseudonyms(
    tmp_path: Path, api: TestClient, engine: Engine
) -> None:
    # Prepare
    settings = _edge(tmp_path, api, "web-1")
    olds = {phone: _pseudonym(settings, phone) for phone in (PHONE, PHONE_2)}
    before = {phone: _fields(api, old) for phone, old in olds.items()}

    # Execute
    with EdgeStore.for_edge_dir(settings.edge_dir) as store:
        report = rekey_edge(
            store=store, settings=settings, transport=_transport(settings, api), generate=True
        )

    # Assert: the edge's pseudonymiser now yields new pseudonyms the server holds
    news = {phone: _pseudonym(settings, phone) for phone in (PHONE, PHONE_2)}
    assert report.switched and (report.subjects, report.applied) == (2, 2)
    assert set(news.values()).isdisjoint(olds.values())
    for phone in (PHONE, PHONE_2):
        assert _fields(api, news[phone]) == before[phone]
        assert _profile(api, olds[phone]).status_code == 404
    with EdgeStore.for_edge_dir(settings.edge_dir) as store:
        assert store.subjects() == sorted(news.values())
        assert {f.subject for f in store.profile_fields()} <= set(news.values())
        assert {e.event.subject for e in store.consent_events()} == set(news.values())
        chain_path = Path(str(store.get_meta("tenant_key_path")))
    assert chain_path.name == "tenant.key.g2"
    assert stat.S_IMODE(chain_path.stat().st_mode) == 0o600
    assert load_tenant_key_chain(chain_path).current_kid == report.to_kid
    with Session(engine) as session:
        assert verify_chain(session=session).ok
    # ... and the next sync has nothing new to send: the server already holds it all
    with (
        EdgeStore.for_edge_dir(settings.edge_dir) as store,
        EdgeUploader(store=store, settings=settings, transport=api._transport) as up,
    ):
        again = up.sync(now=NOW)
    assert again.uploads_delivered == 0 and again.uploads_unchanged == 2


class FlakyTransport:
    """Fails the ``fail_at``-th send: before reaching the server, or after it applied."""

    def __init__(self, inner: RekeyTransport, *, fail_at: int, after_apply: bool) -> None:
        self.inner = inner
        self.fail_at = fail_at
        self.after_apply = after_apply
        self.calls = 0

    def send(self, batch: RekeyBatch) -> RekeyBatchResult:
        self.calls += 1
        if self.calls == self.fail_at:
            if self.after_apply:
                self.inner.send(batch)  # the server applied it; the answer is lost
            raise ServerUnavailableError("http://testserver")
        return self.inner.send(batch)


@pytest.mark.parametrize("after_apply", [False, True])
def test_rekey_when_interrupted_then_edge_keeps_old_key_and_rerun_resumes(
    tmp_path: Path, api: TestClient, after_apply: bool
) -> None:
    # Prepare
    settings = _edge(tmp_path, api, "web-1")
    olds = {phone: _pseudonym(settings, phone) for phone in (PHONE, PHONE_2)}
    flaky = FlakyTransport(_transport(settings, api), fail_at=2, after_apply=after_apply)

    # Execute: batch 1 goes through, batch 2 fails
    with EdgeStore.for_edge_dir(settings.edge_dir) as store:
        with pytest.raises(ServerUnavailableError):
            rekey_edge(store=store, settings=settings, transport=flaky, generate=True,
                       batch_size=1)  # fmt: skip
        with pytest.raises(EdgeConfigError, match="unfinished"):
            open_edge_pseudonymizer(store)
        assert store.subjects() == sorted(olds.values())  # not switched yet
        resumed = rekey_edge(store=store, settings=settings, transport=_transport(settings, api))

    # Assert
    assert resumed.resumed and resumed.switched and resumed.batches_sent == 1
    assert resumed.already_applied == int(after_apply)
    for phone in (PHONE, PHONE_2):
        assert _profile(api, _pseudonym(settings, phone)).status_code == 200
        assert _profile(api, olds[phone]).status_code == 404


def test_rekey_when_subjects_arrive_during_upload_then_they_are_rekeyed_too(
    tmp_path: Path, api: TestClient
) -> None:
    settings = _edge(tmp_path, api, "web-1", phones=(PHONE,))
    late_old = Pseudonymizer(load_key_file(settings.edge_dir / "tenant.key")).pseudonym(
        IdentifierKind.PHONE, PHONE_2
    )
    inner = _transport(settings, api)

    class IngestingTransport:
        """Ingests a new customer (under the old key) while the first batch is in flight."""

        def send(self, batch: RekeyBatch) -> RekeyBatchResult:
            with EdgeStore.for_edge_dir(settings.edge_dir) as other:
                ingest_file(
                    store=other,
                    path=write_jsonl(tmp_path / "late.jsonl", active_customer_lines(PHONE_2)),
                    pseudonymizer=Pseudonymizer(load_key_file(settings.edge_dir / "tenant.key")),
                    detector=FakeScrubber(),
                    now=NOW,
                )
            return inner.send(batch)

    with EdgeStore.for_edge_dir(settings.edge_dir) as store:
        report = rekey_edge(
            store=store, settings=settings, transport=IngestingTransport(), generate=True
        )
        subjects = store.subjects()

    assert report.subjects == 2 and report.batches_sent == 2
    assert late_old not in subjects
    assert _pseudonym(settings, PHONE_2) in subjects


def test_rekey_when_shared_key_rotated_then_every_edge_maps_the_same_pairs(
    tmp_path: Path, api: TestClient
) -> None:
    # Prepare: two edges share the tenant key and a customer
    shared = tmp_path / "tenant.key"
    create_key_file(shared)
    first = _edge(tmp_path, api, "web-1", phones=(PHONE,), tenant_key=shared)
    second = _edge(tmp_path, api, "app-1", phones=(PHONE, PHONE_2), tenant_key=shared)
    rotated = tmp_path / "tenant.key.rotated"
    shutil.copy(shared, rotated)
    rotated.chmod(0o600)
    rotate_tenant_key_file(rotated)

    # Execute
    reports = []
    for settings in (first, second):
        with EdgeStore.for_edge_dir(settings.edge_dir) as store:
            transport = _transport(settings, api)
            reports.append(
                rekey_edge(store=store, settings=settings, transport=transport, new_key=rotated)
            )

    # Assert
    assert (reports[0].applied, reports[1].applied, reports[1].already_applied) == (1, 1, 1)
    assert _pseudonym(first, PHONE) == _pseudonym(second, PHONE)
    assert _profile(api, _pseudonym(second, PHONE_2)).status_code == 200


def test_rekey_when_new_key_does_not_extend_chain_then_refused_and_nothing_changes(
    tmp_path: Path, api: TestClient
) -> None:
    settings = _edge(tmp_path, api, "web-1")
    stranger = tmp_path / "stranger.key"
    create_tenant_key_chain_file(stranger)
    old = _pseudonym(settings, PHONE)

    with EdgeStore.for_edge_dir(settings.edge_dir) as store:
        with pytest.raises(EdgeConfigError, match="does not extend"):
            rekey_edge(store=store, settings=settings, transport=None, new_key=stranger)

    assert _pseudonym(settings, PHONE) == old
    assert _profile(api, old).status_code == 200


def test_open_edge_pseudonymizer_when_key_file_has_newer_generation_then_refused(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "tenant.key"
    create_key_file(shared)
    settings = _settings(tmp_path / "edge")
    init_edge(edge_dir=settings.edge_dir, name="web-1", channel=Channel.WEB, tenant_key=shared)
    rotate_tenant_key_file(shared)  # rotated in place, the edge not re-keyed yet

    with EdgeStore.for_edge_dir(settings.edge_dir) as store:
        with pytest.raises(EdgeConfigError, match="newer key generation"):
            open_edge_pseudonymizer(store)
        report = rekey_edge(store=store, settings=settings, transport=None, new_key=shared)
        assert report.switched and not report.uploaded
        assert open_edge_pseudonymizer(store).pseudonym(IdentifierKind.PHONE, PHONE) == (
            load_tenant_key_chain(shared).pseudonymizer().pseudonym(IdentifierKind.PHONE, PHONE)
        )


# ------------------------------------------------------------------ command line
runner = CliRunner()


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("FEDPROFILE_EDGE_DIR", "FEDPROFILE_TENANT_KEY_PATH", "FEDPROFILE_SERVER_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    get_client_settings.cache_clear()
    yield
    get_client_settings.cache_clear()


def test_cli_rekey_when_generate_on_unregistered_edge_then_switches_locally(
    tmp_path: Path, clean_env: None
) -> None:
    settings = _settings(tmp_path / "edge")
    init_edge(edge_dir=settings.edge_dir, name="web-1", channel=Channel.WEB)
    with EdgeStore.for_edge_dir(settings.edge_dir) as store:
        _ingest(store, tmp_path / "in.jsonl", (PHONE,))
    old = _pseudonym(settings, PHONE)

    result = runner.invoke(
        edge_app, ["rekey", "--generate", "--edge-dir", str(settings.edge_dir), "--json"]
    )

    assert result.exit_code == 0, result.exception
    data = json.loads(result.stdout)
    assert data["switched"] and not data["uploaded"] and data["subjects"] == 1
    assert _pseudonym(settings, PHONE) != old
    assert old not in result.stdout and PHONE not in result.stdout


def test_cli_rekey_when_both_key_options_then_usage_error(tmp_path: Path, clean_env: None) -> None:
    result = runner.invoke(
        edge_app,
        ["rekey", "--generate", "--new-key", str(tmp_path / "k"), "--edge-dir", str(tmp_path)],
    )

    assert result.exit_code == 2


def test_cli_rekey_when_nothing_in_progress_and_no_key_then_config_error(
    tmp_path: Path, clean_env: None
) -> None:
    init_edge(edge_dir=tmp_path / "edge", name="web-1", channel=Channel.WEB)

    result = runner.invoke(edge_app, ["rekey", "--edge-dir", str(tmp_path / "edge")])

    assert isinstance(result.exception, EdgeConfigError)
    assert "--new-key FILE or --generate" in str(result.exception)


def test_rekey_when_switch_fails_midway_then_store_unchanged_and_rerun_finishes(
    tmp_path: Path, api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: the switch's last rename statement fails (a crash inside the transaction)
    import client.rekey_store as rekey_module

    settings = _edge(tmp_path, api, "web-1")
    olds = sorted(_pseudonym(settings, phone) for phone in (PHONE, PHONE_2))
    real_columns = rekey_module.RekeyDB.columns
    calls: list[int] = []

    def failing_columns(self: object) -> list[tuple[str, str]]:
        """Plan and the switch's late-subject check see the real columns; the rename fails."""
        calls.append(1)
        extra = [("no_such_table", "subject")] if len(calls) >= 3 else []
        return [*real_columns(self), *extra]  # type: ignore[arg-type]

    monkeypatch.setattr(rekey_module.RekeyDB, "columns", failing_columns)

    # Execute
    with EdgeStore.for_edge_dir(settings.edge_dir) as store:
        with pytest.raises(Exception, match="no_such_table"):
            rekey_edge(store=store, settings=settings, transport=_transport(settings, api),
                       generate=True)  # fmt: skip
        subjects_after_failure = store.subjects()
        outbox_after_failure = store.outbox_counts()
        monkeypatch.setattr(rekey_module.RekeyDB, "columns", real_columns)
        report = rekey_edge(store=store, settings=settings, transport=_transport(settings, api))

    # Assert: nothing of the failed switch stuck; the re-run only switched
    assert subjects_after_failure == olds
    assert outbox_after_failure["superseded"] == 0
    assert report.resumed and report.switched and report.batches_sent == 0
    assert sorted(_pseudonym(settings, p) for p in (PHONE, PHONE_2)) != olds
    assert _profile(api, _pseudonym(settings, PHONE)).status_code == 200
