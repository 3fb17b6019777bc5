"""Every command of the contract answers ``--help`` with exit 0 (DESIGN.md CLI contract)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fedprofile.cli import COMMANDS as CLI_COMMANDS
from fedprofile.cli import main

COMMANDS = [
    [],
    ["demo"],
    ["serve"],
    ["edge"],
    ["edge", "init"],
    ["edge", "ingest"],
    ["edge", "profile"],
    ["edge", "sync"],
    ["scrub"],
    ["privacy"],
    ["privacy", "epsilon"],
    ["privacy", "ledger"],
    ["simulate"],
    ["audit"],
    ["audit", "verify"],
    ["deploy"],
    ["deploy", "certs"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help_exits_zero(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*command, "--help"])

    out = capsys.readouterr().out
    assert code == 0
    assert "Usage" in out


def test_unknown_command_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["no-such-command"])

    assert code == 2
    assert "no-such-command" in capsys.readouterr().err


def test_console_script_help_runs_in_a_fresh_process() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fedprofile", "--help"], capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0
    assert "demo" in result.stdout


def test_privacy_epsilon_bad_input_is_one_line_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "privacy",
            "epsilon",
            "--noise-multiplier",
            "1.0",
            "--sample-rate",
            "2.0",
            "--steps",
            "10",
            "--delta",
            "1e-5",
        ]
    )

    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err


def test_root_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in CLI_COMMANDS)


def test_a_command_imports_only_its_own_room() -> None:
    """``audit verify`` starts without torch, Flower or the web app (seconds of imports)."""
    code = (
        "import sys; from fedprofile.cli import main; code = main(['-v', 'audit', 'verify', "
        "'--help']); heavy = [m for m in ('torch', 'flwr', 'fastapi', 'client', 'simulations') "
        "if m in sys.modules]; print(code, heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "0 []"
