"""E-mail addresses (``EMAIL_ADDRESS``), validated offline."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import ClassVar

import tldextract
from presidio_analyzer import Pattern
from presidio_analyzer.predefined_recognizers import EmailRecognizer

logger = logging.getLogger(__name__)

#: ASCII-only local part and domain, delimited without ``\b`` so that Hanzi glued to the
#: address (``邮箱service@example.com.cn``) stay outside the span.
CJK_EMAIL_REGEX = (
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9_%+\-](?:[A-Za-z0-9._%+\-]{0,62}[A-Za-z0-9_%+\-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![A-Za-z0-9\-])"
)


class EmailAddressRecognizer(EmailRecognizer):
    r"""Presidio's e-mail recognizer with an offline domain check and a CJK-safe pattern.

    The domain must end in a public suffix of tldextract's *bundled* list; the list is
    never fetched. For ``zh`` the local part and domain are ASCII-only, because Presidio's
    ``\w``-based pattern swallows Hanzi written next to the address.

    Parameters
    ----------
    supported_language : str
        Language served (``zh`` or ``en``).
    context : sequence of str or None
        Context words; ``None`` keeps the language's defaults.
    name : str or None
        Recognizer name.
    """

    TRIGGER: ClassVar[re.Pattern[str] | None] = re.compile("@")
    NEEDS_NLP: ClassVar[bool] = False
    ZH_CONTEXT: ClassVar[tuple[str, ...]] = ("邮箱", "邮件", "电邮", "email", "e-mail", "mail")

    def __init__(
        self,
        *,
        supported_language: str = "en",
        context: Sequence[str] | None = None,
        name: str | None = None,
    ) -> None:
        patterns = None
        default_context: Sequence[str] = self.CONTEXT
        if supported_language != "en":
            patterns = [Pattern(name="email_ascii", regex=CJK_EMAIL_REGEX, score=0.5)]
            default_context = self.ZH_CONTEXT
        super().__init__(
            patterns=patterns,
            context=list(default_context if context is None else context),
            supported_language=supported_language,
            name=name or f"EmailAddressRecognizer_{supported_language}",
        )
        self._extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    def validate_result(self, pattern_text: str) -> bool:
        """Return whether the address ends in a known public suffix (bundled list only)."""
        domain = pattern_text.rpartition("@")[2]
        return bool(self._extract(domain).fqdn)
