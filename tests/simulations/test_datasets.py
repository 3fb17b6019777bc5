"""Labelled-text adapters: JSONL / CSV, fields, line-numbered problems, masking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulations.datasets import mask_dataset, read_labeled_text
from simulations.errors import SimulationError
from simulations.labeled import generate_labeled_messages


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text(
        "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows)
        + "\n",
        encoding="utf-8",
    )
    return path


def test_read_jsonl_with_any_number_of_classes_and_groups(tmp_path: Path) -> None:
    rows = [
        {"msg": "想问下发货时间", "y": "inquiry", "uid": "a"},
        {"msg": "我要投诉", "y": "complaint", "uid": "b"},
        {"msg": "买两件", "y": "purchase", "uid": "a"},
        {"msg": "退货", "y": "return", "uid": "c"},
        {"msg": "还有货吗", "y": "inquiry", "uid": "c"},
    ]
    data = read_labeled_text(
        _jsonl(tmp_path / "d.jsonl", rows), text_field="msg", label_field="y", group_field="uid"
    )
    assert data.label_names == ("complaint", "inquiry", "purchase", "return")
    assert data.num_classes == 4
    assert data.labels.tolist() == [1, 0, 2, 3, 1]
    assert data.groups == ["a", "b", "a", "c", "c"]
    assert data.label_histogram() == {"complaint": 1, "inquiry": 2, "purchase": 1, "return": 1}


def test_read_csv_numeric_labels_sorted_numerically(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("text,label\nhello,10\nworld,2\nagain,2\n", encoding="utf-8")
    data = read_labeled_text(path, text_field="text", label_field="label")
    assert data.label_names == ("2", "10")
    assert data.labels.tolist() == [1, 0, 0]


def test_bad_lines_are_reported_with_line_numbers_never_values(tmp_path: Path) -> None:
    rows: list[object] = [
        {"text": "ok", "label": "a"},
        "{not json",
        {"text": "秘密13800138000", "label": ""},
        {"text": "fine", "label": "b"},
    ]
    with pytest.raises(SimulationError) as info:
        read_labeled_text(
            _jsonl(tmp_path / "d.jsonl", rows), text_field="text", label_field="label"
        )
    message = str(info.value)
    assert "line 2: not valid JSON" in message
    assert "line 3: missing or empty label field 'label'" in message
    assert "13800138000" not in message


def test_csv_missing_column_names_the_header(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("body,label\nhello,a\n", encoding="utf-8")
    with pytest.raises(SimulationError, match="header \\(line 1\\) has no text column 'text'"):
        read_labeled_text(path, text_field="text", label_field="label")


def test_single_class_is_refused(tmp_path: Path) -> None:
    rows = [{"text": "a", "label": "x"}, {"text": "b", "label": "x"}]
    with pytest.raises(SimulationError, match="at least two label values"):
        read_labeled_text(
            _jsonl(tmp_path / "d.jsonl", rows), text_field="text", label_field="label"
        )


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match="does not exist"):
        read_labeled_text(tmp_path / "nope.jsonl", text_field="t", label_field="l")
    (tmp_path / "d.txt").write_text("x", encoding="utf-8")
    with pytest.raises(SimulationError, match="unknown file type"):
        read_labeled_text(tmp_path / "d.txt", text_field="t", label_field="l")


class _Result:
    def __init__(self, text: str, n: int) -> None:
        self.text = text
        self._n = n

    def counts(self) -> dict[str, int]:
        return {"CN_MOBILE": self._n} if self._n else {}


class _DigitScrubber:
    """Masks runs of 11 digits (a stand-in for the PII detector)."""

    def scrub_many(self, texts: list[str], *, lang: str) -> list[_Result]:
        import re

        out = []
        for text in texts:
            masked, n = re.subn(r"\d{11}", "<CN_MOBILE>", text)
            out.append(_Result(masked, n))
        return out


def test_mask_dataset_masks_every_text_and_counts_entities(tmp_path: Path) -> None:
    rows = [{"text": "电话13800138000", "label": "a"}, {"text": "你好", "label": "b"}]
    data = read_labeled_text(
        _jsonl(tmp_path / "d.jsonl", rows), text_field="text", label_field="label"
    )
    seen: list[tuple[int, int]] = []
    masked = mask_dataset(
        data, scrubber=_DigitScrubber(), progress=lambda d, t: seen.append((d, t))
    )
    assert masked.texts == ["电话<CN_MOBILE>", "你好"]
    assert masked.masked and masked.entity_counts == {"CN_MOBILE": 1}
    assert seen[-1] == (2, 2)
    np.testing.assert_array_equal(masked.labels, data.labels)


def test_generated_messages_are_labelled_chinese_and_deterministic(tmp_path: Path) -> None:
    first = generate_labeled_messages(tmp_path / "a.jsonl", lines=200, users=20, seed=3)
    second = generate_labeled_messages(tmp_path / "b.jsonl", lines=200, users=20, seed=3)
    assert first.read_bytes() == second.read_bytes()
    data = read_labeled_text(first, text_field="text", label_field="label", group_field="user")
    assert set(data.label_names) == {"inquiry", "complaint", "purchase", "return"}
    assert len(data) == 200
    assert any("\u4e00" <= ch <= "\u9fff" for ch in data.texts[0])
