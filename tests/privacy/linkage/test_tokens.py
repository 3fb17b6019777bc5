from __future__ import annotations

from privacy.linkage.normalize import LinkageFieldKind
from privacy.linkage.tokens import date_tokens, text_tokens, tokens_for


def _dice(a: list[str], b: list[str]) -> float:
    return 2 * len(set(a) & set(b)) / (len(set(a)) + len(set(b)))


def test_latin_text_is_padded_bigrams() -> None:
    assert text_tokens("jo") == ["b: j", "b:jo", "b:o "]


def test_chinese_text_has_hanzi_and_pinyin_ngrams() -> None:
    tokens = text_tokens("张伟")

    assert {"h:张", "h:伟", "hh:张伟", "hh:^张", "hh:伟$"} <= set(tokens)
    assert {"p:zhang", "p:wei", "pp:zhang_wei"} <= set(tokens)


def test_homophone_and_traditional_variants_share_more_than_other_names() -> None:
    same = text_tokens("张伟")

    assert _dice(same, text_tokens("张玮")) >= 0.6  # homophone typo
    assert _dice(same, text_tokens("張偉")) >= 0.5  # traditional characters
    assert _dice(same, text_tokens("张佳")) < 0.45  # another given name


def test_date_swap_of_month_and_day_keeps_the_pair_token() -> None:
    assert "md:0307" in date_tokens("19900307")
    assert "md:0307" in date_tokens("19900703")


def test_digits_of_non_numeric_value_fall_back_to_text() -> None:
    assert tokens_for(LinkageFieldKind.DIGITS, "abc") == text_tokens("abc")
