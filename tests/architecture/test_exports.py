"""Room roots are the public API: sorted ``__all__``, every name resolves, nothing extra (H2)."""

from __future__ import annotations

import importlib
import types

import pytest

ROOMS = ["consent", "privacy", "models", "client", "server", "simulations"]


@pytest.mark.parametrize("room", ROOMS)
def test_all_is_sorted_and_unique(room: str) -> None:
    module = importlib.import_module(room)

    names = list(module.__all__)

    assert names == sorted(set(names))


@pytest.mark.parametrize("room", ROOMS)
def test_every_exported_name_resolves(room: str) -> None:
    module = importlib.import_module(room)

    missing = [name for name in module.__all__ if getattr(module, name, None) is None]

    assert missing == []


@pytest.mark.parametrize("room", ROOMS)
def test_no_public_name_outside_all(room: str) -> None:
    module = importlib.import_module(room)

    extra = [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and name not in module.__all__
        and not isinstance(value, types.ModuleType)
        and name not in {"annotations", "logging", "importlib", "Any"}
    ]

    assert extra == []


@pytest.mark.parametrize("room", ["privacy", "models"])
def test_importing_leaf_root_does_not_import_heavy_engines(room: str) -> None:
    import subprocess
    import sys

    code = (
        f"import sys, {room}; "
        "heavy = [m for m in ('torch', 'opacus', 'presidio_analyzer', 'spacy') "
        "if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)

    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == ""
