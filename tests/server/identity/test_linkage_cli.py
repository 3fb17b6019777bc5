"""``fedprofile identity encode`` and ``link`` end to end on a small generated Chinese set."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import pytest

from fedprofile.cli import main
from simulations.linkage_data import LinkageSet, chinese_linkage_set, people_csv


@pytest.fixture(scope="module")
def small_set() -> LinkageSet:
    return chinese_linkage_set(300, seed=11)


@pytest.fixture()
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "tenant.key"
    path.write_text(bytes(range(32)).hex() + "\n")
    path.chmod(0o600)
    return path


def _encode(key: Path, csv_path: Path, fields: str = "name,birth_date,address") -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(
            [
                "identity",
                "encode",
                "--key",
                str(key),
                "--id-field",
                "id",
                "--fields",
                fields,
                str(csv_path),
            ]
        )
    return code, out.getvalue()


def test_encode_then_link_finds_the_copies(
    small_set: LinkageSet, key_file: Path, tmp_path: Path
) -> None:
    a_csv = people_csv(small_set.a, tmp_path / "a.csv", encoding="utf-8-sig")
    b_csv = people_csv(small_set.b, tmp_path / "b.csv", encoding="gb18030")  # a Chinese export
    for side, path in (("a", a_csv), ("b", b_csv)):
        code, text = _encode(key_file, path)
        assert code == 0
        (tmp_path / f"{side}.jsonl").write_text(text, encoding="utf-8")

    code = main(
        [
            "identity",
            "link",
            str(tmp_path / "a.jsonl"),
            str(tmp_path / "b.jsonl"),
            "--out",
            str(tmp_path / "links.csv"),
        ]
    )

    assert code == 0
    with (tmp_path / "links.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["a_id", "b_id", "score", "decision"]
    matches = {(r["a_id"], r["b_id"]) for r in rows if r["decision"] == "match"}
    correct = len(matches & small_set.truth)
    assert correct / len(matches) > 0.98
    assert correct / len(small_set.truth) > 0.95


def test_encode_output_holds_no_raw_value(
    small_set: LinkageSet, key_file: Path, tmp_path: Path
) -> None:
    code, text = _encode(key_file, people_csv(small_set.a, tmp_path / "a.csv"))

    assert code == 0
    assert len(text.splitlines()) == len(small_set.a)
    for row in small_set.a:
        for field in ("name", "birth_date", "address"):
            if len(row[field]) >= 3:
                assert row[field] not in text
        assert row["birth_date"].replace("-", "") not in text


def test_unknown_column_is_a_one_line_error_naming_it(
    small_set: LinkageSet, key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = people_csv(small_set.a[:3], tmp_path / "a.csv")

    code, _ = _encode(key_file, path, fields="name,phone_number")

    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1
    assert "phone_number" in err


def test_exposed_key_file_is_refused(
    small_set: LinkageSet, key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file.chmod(0o644)

    code, _ = _encode(key_file, people_csv(small_set.a[:3], tmp_path / "a.csv"))

    assert code != 0
    assert "chmod 600" in capsys.readouterr().err


def test_link_refuses_garbage_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("张伟,1990-03-07\n", encoding="utf-8")

    code = main(["identity", "link", str(bad), str(bad), "--out", str(tmp_path / "l.csv")])

    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1
    assert "张伟" not in err


def test_one_gbk_row_in_a_utf8_export_leaves_the_utf8_rows_intact(
    small_set: LinkageSet, key_file: Path, tmp_path: Path
) -> None:
    """A file two systems appended to: UTF-8 rows stay UTF-8, the GBK row is read as GBK."""
    utf8 = people_csv(small_set.a[:20], tmp_path / "utf8.csv")
    gbk = people_csv(small_set.a[20:21], tmp_path / "gbk.csv", encoding="gb18030")
    mixed = tmp_path / "mixed.csv"
    gbk_row = gbk.read_bytes().split(b"\n", 1)[1]  # the row without its header
    mixed.write_bytes(utf8.read_bytes() + gbk_row)
    clean = tmp_path / "clean.csv"
    clean.write_bytes(utf8.read_bytes() + gbk_row.decode("gb18030").encode("utf-8"))

    code_mixed, text_mixed = _encode(key_file, mixed)
    code_clean, text_clean = _encode(key_file, clean)

    assert code_mixed == 0 and code_clean == 0
    assert text_mixed.splitlines() == text_clean.splitlines()
    assert len(text_mixed.splitlines()) == 21
