from __future__ import annotations

import pytest

from privacy import EncodedRecord, LinkageEncoder, LinkageField, LinkageFieldKind, LinkageScheme

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
FIELDS = [LinkageField.parse(f) for f in ("name", "birth_date", "address")]


def _bits(data: bytes) -> set[int]:
    value = int.from_bytes(data, "little")
    return {i for i in range(len(data) * 8) if value >> i & 1}


def _dice(a: bytes | None, b: bytes | None) -> float:
    assert a is not None and b is not None
    x, y = _bits(a), _bits(b)
    return 2 * len(x & y) / (len(x) + len(y))


class _Named:
    """An encoded record with its filters looked up by field name."""

    def __init__(self, encoder: LinkageEncoder, record: EncodedRecord) -> None:
        self.key_id = record.key_id
        self.labels = dict(record.clks)
        self.clks = {spec.name: record.clks[encoder.label(spec.name)] for spec in encoder.fields}


def _encode(key: bytes, values: dict[str, str | None], **kw: object) -> _Named:
    encoder = LinkageEncoder(key, FIELDS, **kw)  # type: ignore[arg-type]
    return _Named(encoder, encoder.encode("r1", values))


PERSON = {"name": "张伟", "birth_date": "1990-03-07", "address": "广东省深圳市南山区科技园路8号"}


def test_encoding_is_deterministic_under_one_key() -> None:
    assert _encode(KEY, PERSON).clks == _encode(KEY, dict(PERSON)).clks


def test_different_keys_give_unrelated_encodings() -> None:
    mine, theirs = _encode(KEY, PERSON), _encode(OTHER_KEY, PERSON)

    assert mine.key_id != theirs.key_id
    for name in PERSON:
        theirs_clk = theirs.clks[name] or b""
        chance = len(_bits(theirs_clk)) / (8 * len(theirs_clk))  # Dice of independent filters
        assert _dice(mine.clks[name], theirs_clk) < chance + 0.1


def test_field_keys_differ_so_equal_values_in_two_fields_do_not_match() -> None:
    encoder = LinkageEncoder(
        KEY, [LinkageField("a", LinkageFieldKind.TEXT), LinkageField("b", LinkageFieldKind.TEXT)]
    )
    record = _Named(encoder, encoder.encode("r", {"a": "smith", "b": "smith"}))

    assert _dice(record.clks["a"], record.clks["b"]) < 0.35


def test_normalised_spellings_give_identical_filters() -> None:
    variant = {
        "name": " 张伟 ",
        "birth_date": "1990年3月7日",
        "address": "广东深圳南山区科技园路８号",
    }

    assert _encode(KEY, variant).clks == _encode(KEY, PERSON).clks


def test_chinese_typos_stay_similar() -> None:
    base = _encode(KEY, PERSON)
    typo = _encode(KEY, {**PERSON, "name": "张玮", "birth_date": "1990-03-70"})
    other = _encode(KEY, {**PERSON, "name": "李娜", "birth_date": "1975-11-21"})

    assert _dice(base.clks["name"], typo.clks["name"]) > 0.6
    assert _dice(base.clks["name"], other.clks["name"]) < 0.3
    assert _dice(base.clks["birth_date"], typo.clks["birth_date"]) > 0.6
    assert _dice(base.clks["birth_date"], other.clks["birth_date"]) < 0.5


@pytest.mark.parametrize("missing", [None, "", "  ", "NULL", "N/A", "未知"])
def test_missing_values_are_none_not_empty_filters(missing: str | None) -> None:
    record = _encode(KEY, {**PERSON, "name": missing})

    assert record.clks["name"] is None
    assert record.clks["address"] is not None


def test_salt_field_separates_records_with_other_salt_values() -> None:
    encoder = LinkageEncoder(KEY, FIELDS, salt_field="sex")
    male = _Named(encoder, encoder.encode("1", {**PERSON, "sex": "M"}))
    female = _Named(encoder, encoder.encode("2", {**PERSON, "sex": "F"}))
    male_again = _Named(encoder, encoder.encode("3", {**PERSON, "sex": "m"}))

    assert male.clks == male_again.clks
    assert _dice(male.clks["name"], female.clks["name"]) < 0.35


def test_xor_fold_halves_the_filter_and_changes_the_key_id() -> None:
    plain = _encode(KEY, PERSON)
    folded = _encode(KEY, PERSON, scheme=LinkageScheme(xor_fold=True))

    assert len(folded.clks["name"] or b"") == len(plain.clks["name"] or b"") // 2
    assert folded.key_id != plain.key_id


def test_field_labels_are_keyed_and_do_not_name_the_column() -> None:
    mine, theirs = _encode(KEY, PERSON), _encode(OTHER_KEY, PERSON)

    assert set(mine.labels).isdisjoint(theirs.labels)
    assert not any(name in label for label in mine.labels for name in PERSON)


def test_repr_hides_the_key() -> None:
    assert KEY.hex() not in repr(LinkageEncoder(KEY, FIELDS))
    assert "key=<hidden>" in repr(LinkageEncoder(KEY, FIELDS))


@pytest.mark.parametrize("spec", ["", "name:colour", ":date"])
def test_bad_field_spec_is_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        LinkageField.parse(spec)


def test_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        LinkageEncoder(b"short", FIELDS)
