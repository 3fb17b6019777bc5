"""Chinese person names (``PERSON``) from jieba tags, a surname list and context cues.

No offline Chinese NER model is available, so names are found by rules whose evidence is
graded into scores (each rule below adds a candidate; overlaps keep the best):

==========================================  =====  ===========================
evidence                                    score  example
==========================================  =====  ===========================
configured ``allow_names`` (literal)        1.00   a known customer
strong cue before the name                  0.85   我叫 / 收件人 / 开户人 + 李秀英
name before an honorific                    0.85   王建国先生
surname alone before an honorific           0.60   杨先生 -> 杨
weak cue before a given-name-like name      0.60   我是张伟
surname + given chars over an ``nr`` token  0.50   陈/红梅 (jieba dictionary name)
surname + given chars in unknown words      0.45   郝桂英, 陈洋查 -> 陈洋, 韩/建军
==========================================  =====  ===========================

A candidate must start with a surname (``data/surnames.txt``); except after a strong cue,
its given part must be one or two characters common in given names
(``data/given_name_chars.txt``). Surnames that are also everyday words
(``data/ambiguous_surnames.txt``: 和, 时, 全 ...) need a strong cue, an honorific or a
jieba dictionary name. A candidate starting inside a word of ``data/deny_names.txt`` or
``deny_names`` (brands such as 华为/荣耀/李宁, 银行卡 ...) is dropped unless it is one of
the ``allow_names``. Figures on generated messages are in ``benchmarks/scrub.py``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from presidio_analyzer import LocalRecognizer, RecognizerResult

from ..tokenizer import TOKENS_KEY, UNKNOWN_TAG, TokenTriple
from .base import is_hanzi
from .name_lexicon import NameLexicon, load_name_lexicon

if TYPE_CHECKING:
    from presidio_analyzer.nlp_engine import NlpArtifacts

logger = logging.getLogger(__name__)

NAME_TAGS = frozenset({"nr", "nrfg", "nrt"})
HONORIFICS = ("先生", "女士", "小姐", "老师", "经理", "师傅", "阿姨", "医生", "律师", "同学")
STRONG_CUES = (
    "我叫",
    "名叫",
    "姓名",
    "名字是",
    "名字叫",
    "收件人",
    "收货人",
    "联系人",
    "开户人",
    "开户名",
    "持卡人",
    "寄件人",
    "签收人",
    "户名",
    "本人",
)
WEAK_CUES = ("我是", "这是", "找", "转告", "客户", "用户", "会员")
#: Characters that end a name found after a cue (particles, verbs, prepositions).
STOP_CHARS = frozenset(
    "的了在是和与跟给说要已也都就还把被从向到让请吗呢吧啊呀哦嗯您你我他她它们个位些"
)

#: Characters that follow place and shop names, never a person's name (张江路, 王府井店).
PLACE_SUFFIXES = frozenset("路街道巷弄区县市省州镇乡村号楼栋店厂园站港桥湾寺庙")

SCORE_ALLOWED = 1.0
SCORE_STRONG_CUE = 0.85
SCORE_HONORIFIC = 0.85
SCORE_WEAK_CUE = 0.6
SCORE_SURNAME_HONORIFIC = 0.6
SCORE_TAGGED = 0.5
SCORE_UNKNOWN = 0.45

_CUE_SEPARATORS = " :：\t"


def _alternation(words: Sequence[str]) -> str:
    """Regex alternation of literal words, longest first."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


class CnPersonRecognizer(LocalRecognizer):
    """Recognise Chinese person names without an NER model (see the module docstring).

    Parameters
    ----------
    deny_names : sequence of str
        Extra words never to treat as names.
    allow_names : sequence of str
        Known names always recognised (score 1.0), even if denied.
    lexicon : NameLexicon or None
        Word lists; ``None`` loads the packaged ones.
    supported_language : str
        Language served; ``zh``.
    name : str or None
        Recognizer name.
    """

    ENTITY: ClassVar[str] = "PERSON"
    NEEDS_NLP: ClassVar[bool] = True

    def __init__(
        self,
        *,
        deny_names: Sequence[str] = (),
        allow_names: Sequence[str] = (),
        lexicon: NameLexicon | None = None,
        supported_language: str = "zh",
        name: str | None = None,
    ) -> None:
        base = lexicon if lexicon is not None else load_name_lexicon()
        self.lexicon = base.with_words(deny=tuple(deny_names))
        self.allow_names = frozenset(n for n in allow_names if n)
        self._allow_re = (
            re.compile(_alternation(tuple(self.allow_names))) if self.allow_names else None
        )
        self._cue_re = re.compile(
            rf"({_alternation(STRONG_CUES + WEAK_CUES)})[{_CUE_SEPARATORS}]{{0,2}}"
        )
        self._honorific_re = re.compile(_alternation(HONORIFICS))
        self._deny_re = (
            re.compile(_alternation(tuple(self.lexicon.deny))) if self.lexicon.deny else None
        )
        first_chars = set(self.lexicon.surnames) | {s[0] for s in self.lexicon.compound_surnames}
        first_chars |= {n[0] for n in self.allow_names}
        #: Pre-filter: a text without any of these characters cannot hold a name.
        self.TRIGGER: re.Pattern[str] | None = re.compile(
            "[" + "".join(re.escape(c) for c in sorted(first_chars)) + "]"
        )
        self._label = name or "CnPersonRecognizer"
        super().__init__(
            supported_entities=[self.ENTITY],
            name=self._label,
            supported_language=supported_language,
        )

    def load(self) -> None:
        """Nothing to load: the lexicon is read in the constructor."""

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        """Return name candidates with graded scores.

        Parameters
        ----------
        text : str
            Text to analyse.
        entities : list of str
            Requested entities (unused: this recognizer emits ``PERSON`` only).
        nlp_artifacts : NlpArtifacts or None
            Tokens with jieba POS tags in ``tag_``; without them only the literal, cue
            and honorific rules run.

        Returns
        -------
        list of RecognizerResult
            One result per distinct span.
        """
        tokens = _tokens(nlp_artifacts)
        deny_spans = [m.span() for m in self._deny_re.finditer(text)] if self._deny_re else []
        spans: dict[tuple[int, int], float] = {}
        for start, end, score in (
            *self._token_candidates(text, tokens),
            *self._cue_candidates(text),
            *self._honorific_candidates(text, tokens),
        ):
            if self._denied(text[start:end], start, deny_spans):
                continue
            score = max(score, self._cue_score(text, start))
            if score > spans.get((start, end), 0.0):
                spans[(start, end)] = score
        if self._allow_re is not None:
            for match in self._allow_re.finditer(text):
                spans[match.span()] = SCORE_ALLOWED
        return [self._result(start, end, score) for (start, end), score in spans.items()]

    def _denied(self, candidate: str, start: int, deny_spans: list[tuple[int, int]]) -> bool:
        """Whether a candidate starts inside a deny-listed word (华为, 江小白 ...)."""
        if candidate in self.allow_names:
            return False
        return any(deny_start <= start < deny_end for deny_start, deny_end in deny_spans)

    def _token_candidates(
        self, text: str, tokens: list[TokenTriple]
    ) -> Iterator[tuple[int, int, float]]:
        """Names inside runs of unknown words, ``nr`` words, surnames and short given words.

        jieba's HMM often glues a new name to the next verb (``陈洋查``) or splits it after
        the surname (``陈/红梅``, ``韩/建军``), so candidates are read character by character
        inside such runs: a surname and one or two given-name characters. A candidate may
        not cut a dictionary word, except right before a particle (``张平的``), and may not
        be followed by a place suffix (``张江路``). Surnames that are everyday words (和, 时)
        start a candidate only when it is a whole ``nr`` word.
        """
        lex = self.lexicon
        boundaries = {0, len(text)}
        loose: set[int] = set()
        for start, word, tag in tokens:
            boundaries.update((start, start + len(word)))
            if tag == UNKNOWN_TAG:
                loose.update(range(start + 1, start + len(word)))
        for offset, region, tagged in _name_regions(tokens, lex):
            index = 0
            while index < len(region):
                found = self._candidate_at(text, offset + index, region[index:], tagged)
                if found is not None:
                    start, end, score = found
                    if (start in boundaries or start in loose) and (
                        end in boundaries or end in loose or text[end : end + 1] in STOP_CHARS
                    ):
                        yield found
                        index = end - offset
                        continue
                index += 1

    def _candidate_at(
        self, text: str, start: int, rest: str, tagged: set[tuple[int, int]]
    ) -> tuple[int, int, float] | None:
        """Return the name starting at ``start`` (``rest`` is the run from there), if any."""
        lex = self.lexicon
        surname = lex.surname_length(rest)
        given = ""
        for ch in rest[surname : surname + 2] if surname else "":
            if ch in STOP_CHARS or ch not in lex.given_chars:
                break
            given += ch
        end = start + surname + len(given)
        if not given or text[end : end + 1] in PLACE_SUFFIXES:
            return None
        if (start, end) in tagged:
            return start, end, SCORE_TAGGED
        if lex.strong_surname_length(rest) == 0:
            return None
        overlaps_tag = any(s < end and start < e for s, e in tagged)
        return start, end, SCORE_TAGGED if overlaps_tag else SCORE_UNKNOWN

    def _cue_candidates(self, text: str) -> Iterator[tuple[int, int, float]]:
        """Names right after a cue word (我叫 / 收件人 / ...), read character by character."""
        lex = self.lexicon
        for match in self._cue_re.finditer(text):
            pos = match.end()
            strong = match.group(1) in STRONG_CUES
            head = text[pos : pos + 2]
            surname = lex.surname_length(head) if strong else lex.strong_surname_length(head)
            if surname == 0:
                continue
            given = ""
            for ch in text[pos + surname : pos + surname + 2]:
                if not is_hanzi(ch) or ch in STOP_CHARS:
                    break
                given += ch
            if len(given) == 2 and given[1] not in lex.given_chars and given[0] in lex.given_chars:
                given = given[:1]
            if not given or (not strong and not lex.is_given(given)):
                continue
            score = SCORE_STRONG_CUE if strong else SCORE_WEAK_CUE
            yield pos, pos + surname + len(given), score

    def _honorific_candidates(
        self, text: str, tokens: list[TokenTriple]
    ) -> Iterator[tuple[int, int, float]]:
        """Find the name (or surname) right before 先生 / 女士 / 经理 ..., longest first.

        A full name must start the text, follow a non-Hanzi or start a jieba token, and its
        given part must be common given-name characters, unless jieba itself found the
        name as one unknown or ``nr`` word (黄畅先生). Otherwise the surname alone is taken.
        """
        lex = self.lexicon
        starts = {start for start, _, _ in tokens}
        name_words = {
            (start, start + len(_strip_honorific(word)[0]))
            for start, word, tag in tokens
            if tag in NAME_TAGS or tag == UNKNOWN_TAG
        }
        for match in self._honorific_re.finditer(text):
            end = match.start()
            for length in (4, 3, 2, 1):
                start = end - length
                candidate = text[start:end]
                if start < 0 or not is_hanzi(candidate):
                    continue
                surname = lex.surname_length(candidate)
                if surname == 0:
                    continue
                given = candidate[surname:]
                if not given:
                    yield start, end, SCORE_SURNAME_HONORIFIC
                    break
                if len(given) > 2 or any(ch in STOP_CHARS for ch in given):
                    continue
                if start and start not in starts and is_hanzi(text[start - 1]):
                    continue
                if lex.is_given(given) or (start, end) in name_words:
                    yield start, end, SCORE_HONORIFIC
                    break

    def _cue_score(self, text: str, start: int) -> float:
        """Score implied by a cue word right before ``start`` (0 when there is none)."""
        head = text[max(0, start - 6) : start].rstrip(_CUE_SEPARATORS)
        if any(head.endswith(cue) for cue in STRONG_CUES):
            return SCORE_STRONG_CUE
        if any(head.endswith(cue) for cue in WEAK_CUES):
            return SCORE_WEAK_CUE
        return 0.0

    def _result(self, start: int, end: int, score: float) -> RecognizerResult:
        """Build a Presidio result that the context enhancer leaves alone."""
        return RecognizerResult(
            entity_type=self.ENTITY,
            start=start,
            end=end,
            score=score,
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self._label,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                RecognizerResult.IS_SCORE_ENHANCED_BY_CONTEXT_KEY: True,
            },
        )


def _name_regions(
    tokens: list[TokenTriple], lexicon: NameLexicon
) -> Iterator[tuple[int, str, set[tuple[int, int]]]]:
    """Yield runs of tokens that may hold a name, with the spans of their ``nr`` words.

    A run is contiguous Hanzi tokens that are unknown words, ``nr`` words, single
    characters, compound surnames or one- to two-character words made of given-name
    characters; it must hold an unknown word, an ``nr`` word or a surname token.
    """
    run: list[TokenTriple] = []
    for token in [*tokens, (-1, "", "")]:
        start, word, tag = token
        fits = is_hanzi(word) and (
            tag == UNKNOWN_TAG
            or tag in NAME_TAGS
            or len(word) == 1
            or word in lexicon.compound_surnames
            or lexicon.is_given(word)
        )
        if fits and (not run or run[-1][0] + len(run[-1][1]) == start):
            run.append(token)
            continue
        if any(
            t[2] == UNKNOWN_TAG or t[2] in NAME_TAGS or lexicon.surname_length(t[1]) == len(t[1])
            for t in run
        ):
            tagged = {(s, s + len(w)) for s, w, t in run if t in NAME_TAGS}
            yield run[0][0], "".join(w for _, w, _ in run), tagged
        run = [token] if fits else []


def _strip_honorific(word: str) -> tuple[str, bool]:
    """Split a trailing honorific off a token (``杨先生`` -> ``杨``, True)."""
    for honorific in HONORIFICS:
        if word.endswith(honorific) and len(word) > len(honorific):
            return word[: -len(honorific)], True
    return word, False


def _tokens(nlp_artifacts: NlpArtifacts | None) -> list[TokenTriple]:
    """``(offset, text, tag)`` of each token, or an empty list without artifacts."""
    if nlp_artifacts is None or nlp_artifacts.tokens is None:
        return []
    doc = nlp_artifacts.tokens
    triples: list[TokenTriple] | None = doc.user_data.get(TOKENS_KEY)
    if triples is None:
        triples = [(token.idx, token.text, token.tag_) for token in doc]
    return triples
