"""Chinese postal addresses (``CN_ADDRESS``): place tokens extended over the street tail.

An address starts at a place token (jieba tag ``ns``, or a word ending in an administrative
suffix such as 省/市/区/县) or right after an address cue (住在, 地址, 寄到 ...). From there
it extends over further components, each a short run of Hanzi ending in an administrative,
road or estate suffix (市, 区, 路, 街, 小区, 大厦 ...), and then over a numbered tail
(``88号院3号楼2单元501室``, ``B座``). It is kept when it has two components, or one
component plus a numbered tail, or follows a cue. A lone city name is not an address.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from presidio_analyzer import LocalRecognizer, RecognizerResult

from ..tokenizer import TOKENS_KEY, TokenTriple
from .base import HANZI, is_hanzi

if TYPE_CHECKING:
    from presidio_analyzer.nlp_engine import NlpArtifacts

logger = logging.getLogger(__name__)

_ADMIN = "特别行政区|自治区|自治州|自治县|地区|街道|省|市|盟|州|县|区|旗|镇|乡|村"
_ROAD = "大道|大街|胡同|路|街|巷|弄|道|里"
_ESTATE = "小区|花园|大厦|广场|公寓|家园|新村|园区|中心|苑|城"
#: Characters that never occur inside an address component (particles, pronouns, verbs).
_BREAK = "的了在是与到从我你他她吗呢吧啊给把被寄送发住"
_COMPONENT = re.compile(
    rf"(?:(?![{_BREAK}])[{HANZI}]){{1,8}}?(?:{_ADMIN}|{_ROAD}|{_ESTATE})+"
    rf"|[0-9一二三四五六七八九十]{{1,4}}(?:{_ROAD})"
)
_UNIT = "号院|号楼|号|栋|幢|座|单元|楼|层|室|户|期|区|弄|巷"
_TAIL = re.compile(rf"(?:[-—]?[0-9A-Za-z一二三四五六七八九十百零〇甲乙丙丁]{{1,6}}(?:{_UNIT}))+")
_ADMIN_END = re.compile(rf"(?:{_ADMIN})$")
CUES = ("住在", "住址", "地址", "家住", "寄到", "送到", "发到", "寄往", "送往", "收货地址", "位于")

SCORE_ADDRESS = 0.5
SCORE_CUE = 0.85


class CnAddressRecognizer(LocalRecognizer):
    """Recognise Chinese street addresses from place tokens and suffix rules.

    Parameters
    ----------
    supported_language : str
        Language served; ``zh``.
    name : str or None
        Recognizer name.
    """

    ENTITY: ClassVar[str] = "CN_ADDRESS"
    NEEDS_NLP: ClassVar[bool] = True
    TRIGGER: ClassVar[re.Pattern[str] | None] = re.compile(
        f"[省市区县镇乡村路街道巷弄号]|{_ESTATE}"
    )

    def __init__(self, *, supported_language: str = "zh", name: str | None = None) -> None:
        self._cue_re = re.compile("|".join(CUES))
        self._label = name or "CnAddressRecognizer"
        super().__init__(
            supported_entities=[self.ENTITY],
            name=self._label,
            supported_language=supported_language,
        )

    def load(self) -> None:
        """Nothing to load."""

    def analyze(
        self,
        text: str,
        entities: list[str],
        nlp_artifacts: NlpArtifacts | None = None,
    ) -> list[RecognizerResult]:
        """Return address spans.

        Parameters
        ----------
        text : str
            Text to analyse.
        entities : list of str
            Requested entities (unused: this recognizer emits ``CN_ADDRESS`` only).
        nlp_artifacts : NlpArtifacts or None
            Tokens with jieba POS tags; without them only cue-anchored addresses are found.

        Returns
        -------
        list of RecognizerResult
            Non-overlapping address spans.
        """
        cue_ends = {m.end() for m in self._cue_re.finditer(text)}
        results: list[RecognizerResult] = []
        covered = -1
        for start in sorted(set(self._anchors(nlp_artifacts)) | cue_ends):
            if start < covered:
                continue
            end, components, tail = _extend(text, start)
            cued = start in cue_ends
            if components >= 2 or (components and tail) or (cued and components):
                score = SCORE_CUE if cued or self._cue_before(text, start) else SCORE_ADDRESS
                results.append(self._result(start, end, score))
                covered = end
        return results

    @staticmethod
    def _anchors(nlp_artifacts: NlpArtifacts | None) -> Iterator[int]:
        """Offsets of place tokens (``ns``, or Hanzi words ending in an admin suffix)."""
        if nlp_artifacts is None or nlp_artifacts.tokens is None:
            return
        doc = nlp_artifacts.tokens
        triples: list[TokenTriple] | None = doc.user_data.get(TOKENS_KEY)
        if triples is None:
            triples = [(token.idx, token.text, token.tag_) for token in doc]
        for offset, word, tag in triples:
            if (tag == "ns" or _ADMIN_END.search(word)) and is_hanzi(word):
                yield offset

    def _cue_before(self, text: str, start: int) -> bool:
        """Whether an address cue ends within a few characters before ``start``."""
        return any(
            m.end() >= start - 2 for m in self._cue_re.finditer(text, max(0, start - 8), start)
        )

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


def _extend(text: str, start: int) -> tuple[int, int, bool]:
    """Extend an address from ``start``: returns (end, number of components, has tail)."""
    end = start
    components = 0
    while True:
        match = _COMPONENT.match(text, end)
        if match is None:
            break
        end = match.end()
        components += 1
    tail = _TAIL.match(text, end) if components else None
    if tail is not None:
        end = tail.end()
    return end, components, tail is not None
