"""Word lists behind the Chinese person-name recognizer, loaded from ``privacy/pii/data``."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from importlib import resources

logger = logging.getLogger(__name__)


def _read_list(filename: str) -> tuple[str, ...]:
    """Read one packaged word list: one entry per line, ``#`` starts a comment line."""
    text = resources.files("privacy.pii").joinpath("data", filename).read_text(encoding="utf-8")
    return tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


@dataclass(frozen=True, slots=True)
class NameLexicon:
    """Surnames, given-name characters and words never to take for names.

    Parameters
    ----------
    surnames : frozenset of str
        Single-character surnames.
    compound_surnames : frozenset of str
        Two-character surnames (欧阳, 司马, ...).
    ambiguous_surnames : frozenset of str
        Surnames that are also everyday words (和, 时, 高 ...); they start a name only with
        stronger evidence (a cue, an honorific, a dictionary name).
    given_chars : frozenset of str
        Characters common in given names.
    deny : frozenset of str
        Words that are never person names (brands, products, greetings).
    """

    surnames: frozenset[str]
    compound_surnames: frozenset[str]
    ambiguous_surnames: frozenset[str]
    given_chars: frozenset[str]
    deny: frozenset[str]

    def surname_length(self, text: str) -> int:
        """Return the length of the surname ``text`` starts with (2, 1), or 0 if none."""
        if text[:2] in self.compound_surnames:
            return 2
        if text[:1] in self.surnames:
            return 1
        return 0

    def strong_surname_length(self, text: str) -> int:
        """Like :meth:`surname_length`, but 0 for a surname that is also an everyday word."""
        length = self.surname_length(text)
        return 0 if length == 1 and text[0] in self.ambiguous_surnames else length

    def is_given(self, text: str) -> bool:
        """Return whether ``text`` is 1-2 characters that are all common in given names."""
        return 1 <= len(text) <= 2 and all(ch in self.given_chars for ch in text)

    def with_words(self, *, deny: tuple[str, ...] = ()) -> NameLexicon:
        """Return a copy whose deny list also holds ``deny``."""
        return NameLexicon(
            surnames=self.surnames,
            compound_surnames=self.compound_surnames,
            ambiguous_surnames=self.ambiguous_surnames,
            given_chars=self.given_chars,
            deny=self.deny | frozenset(deny),
        )


@functools.cache
def load_name_lexicon() -> NameLexicon:
    """Load the packaged lists once per process.

    Returns
    -------
    NameLexicon
        Surnames (``surnames.txt``, ``ambiguous_surnames.txt``), given-name characters
        (``given_name_chars.txt``) and the deny list (``deny_names.txt``).
    """
    surnames = _read_list("surnames.txt")
    return NameLexicon(
        surnames=frozenset(s for s in surnames if len(s) == 1),
        compound_surnames=frozenset(s for s in surnames if len(s) == 2),
        ambiguous_surnames=frozenset(_read_list("ambiguous_surnames.txt")),
        given_chars=frozenset(_read_list("given_name_chars.txt")),
        deny=frozenset(_read_list("deny_names.txt")),
    )
