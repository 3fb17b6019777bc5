from __future__ import annotations

import stat
from pathlib import Path

import pytest

from privacy import KeyFileError
from privacy.master_keys import (
    add_master_key,
    create_master_key_file,
    load_master_key_file,
    retire_master_keys,
)


def test_create_then_load_gives_the_same_ring(tmp_path: Path) -> None:
    path = tmp_path / "master.key"

    created = create_master_key_file(path)

    assert load_master_key_file(path).kids == created.kids
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_add_puts_new_primary_first_and_keeps_old_key(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    old = create_master_key_file(path)

    rotated = add_master_key(path)

    assert rotated.kids[1:] == old.kids and rotated.primary.kid != old.primary.kid
    assert load_master_key_file(path).kids == rotated.kids


def test_retire_removes_all_but_primary(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    old = create_master_key_file(path)
    rotated = add_master_key(path)

    retired = retire_master_keys(path, keep=rotated.primary.kid)

    assert retired == list(old.kids)
    assert load_master_key_file(path).kids == (rotated.primary.kid,)
    assert retire_master_keys(path, keep=rotated.primary.kid) == []


def test_retire_refuses_when_primary_changed(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    first = create_master_key_file(path)
    add_master_key(path)

    with pytest.raises(KeyFileError, match="another rotation"):
        retire_master_keys(path, keep=first.primary.kid)

    assert len(load_master_key_file(path).kids) == 2
