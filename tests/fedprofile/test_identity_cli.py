"""``fedprofile identity`` is registered, lazily, with help on every subcommand."""

from __future__ import annotations

import pytest

from fedprofile.cli import COMMANDS, main


def test_identity_is_a_top_level_command() -> None:
    assert "identity" in COMMANDS


@pytest.mark.parametrize("command", [["identity"], ["identity", "encode"], ["identity", "link"]])
def test_identity_help_exits_zero(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main([*command, "--help"])

    out = capsys.readouterr().out
    assert code == 0
    assert "Usage" in out


def test_link_help_names_the_output_columns(capsys: pytest.CaptureFixture[str]) -> None:
    main(["identity", "link", "--help"])

    assert "a_id,b_id,score,decision" in capsys.readouterr().out


def test_threshold_outside_probability_range_is_a_usage_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = main(
        [
            "identity",
            "link",
            "a.jsonl",
            "b.jsonl",
            "--out",
            str(tmp_path / "x.csv"),
            "--threshold",
            "1.5",
        ]
    )

    assert code == 2
