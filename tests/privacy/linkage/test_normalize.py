from __future__ import annotations

import pytest

from privacy.linkage.normalize import (
    LinkageFieldKind,
    infer_kind,
    normalize_date,
    normalize_digits,
    normalize_text,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1990-03-07", "19900307"),
        ("19900307", "19900307"),
        ("1990/3/7", "19900307"),
        ("1990.3.7", "19900307"),
        ("1990年3月7日", "19900307"),
        ("１９９０年３月７日", "19900307"),
        ("7/3/1990", "19900307"),
        ("3/17/1990", "19900317"),
        ("19900370", "19900370"),  # a swapped digit stays comparable
        ("born 1990 march", "1990"),
    ],
)
def test_normalize_date_when_spelled_differently_then_one_form(raw: str, expected: str) -> None:
    assert normalize_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  John   SMITH ", "john smith"),
        ("ＪＯＨＮ　Ｓｍｉｔｈ", "john smith"),  # full-width letters and space
        ("O'Brien-Smith", "o brien smith"),
        ("广东省深圳市南山区", "广东深圳南山区"),
        ("广东深圳南山区", "广东深圳南山区"),
        ("广西壮族自治区南宁市", "广西南宁"),
        ("北京市朝阳区建国路８８号", "北京朝阳区建国路88号"),
    ],
)
def test_normalize_text_when_case_width_or_suffix_differs_then_equal(
    raw: str, expected: str
) -> None:
    assert normalize_text(raw) == expected


def test_normalize_text_keeps_different_names_different() -> None:
    assert normalize_text("张伟") != normalize_text("张玮")


def test_normalize_digits_strips_separators() -> None:
    assert normalize_digits("+86 138-1234-5678") == "8613812345678"
    assert normalize_digits("２６０１") == "2601"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("date_of_birth", LinkageFieldKind.DATE),
        ("出生日期", LinkageFieldKind.DATE),
        ("postcode", LinkageFieldKind.DIGITS),
        ("手机", LinkageFieldKind.DIGITS),
        ("surname", LinkageFieldKind.TEXT),
        ("address", LinkageFieldKind.TEXT),
    ],
)
def test_infer_kind_from_column_name(name: str, kind: LinkageFieldKind) -> None:
    assert infer_kind(name) is kind
