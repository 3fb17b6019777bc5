"""``mypy --strict`` (configured in pyproject.toml) holds for every room."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ["client", "server", "privacy", "consent", "models", "simulations", "fedprofile"]


@pytest.mark.slow  # about 40 s from a cold cache; CI runs it among its bounded slow tests
def test_mypy_strict_is_clean(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), *ROOMS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert result.returncode == 0, result.stdout[-4000:]
