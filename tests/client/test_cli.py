from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from client.cli import edge_app
from client.config import get_client_settings
from client.errors import EdgeConfigError, EdgeNotInitialisedError, ServerUnavailableError
from client.store import EdgeStore
from privacy import create_key_file

from .edge_factories import (
    ENROLLMENT_TOKEN,
    PHONE,
    PHONE_2,
    FakeScrubber,
    FakeServer,
    active_customer_lines,
    asgi_app,
    consent_line,
    event_line,
    free_port,
    message_line,
    uvicorn_server,
    write_jsonl,
)

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in (
        "FEDPROFILE_EDGE_DIR",
        "FEDPROFILE_TENANT_KEY_PATH",
        "FEDPROFILE_SERVER_URL",
        "FEDPROFILE_ENROLLMENT_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    get_client_settings.cache_clear()
    yield
    get_client_settings.cache_clear()


@pytest.fixture()
def fake_detector(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI builds privacy.PIIDetector lazily; use the regex fake here."""
    import client.cli as cli

    monkeypatch.setattr(
        cli._LazyDetector,
        "scrub_many",
        lambda self, texts, *, lang: FakeScrubber().scrub_many(texts, lang=lang),
    )


def _invoke(*args: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(edge_app, list(args))
    return result.exit_code, result.stdout, result.exception


def _init(edge: Path, *extra: str) -> dict:
    code, out, exc = _invoke(
        "init", "--edge-dir", str(edge), "--name", "web-1", "--channel", "web", "--json", *extra
    )
    assert code == 0, exc
    return json.loads(out)


def test_init_when_new_then_store_and_key_0600(tmp_path: Path) -> None:
    data = _init(tmp_path / "edge")

    key = Path(data["tenant_key"])
    assert data["tenant_key_created"] and key.exists()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().strip() not in json.dumps(data)
    assert (tmp_path / "edge" / "edge.sqlite").exists()


def test_init_when_repeated_then_idempotent_and_other_name_refused(tmp_path: Path) -> None:
    _init(tmp_path / "edge")

    again = _init(tmp_path / "edge")
    code, _, exc = _invoke(
        "init", "--edge-dir", str(tmp_path / "edge"), "--name", "other", "--channel", "app"
    )

    assert again["already_initialised"] and not again["tenant_key_created"]
    assert code != 0 and isinstance(exc, EdgeConfigError)


def test_init_when_shared_tenant_key_then_same_pseudonyms_across_edges(
    tmp_path: Path, fake_detector: None
) -> None:
    # Prepare
    shared = tmp_path / "shared.key"
    create_key_file(shared)
    _init(tmp_path / "web", "--tenant-key", str(shared))
    code, _, exc = _invoke(
        "init",
        "--edge-dir",
        str(tmp_path / "app"),
        "--name",
        "app-1",
        "--channel",
        "app",
        "--tenant-key",
        str(shared),
    )
    assert code == 0, exc
    path = write_jsonl(tmp_path / "in.jsonl", [event_line("e1")])

    # Execute
    for edge in ("web", "app"):
        assert _invoke("ingest", str(path), "--edge-dir", str(tmp_path / edge))[0] == 0

    # Assert
    from client.store import EdgeStore

    subjects = [EdgeStore.for_edge_dir(tmp_path / e).subjects() for e in ("web", "app")]
    assert subjects[0] == subjects[1] and len(subjects[0]) == 1


def test_init_when_bad_name_then_usage_error(tmp_path: Path) -> None:
    code, _, _ = _invoke(
        "init", "--edge-dir", str(tmp_path / "e"), "--name", "bad name!", "--channel", "web"
    )

    assert code == 2


def test_ingest_when_edge_missing_then_not_initialised(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [event_line()])

    code, _, exc = _invoke("ingest", str(path), "--edge-dir", str(tmp_path / "nowhere"))

    assert isinstance(exc, EdgeNotInitialisedError) and code != 0
    assert not (tmp_path / "nowhere").exists()


def test_ingest_when_some_lines_rejected_then_exit_3_report_and_good_lines_kept(
    tmp_path: Path, fake_detector: None
) -> None:
    _init(tmp_path / "edge")
    path = write_jsonl(
        tmp_path / "in.jsonl", [event_line("e1"), event_line("e2", phone="12ab"), event_line("e3")]
    )

    code, out, _ = _invoke("ingest", str(path), "--edge-dir", str(tmp_path / "edge"), "--json")

    report = json.loads(out)
    assert code == 3
    assert report["accepted"]["event"] == 2 and report["rejected"]["event"] == 1
    assert report["errors"] == [
        "line 2: customer.phone: cannot normalise phone: "
        "phone numbers hold digits, spaces, +, - and ()"
    ]
    assert PHONE not in out
    status = json.loads(_invoke("status", "--edge-dir", str(tmp_path / "edge"), "--json")[1])
    assert status["quarantined_lines"] == 1 and status["events"] == 2


def test_ingest_when_key_swapped_then_refused(
    tmp_path: Path, fake_detector: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _init(tmp_path / "edge")
    other = tmp_path / "other.key"
    create_key_file(other)
    monkeypatch.setenv("FEDPROFILE_TENANT_KEY_PATH", str(other))
    get_client_settings.cache_clear()
    path = write_jsonl(tmp_path / "in.jsonl", [event_line()])

    code, _, exc = _invoke("ingest", str(path), "--edge-dir", str(tmp_path / "edge"))

    assert isinstance(exc, EdgeConfigError) and "not the key" in str(exc)


def test_profile_then_status_when_data_then_counts(tmp_path: Path, fake_detector: None) -> None:
    _init(tmp_path / "edge")
    rows = active_customer_lines(PHONE) + [consent_line("c1")]
    _invoke(
        "ingest",
        str(write_jsonl(tmp_path / "in.jsonl", rows)),
        "--edge-dir",
        str(tmp_path / "edge"),
    )

    code, out, exc = _invoke(
        "profile",
        "--edge-dir",
        str(tmp_path / "edge"),
        "--now",
        "2026-11-01T20:00:00+08:00",
        "--json",
    )
    status_code, status_out, _ = _invoke("status", "--edge-dir", str(tmp_path / "edge"), "--json")

    assert code == 0, exc
    profile = json.loads(out)
    assert profile["subjects"] == 1 and profile["as_of"] == "2026-11-01T12:00:00+00:00"
    status = json.loads(status_out)
    assert status_code == 0
    assert status["events"] == len(rows) - 1 and status["consents_unsynced"] == 1
    assert status["profile_fields"] == profile["fields_written"]
    assert status["registered"] is False and status["outbox"]["pending"] == 0


def test_profile_when_agent_labelled_messages_then_text_fields_without_a_model(
    tmp_path: Path, fake_detector: None
) -> None:
    _init(tmp_path / "edge")
    labelled = message_line("m1", text="东西坏了，今天之内必须处理！")
    labelled["labels"] = {"intent": "投诉", "emotion": "负面", "urgency": "紧急"}
    rows = [*active_customer_lines(PHONE), labelled, message_line("m2", text="在吗")]
    _invoke("ingest", str(write_jsonl(tmp_path / "in.jsonl", rows)), "--edge-dir",
            str(tmp_path / "edge"))  # fmt: skip

    code, out, exc = _invoke("profile", "--edge-dir", str(tmp_path / "edge"), "--now",
                             "2026-11-01T20:00:00+08:00", "--json")  # fmt: skip

    assert code == 0, exc
    report = json.loads(out)
    assert report["text_model"] == "none" and report["messages_scored"] == 0
    assert report["text_signals"] == 1
    with EdgeStore.for_edge_dir(tmp_path / "edge") as store:
        fields = {f.field: f.value for f in store.profile_fields()}
    assert fields["text.last_intent"] == "complaint"  # the agent's label; m2 has none
    assert fields["text.urgent_contacts_30d"] == 1 and fields["text.messages_30d"] == 1


@pytest.mark.parametrize("now", ["yesterday", "2026-11-01T12:00:00"])
def test_profile_when_now_invalid_then_usage_error(tmp_path: Path, now: str) -> None:
    _init(tmp_path / "edge")

    code, _, _ = _invoke("profile", "--edge-dir", str(tmp_path / "edge"), "--now", now)

    assert code == 2


def test_sync_when_not_registered_and_no_token_then_config_error(tmp_path: Path) -> None:
    _init(tmp_path / "edge")

    code, _, exc = _invoke(
        "sync", "--edge-dir", str(tmp_path / "edge"), "--server", "http://127.0.0.1:9"
    )

    assert isinstance(exc, EdgeConfigError) and "--enrollment-token" in str(exc)


def test_sync_when_server_listening_then_registers_and_uploads(
    tmp_path: Path, fake_detector: None
) -> None:
    # Prepare
    edge = tmp_path / "edge"
    _init(edge)
    rows = (
        active_customer_lines(PHONE)
        + active_customer_lines(PHONE_2, prefix="b")
        + [consent_line("c1")]
    )
    _invoke("ingest", str(write_jsonl(tmp_path / "in.jsonl", rows)), "--edge-dir", str(edge))
    _invoke("profile", "--edge-dir", str(edge))
    server = FakeServer()
    port = free_port()

    # Execute
    with uvicorn_server(asgi_app(server), port) as url:
        code, out, exc = _invoke(
            "sync",
            "--edge-dir",
            str(edge),
            "--server",
            url,
            "--enrollment-token",
            ENROLLMENT_TOKEN,
            "--json",
        )
    # ... and once more with the server gone and something new to send
    _invoke(
        "ingest",
        str(write_jsonl(tmp_path / "c2.jsonl", [consent_line("c2", phone=PHONE_2)])),
        "--edge-dir",
        str(edge),
    )
    down_code, _, down_exc = _invoke(
        "sync", "--edge-dir", str(edge), "--server", f"http://127.0.0.1:{port}"
    )

    # Assert
    assert code == 0, exc
    report = json.loads(out)
    assert report["registered_now"] and report["uploads_delivered"] == 1
    assert server.token not in out and ENROLLMENT_TOKEN not in out
    assert len(server.stored) == 1
    assert isinstance(down_exc, ServerUnavailableError) and down_code != 0


def test_edge_app_when_help_then_lists_commands() -> None:
    code, out, _ = _invoke("--help")

    assert code == 0
    for command in ("init", "ingest", "profile", "sync", "status"):
        assert command in out


def test_ingest_reports_data_quality_against_the_edges_own_history(
    tmp_path: Path, fake_detector: None
) -> None:
    _init(tmp_path / "edge")
    edge = str(tmp_path / "edge")
    full = write_jsonl(tmp_path / "full.jsonl", [event_line(f"e{i}") for i in range(40)])
    first = json.loads(_invoke("ingest", str(full), "--edge-dir", edge, "--json")[1])
    assert first["quality"]["volume_ratio"] is None  # no history yet
    assert first["quality"]["rejection_rate"] == 0.0

    # A broken export: a trickle of lines, most of them violating the schema.
    broken = [event_line("b1"), *(event_line(f"x{i}", phone="12ab") for i in range(5))]
    code, out, _ = _invoke(
        "ingest", str(write_jsonl(tmp_path / "broken.jsonl", broken)), "--edge-dir", edge, "--json"
    )
    quality = json.loads(out)["quality"]
    assert code == 3
    assert quality["volume_ratio"] == pytest.approx(1 / 40)
    kinds = [f.split(":")[0] for f in quality["flags"]]
    assert kinds[:2] == ["schema violations", "volume drop"]
    assert set(kinds) <= {"schema violations", "volume drop", "stale source"}  # fixed-date events
    assert PHONE not in out

    # The same export again: everything is a duplicate; the table output names it.
    code, out, _ = _invoke("ingest", str(full), "--edge-dir", edge)
    assert code == 0 and "data quality: duplicated export: 100%" in out
