"""The shipped ``server.env.example`` lists everything a production server needs to start."""

from __future__ import annotations

from pathlib import Path

import pytest

from privacy import create_signing_key_file
from privacy.master_keys import create_master_key_file
from server.config import MasterKeySource, ServerSettings, SigningKeySource

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "config" / "server.env.example"
#: What an operator types into the blanks (tokens, controller identity).
FILLED = {
    "FEDPROFILE_ENROLLMENT_TOKEN": "enroll-" + "k" * 30,
    "FEDPROFILE_ADMIN_TOKEN": "admin-" + "m" * 30,
    "FEDPROFILE_AGENT_TOKEN": "agent-" + "n" * 30,
    "FEDPROFILE_CONTROLLER_NAME": "示例科技有限公司",
    "FEDPROFILE_CONTROLLER_EMAIL": "dpo@example.com",
}


def _assignments() -> dict[str, str]:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


def test_every_blank_of_the_example_is_one_the_operator_fills() -> None:
    blanks = {name for name, value in _assignments().items() if not value}
    assert blanks == set(FILLED)


def test_the_filled_example_starts_a_production_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = {**_assignments(), **FILLED}
    # The example's key paths, moved under tmp_path, created as the deployment guide says.
    for name in ("FEDPROFILE_MASTER_KEY_PATH", "FEDPROFILE_SIGNING_KEY_PATH"):
        values[name] = str(tmp_path / Path(values[name]).name)
    create_master_key_file(Path(values["FEDPROFILE_MASTER_KEY_PATH"]))
    create_signing_key_file(Path(values["FEDPROFILE_SIGNING_KEY_PATH"]))
    values["FEDPROFILE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'server.sqlite'}"
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = ServerSettings()
    assert settings.environment == "production"
    MasterKeySource(settings).current()
    SigningKeySource(settings)
    assert settings.receipt_controller().name == FILLED["FEDPROFILE_CONTROLLER_NAME"]
