"""The n-grams of a normalised value: what a field's Bloom filter is built from.

- Latin text: bigrams of the value padded with a space at each end (``" jo"``, ``"jo"``...,
  ``"n "``), the CLK convention of Schnell et al. (2009): one typo changes two or three
  bigrams, not the whole value.
- Chinese text: Hanzi unigrams and bigrams (with start/end markers), plus the toneless pinyin
  of the Hanzi as syllable unigrams and bigrams. Pinyin makes homophone typos (张伟 / 张玮)
  and traditional / simplified variants (張偉 / 张伟) agree on half of the n-grams; the Hanzi
  keep 张伟 and 章伟 apart from 张佳. ``pypinyin`` ships its dictionary in its wheel.
- Dates (``YYYYMMDD``): each digit with its position, the year, month and day, and the
  unordered month/day pair (a day-month swap keeps it).
- Digit strings: padded digit bigrams and the whole value.

Every token carries a short prefix naming its family, so a Hanzi bigram never collides with
a Latin one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from .normalize import CJK_RE, LinkageFieldKind


@functools.cache
def _pinyin_function() -> Callable[[str], list[str]]:
    """Return ``pypinyin.lazy_pinyin`` (imported on first use: its dictionary loads ~0.3 s)."""
    from pypinyin import lazy_pinyin

    return lazy_pinyin


def padded_bigrams(text: str, *, prefix: str) -> list[str]:
    """Return the bigrams of ``text`` padded with one space at each end."""
    padded = f" {text} "
    return [prefix + padded[i : i + 2] for i in range(len(padded) - 1)]


def _hanzi_tokens(hanzi: str) -> list[str]:
    """Hanzi unigrams, bigrams with start/end markers, and pinyin syllable n-grams."""
    tokens = [f"h:{char}" for char in hanzi]
    marked = f"^{hanzi}$"
    tokens += [f"hh:{marked[i : i + 2]}" for i in range(len(marked) - 1)]
    syllables = ["^", *_pinyin_function()(hanzi), "$"]
    tokens += [f"p:{syllable}" for syllable in syllables[1:-1]]
    tokens += [f"pp:{a}_{b}" for a, b in zip(syllables, syllables[1:], strict=False)]
    return tokens


def text_tokens(text: str) -> list[str]:
    """Return the n-grams of normalised text (Latin bigrams; Hanzi and pinyin for Chinese).

    Parameters
    ----------
    text : str
        A value already passed through ``normalize_text``.

    Returns
    -------
    list of str
        The tokens, without duplicates, in a stable order.
    """
    hanzi = "".join(CJK_RE.findall(text))
    rest = " ".join(CJK_RE.sub(" ", text).split())
    tokens: list[str] = []
    if rest:
        tokens += padded_bigrams(rest, prefix="b:")
    if hanzi:
        tokens += _hanzi_tokens(hanzi)
    return list(dict.fromkeys(tokens))


def date_tokens(canonical: str) -> list[str]:
    """Return the tokens of a date (``YYYYMMDD``; other strings fall back to digit bigrams)."""
    if len(canonical) != 8 or not canonical.isdigit():
        return digit_tokens(canonical)
    year, month, day = canonical[:4], canonical[4:6], canonical[6:]
    tokens = [f"d{i}:{digit}" for i, digit in enumerate(canonical)]
    tokens += [f"y:{year}", f"m:{month}", f"d:{day}", "md:" + "".join(sorted((month, day)))]
    return tokens


def digit_tokens(digits: str) -> list[str]:
    """Return padded digit bigrams and the whole value of a digit string."""
    return list(dict.fromkeys([*padded_bigrams(digits, prefix="n:"), f"v:{digits}"]))


def tokens_for(kind: LinkageFieldKind, canonical: str) -> list[str]:
    """Return the tokens of a normalised value of a field of ``kind``.

    Parameters
    ----------
    kind : LinkageFieldKind
        The field's kind.
    canonical : str
        The value after ``normalize`` (never empty: empty means missing).

    Returns
    -------
    list of str
        The tokens that are hashed into the field's Bloom filter.
    """
    if kind is LinkageFieldKind.DATE:
        return date_tokens(canonical)
    if kind is LinkageFieldKind.DIGITS and canonical.isdigit():
        return digit_tokens(canonical)
    return text_tokens(canonical)
