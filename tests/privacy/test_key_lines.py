from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from privacy import KeyFileError
from privacy.key_lines import create_key_lines, read_key_lines, replace_key_lines

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(50, 82))


def test_create_then_read_keeps_order_and_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "keys"

    create_key_lines(path, [KEY_1, KEY_2], what="test file", header="two keys")

    assert read_key_lines(path, what="test file") == [KEY_1, KEY_2]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    create_key_lines(path, [KEY_1], what="test file", header="h")

    with pytest.raises(KeyFileError, match="already exists"):
        create_key_lines(path, [KEY_2], what="test file", header="h")


def test_replace_rewrites_atomically_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    create_key_lines(path, [KEY_1], what="test file", header="h")

    replace_key_lines(path, [KEY_2, KEY_1], what="test file", header="h")

    assert read_key_lines(path, what="test file") == [KEY_2, KEY_1]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / "keys.tmp").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no key"),
        ("# only a comment\n", "holds no key"),
        ("zz" * 32 + "\n", "line 1 is not hex"),
        ("ab" * 16 + "\n", "must hold 32 bytes"),
        ("00" * 32 + "\n", "placeholder"),
        ("0102" * 16 + "\n", "placeholder"),
        (KEY_1.hex() + "\n\n" + KEY_1.hex() + "\n", "line 3 repeats a key"),
    ],
)
def test_read_rejects_bad_files_without_echoing_keys(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "keys"
    path.write_text(text, encoding="ascii")
    path.chmod(0o600)

    with pytest.raises(KeyFileError, match=message) as info:
        read_key_lines(path, what="test file")

    assert KEY_1.hex() not in str(info.value)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_read_refuses_group_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    create_key_lines(path, [KEY_1], what="test file", header="h")
    path.chmod(0o640)

    with pytest.raises(KeyFileError, match="chmod 600"):
        read_key_lines(path, what="test file")


def test_read_missing_file_says_create_it(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        read_key_lines(tmp_path / "absent", what="test file")
