from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from privacy import compute_epsilon
from privacy.cli import epsilon_command

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("epsilon")(epsilon_command)
    app.command("noop")(lambda: None)  # keep "epsilon" a sub-command
    return app


BASE = [
    "epsilon",
    "--noise-multiplier",
    "1.0",
    "--sample-rate",
    "0.25",
    "--steps",
    "12",
    "--delta",
    "1e-5",
]


@pytest.mark.parametrize("accountant", ["prv", "rdp", "pld"])
def test_epsilon_command_json_matches_compute_epsilon(accountant: str) -> None:
    result = runner.invoke(_app(), [*BASE, "--accountant", accountant, "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    expected = compute_epsilon([(1.0, 0.25, 12)], delta=1e-5, accountant=accountant)  # type: ignore[arg-type]
    assert data["epsilon"] == pytest.approx(expected)
    assert data | {"epsilon": None} == {
        "epsilon": None,
        "infinite": False,
        "delta": 1e-5,
        "accountant": accountant,
        "noise_multiplier": 1.0,
        "sample_rate": 0.25,
        "steps": 12,
        "neighbouring": "add_remove_one",
        "sampling": "poisson",
    }


def test_epsilon_command_text_defaults_to_prv() -> None:
    result = runner.invoke(_app(), BASE)

    assert result.exit_code == 0
    assert result.output.startswith("ε = ") and "(prv;" in result.output


def test_epsilon_command_zero_noise_reports_infinite() -> None:
    args = ["epsilon", "-z", "0", "-q", "0.1", "-n", "3", "-d", "1e-5", "--json"]

    data = json.loads(runner.invoke(_app(), args).output)

    assert data["infinite"] is True and data["epsilon"] is None


@pytest.mark.parametrize(
    "bad",
    [
        ["--sample-rate", "0"],
        ["--sample-rate", "1.5"],
        ["--delta", "1"],
        ["--steps", "-1"],
        ["--noise-multiplier", "-0.5"],
        ["--accountant", "gdp"],
    ],
)
def test_epsilon_command_bad_input_exits_non_zero_with_one_line(bad: list[str]) -> None:
    args = list(BASE)
    if bad[0] in args:
        index = args.index(bad[0])
        args[index : index + 2] = bad
    else:
        args += bad

    result = runner.invoke(_app(), args)

    assert result.exit_code != 0
    assert "Traceback" not in result.output


def test_epsilon_command_help_lists_options() -> None:
    result = runner.invoke(_app(), ["epsilon", "--help"])

    assert result.exit_code == 0
    for option in (
        "--noise-multiplier",
        "--sample-rate",
        "--steps",
        "--delta",
        "--accountant",
        "--json",
    ):
        assert option in result.output
