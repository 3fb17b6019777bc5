from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from client.encodings import detect_encoding, encoding_note
from client.errors import InputFileError


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("数码,ok\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "数码\n".encode(), "utf-8-sig"),
        ("数码家电,女装\n".encode("gbk"), "gb18030"),
        ("ascii only\n".encode("gb18030"), "utf-8"),
    ],
)
def test_detect_encoding_when_bom_utf8_or_gbk_then_named(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(data)

    assert detect_encoding(path) == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (codecs.BOM_UTF16_LE + "x".encode("utf-16-le"), "UTF-16"),
        (codecs.BOM_UTF16_BE + "x".encode("utf-16-be"), "UTF-16"),
        (b"ok,\x80\xff\x80 not text\n", "neither UTF-8 nor GB18030"),
    ],
)
def test_detect_encoding_when_not_utf8_or_gb18030_then_input_file_error(
    tmp_path: Path, data: bytes, message: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(data)

    with pytest.raises(InputFileError, match=message):
        detect_encoding(path)


@pytest.mark.parametrize(
    ("text", "encoding", "note"),
    [
        ("category\n女装\n", "gbk", "Chinese as GB18030"),  # GBK bytes that are valid UTF-8
        ("category\n数码家电\n", "gbk", "read as GB18030"),
        ("name\nJosé\n", "utf-8", "Chinese as GB18030"),  # é reads as a hanzi in GB18030
        ("category\n数码\n", "utf-8", None),
        ("category\nbooks\n", "utf-8", None),
    ],
)
def test_encoding_note_when_doubtful_then_explained(
    tmp_path: Path, text: str, encoding: str, note: str | None
) -> None:
    path = _write(tmp_path / "in.csv", text, encoding)

    found = encoding_note(path)

    assert (found is None) if note is None else (found is not None and note in found)
