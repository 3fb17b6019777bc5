"""``master_key_path`` and ``MasterKeySource``: created in development, refused in production."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from privacy import KeyFileError
from privacy.master_keys import add_master_key, create_master_key_file
from server.config import MasterKeySource, ServerSettings, is_memory_database
from server.errors import SettingsError

from .factories import CONTROLLER, ENROLLMENT_TOKEN


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "ENVIRONMENT", "ENROLLMENT_TOKEN", "MASTER_KEY_PATH"):
        monkeypatch.delenv(f"FEDPROFILE_{name}", raising=False)


def _production(tmp_path: Path, key: Path | None) -> ServerSettings:
    return ServerSettings(
        environment="production",
        enrollment_token=ENROLLMENT_TOKEN,
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        master_key_path=key,
        **CONTROLLER,
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite://", True),
        ("sqlite:///:memory:", True),
        ("sqlite:///file::memory:?cache=shared", True),
        ("sqlite:////tmp/x.sqlite", False),
        ("postgresql+psycopg://u@h/db", False),
    ],
)
def test_is_memory_database(url: str, expected: bool) -> None:
    assert is_memory_database(url) is expected


def test_production_without_master_key_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="master_key_path is required"):
        MasterKeySource(_production(tmp_path, None))


def test_production_missing_key_file_is_refused_not_created(tmp_path: Path) -> None:
    key = tmp_path / "master.key"

    with pytest.raises(SettingsError, match="does not exist"):
        MasterKeySource(_production(tmp_path, key))

    assert not key.exists()


@pytest.mark.parametrize(
    ("content", "mode", "message"),
    [
        ("00" * 32 + "\n", 0o600, "placeholder"),
        ("not a key\n", 0o600, "not hex"),
        (os.urandom(32).hex() + "\n", 0o644, "chmod 600"),
    ],
)
def test_production_unusable_key_file_is_refused(
    tmp_path: Path, content: str, mode: int, message: str
) -> None:
    key = tmp_path / "master.key"
    key.write_text(content, encoding="ascii")
    key.chmod(mode)

    with pytest.raises(SettingsError, match=message) as info:
        MasterKeySource(_production(tmp_path, key))

    assert content.strip() not in str(info.value)


def test_development_creates_missing_key_file_with_mode_0600(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "master.key"
    settings = ServerSettings(
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", master_key_path=key
    )

    source = MasterKeySource(settings)

    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert source.current().primary.kid == source.current().primary.kid


def test_development_default_path_is_under_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    source = MasterKeySource(ServerSettings())

    assert source.path == tmp_path.resolve() / ".fedprofile" / "master.key"
    assert source.path.exists()


def test_memory_database_without_path_uses_ephemeral_ring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    source = MasterKeySource(ServerSettings(database_url="sqlite://"))

    assert source.path is None and source.current() is source.current()
    assert not (tmp_path / ".fedprofile").exists()


def test_source_rereads_file_after_rotation(tmp_path: Path) -> None:
    key = tmp_path / "master.key"
    first = create_master_key_file(key)
    source = MasterKeySource(
        ServerSettings(database_url=f"sqlite:///{tmp_path / 'db'}", master_key_path=key)
    )

    rotated = add_master_key(key)

    assert source.current().kids == rotated.kids != first.kids


def test_source_current_fails_when_file_disappears(tmp_path: Path) -> None:
    key = tmp_path / "master.key"
    create_master_key_file(key)
    source = MasterKeySource(
        ServerSettings(database_url=f"sqlite:///{tmp_path / 'db'}", master_key_path=key)
    )
    key.unlink()

    with pytest.raises(KeyFileError, match="does not exist"):
        source.current()
