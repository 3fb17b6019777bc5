from __future__ import annotations

from fedprofile.exit_codes import HELP, ExitCode


def test_every_exit_code_has_help_text() -> None:
    missing = [code for code in ExitCode if not HELP.get(code, "").strip()]

    assert missing == []


def test_exit_codes_are_unique() -> None:
    values = [int(code) for code in ExitCode]

    assert len(values) == len(set(values))
