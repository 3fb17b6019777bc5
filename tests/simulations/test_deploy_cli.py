"""``deploy certs``: JSON for programs, files kept on a second run, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from simulations.deploy_cli import deploy_app
from simulations.deployment import DeploymentError


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(deploy_app, name="deploy")
    return app


def _certs(*args: str) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(_app(), ["deploy", "certs", *args])
    return result.exit_code, result.stdout, result.exception


def test_certs_json_lists_files_and_fingerprints(tmp_path: Path) -> None:
    code, out, _ = _certs(
        "--out", str(tmp_path), "--host", "h.example.com", "--supernode", "desk", "--json"
    )

    report = json.loads(out)
    assert code == 0
    assert report["hosts"] == ["localhost", "127.0.0.1", "h.example.com"]
    assert [s["name"] for s in report["supernodes"]] == ["desk"]
    assert report["supernodes"][0]["fingerprint"].startswith("SHA256:")
    assert len(report["created"]) == 6
    assert "PRIVATE" not in out  # paths only, never key material


def test_certs_second_run_keeps_files_and_says_so(tmp_path: Path) -> None:
    _certs("--out", str(tmp_path), "--supernode", "desk")

    code, out, _ = _certs("--out", str(tmp_path), "--supernode", "desk")

    assert code == 0
    assert "kept" in out and "written" not in out
    assert "flwr supernode register" in out


def test_certs_no_loopback_names_only_given_hosts(tmp_path: Path) -> None:
    code, out, _ = _certs("--out", str(tmp_path), "--host", "10.1.2.3", "--no-loopback", "--json")

    assert code == 0
    assert json.loads(out)["hosts"] == ["10.1.2.3"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "https://h.example.com"], "--host"),
        (["--supernode", "../escape"], "SuperNode name"),
        (["--no-loopback"], "at least one"),
    ],
)
def test_certs_bad_input_raises_room_error(tmp_path: Path, args: list[str], message: str) -> None:
    code, _, exc = _certs("--out", str(tmp_path / "pki"), *args)

    assert code != 0
    assert isinstance(exc, DeploymentError) and message in str(exc)
    assert not (tmp_path / "pki").exists()


def test_certs_help_names_the_options() -> None:
    result = CliRunner().invoke(_app(), ["deploy", "certs", "--help"])

    assert result.exit_code == 0
    assert "--supernode" in result.stdout and "--host" in result.stdout
