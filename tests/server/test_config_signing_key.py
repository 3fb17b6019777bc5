from __future__ import annotations

import os
from pathlib import Path

import pytest

from privacy import create_signing_key_file
from server.config import ServerSettings, SigningKeySource
from server.errors import SettingsError

from .factories import CONTROLLER

TOKEN = "enroll-" + "q" * 24


def _settings(tmp_path: Path, **changes: object) -> ServerSettings:
    base: dict[str, object] = {"database_url": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    base.update(changes)
    return ServerSettings(**base)  # type: ignore[arg-type]


def test_memory_database_without_path_uses_an_ephemeral_key() -> None:
    source = SigningKeySource(ServerSettings(database_url="sqlite://"))

    assert source.path is None and len(source.key.verify_key.key_id) == 16


def test_development_creates_the_configured_key_once(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing.pem"

    first = SigningKeySource(_settings(tmp_path, signing_key_path=path))
    second = SigningKeySource(_settings(tmp_path, signing_key_path=path))

    assert path.is_file() and first.key.verify_key == second.key.verify_key


def test_production_requires_an_existing_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="signing_key_path is required"):
        SigningKeySource(
            _settings(tmp_path, environment="production", enrollment_token=TOKEN, **CONTROLLER)
        )
    with pytest.raises(SettingsError, match="does not exist"):
        SigningKeySource(
            _settings(
                tmp_path,
                environment="production",
                enrollment_token=TOKEN,
                signing_key_path=tmp_path / "missing.pem",
                **CONTROLLER,
            )
        )


def test_exposed_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "signing.pem"
    create_signing_key_file(path)
    os.chmod(path, 0o644)

    with pytest.raises(SettingsError, match="chmod 600"):
        SigningKeySource(_settings(tmp_path, signing_key_path=path))
