"""IPv4 and IPv6 addresses (``IP_ADDRESS``) with CJK-safe delimiters."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import ClassVar

from presidio_analyzer import Pattern
from presidio_analyzer.predefined_recognizers import IpRecognizer

logger = logging.getLogger(__name__)

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
IPV4_REGEX = (
    rf"(?<![0-9A-Za-z_.]){_OCTET}(?:\.{_OCTET}){{3}}(?:/(?:3[0-2]|[12]?[0-9]))?"
    r"(?![0-9A-Za-z_]|\.[0-9])"
)


def _ascii_word(regex: str) -> str:
    r"""Rewrite Presidio's ``\w``/``\b`` delimiters to ASCII classes (Hanzi are ``\w``)."""
    return regex.replace(r"\w", "0-9A-Za-z_").replace(r"\b", "")


class IpAddressRecognizer(IpRecognizer):
    r"""Presidio's IP recognizer with delimiters that also work next to Hanzi.

    Presidio delimits IPv4 with ``\b`` and IPv6 with ``\w`` look-arounds, which never fire
    between ``址`` and ``1``; this subclass uses ASCII classes instead. The
    ``ipaddress``-based invalidation of the parent is kept.

    Parameters
    ----------
    supported_language : str
        Language served (``zh`` or ``en``).
    context : sequence of str or None
        Context words; ``None`` keeps the defaults plus ``地址``.
    name : str or None
        Recognizer name.
    """

    TRIGGER: ClassVar[re.Pattern[str] | None] = re.compile(r"[0-9]\.[0-9]|:[0-9A-Fa-f]*:")
    NEEDS_NLP: ClassVar[bool] = False

    def __init__(
        self,
        *,
        supported_language: str = "en",
        context: Sequence[str] | None = None,
        name: str | None = None,
    ) -> None:
        patterns = [Pattern(name="IPv4", regex=IPV4_REGEX, score=0.6)]
        patterns += [
            Pattern(name=p.name, regex=_ascii_word(p.regex), score=p.score)
            for p in IpRecognizer.PATTERNS
            if p.name.startswith("IPv6") or p.name.startswith("IPv4_")
        ]
        default_context = [*self.CONTEXT, "地址", "登录"]
        super().__init__(
            patterns=patterns,
            context=list(default_context if context is None else context),
            supported_language=supported_language,
            name=name or f"IpAddressRecognizer_{supported_language}",
        )
