from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from server.config import (
    NOT_CONFIGURED_CONTROLLER,
    ServerSettings,
    get_settings,
    normalize_database_url,
)
from server.errors import SettingsError

from .factories import CONTROLLER, ENROLLMENT_TOKEN


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "ENVIRONMENT", "ENROLLMENT_TOKEN", "ADMIN_TOKEN", "AGENT_TOKEN"):
        monkeypatch.delenv(f"FEDPROFILE_{name}", raising=False)
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.sqlite", "sqlite:///x.sqlite"),
    ],
)
def test_normalize_database_url_maps_postgres_to_psycopg(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


def test_settings_default_url_is_sqlite_under_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = ServerSettings()
    assert settings.database_url == f"sqlite:///{tmp_path.resolve()}/.fedprofile/server.sqlite"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.environment == "development"
    assert settings.enrollment_token is None


def test_settings_read_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDPROFILE_DATABASE_URL", "postgres://u@h/db")
    monkeypatch.setenv("FEDPROFILE_ENROLLMENT_TOKEN", ENROLLMENT_TOKEN)
    settings = ServerSettings()
    assert settings.database_url == "postgresql+psycopg://u@h/db"
    assert settings.enrollment_token is not None
    assert settings.enrollment_token.get_secret_value() == ENROLLMENT_TOKEN


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("admin_token", "changeme"),
        ("agent_token", "secret"),
        ("enrollment_token", "short-token"),
        ("admin_token", "CHANGEME"),
    ],
)
def test_settings_weak_secret_is_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ServerSettings(**{field: value})


def test_settings_production_without_enrollment_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="enrollment_token is required"):
        ServerSettings(environment="production")


def test_settings_production_with_enrollment_token_and_controller_is_accepted() -> None:
    settings = ServerSettings(
        environment="production", enrollment_token=ENROLLMENT_TOKEN, **CONTROLLER
    )
    assert settings.environment == "production"


def test_settings_production_without_controller_is_refused() -> None:
    with pytest.raises(ValidationError, match="controller_name and controller_email"):
        ServerSettings(environment="production", enrollment_token=ENROLLMENT_TOKEN)
    with pytest.raises(ValidationError, match="controller_email"):
        ServerSettings(controller_email="not an address")


def test_receipt_controller_comes_from_the_settings() -> None:
    named = ServerSettings(**CONTROLLER, controller_phone="+86 10 5555 0100").receipt_controller()
    assert (named.name, named.email, named.phone) == (
        CONTROLLER["controller_name"], CONTROLLER["controller_email"], "+86 10 5555 0100",
    )  # fmt: skip
    unset = ServerSettings().receipt_controller()
    assert unset.name == NOT_CONFIGURED_CONTROLLER and "example" not in unset.email


def test_get_settings_invalid_environment_raises_settings_error_without_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEDPROFILE_ADMIN_TOKEN", "changeme")
    with pytest.raises(SettingsError) as info:
        get_settings()
    assert "admin_token" in str(info.value)
    assert "changeme" not in str(info.value)


def test_get_settings_is_cached() -> None:
    assert get_settings() is get_settings()
