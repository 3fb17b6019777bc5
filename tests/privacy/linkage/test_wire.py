from __future__ import annotations

import re
from pathlib import Path

import pytest

from privacy import (
    EncodingFormatError,
    LinkageEncoder,
    LinkageField,
    encoded_json_line,
    parse_encoded_lines,
    read_encoded_file,
)
from privacy.linkage.braille import braille_decode, braille_encode

BRAILLE_RUN = re.compile("[\u2800-\u28ff]+")

ENCODER = LinkageEncoder(bytes(32), [LinkageField.parse("name"), LinkageField.parse("dob")])


def test_braille_round_trip() -> None:
    data = bytes(range(256))

    assert braille_decode(braille_encode(data)) == data
    assert all(0x2800 <= ord(c) <= 0x28FF for c in braille_encode(data))


def test_json_line_round_trip_and_holds_no_raw_value() -> None:
    record = ENCODER.encode("c-1", {"name": "Smith", "dob": "1990-03-07"})

    line = encoded_json_line(record)
    (parsed,) = parse_encoded_lines([line])

    assert parsed == record
    without_id = line.replace('"id":"c-1"', "")
    assert BRAILLE_RUN.sub("", without_id) == '{,"v":1,"k":"","c":{"":"","":""}}'
    for raw in ("Smith", "smith", "1990", "0307"):
        assert raw not in line


def test_missing_value_is_null() -> None:
    line = encoded_json_line(ENCODER.encode("c-1", {"name": "Smith", "dob": None}))

    assert f'"{ENCODER.label("dob")}":null' in line
    assert "dob" not in line and "name" not in line


@pytest.mark.parametrize(
    "line",
    ["not json", '{"id": "1"}', '{"id":"1","v":1,"k":"x","c":{"a":"b"}}'],
)
def test_malformed_lines_are_refused_without_echoing_them(line: str) -> None:
    with pytest.raises(EncodingFormatError) as info:
        list(parse_encoded_lines(["", line], source="a.jsonl"))

    assert "line 2" in str(info.value)
    assert line not in str(info.value)


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(EncodingFormatError, match="does not exist"):
        read_encoded_file(tmp_path / "nope.jsonl")
