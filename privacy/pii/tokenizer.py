"""A spaCy tokenizer that segments Chinese with jieba and tags each token's part of speech.

One segmentation pass gives both the tokens Presidio needs and the POS tags the name and
address recognizers need (jieba's ``posseg`` would segment a second time and is about ten
times slower with its HMM). Known words take their tag from jieba's dictionary; words that
jieba's HMM discovers (often unknown names) are tagged ``UNKNOWN_TAG``.

Besides ``token.tag_``, each ``Doc`` carries jieba's own ``(offset, text, tag)`` triples in
``doc.user_data[TOKENS_KEY]`` (every segment, single spaces included, which spaCy folds into
the previous token's whitespace): recognizers read them without iterating spaCy tokens,
which costs more than the segmentation itself.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import jieba
import jieba.posseg
from spacy.tokens import Doc
from spacy.vocab import Vocab

logger = logging.getLogger(__name__)

#: Tag of a Hanzi word that is not in the dictionary (found by jieba's HMM).
UNKNOWN_TAG = "unk"
#: Tag of a run of ASCII digits.
NUMBER_TAG = "m"
#: Tag of a run of Latin letters.
LATIN_TAG = "eng"
#: Tag of punctuation, whitespace and other symbols.
SYMBOL_TAG = "x"
#: ``Doc.user_data`` key of the ``(offset, text, tag)`` token triples.
TOKENS_KEY = "fedprofile.jieba_tokens"

#: One token: offset in the text, the token text, its POS tag.
TokenTriple = tuple[int, str, str]


def quiet_jieba() -> None:
    """Silence jieba's start-up chatter, which it prints through its own stderr handler."""
    jieba_logger = logging.getLogger("jieba")
    if jieba_logger.level < logging.INFO:
        jieba_logger.setLevel(logging.INFO)


class JiebaSegmenter:
    """jieba segmentation (with HMM new-word discovery) plus dictionary POS tags.

    The jieba dictionary is private to this segmenter, so user words never leak into the
    process-wide ``jieba`` state. Building it loads the dictionary (about 1 s).

    Parameters
    ----------
    user_words : mapping of str to str or None
        Extra words and their POS tag (e.g. known customer names tagged ``nr``).
    """

    def __init__(self, *, user_words: Mapping[str, str] | None = None) -> None:
        quiet_jieba()
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        self._dictionary_tags: Mapping[str, str] = jieba.posseg.dt.word_tag_tab
        self._user_tags: dict[str, str] = {}
        for word, tag in (user_words or {}).items():
            self._jieba.add_word(word)
            self._user_tags[word] = tag

    def tag(self, word: str) -> str:
        """Return the POS tag of one segment."""
        tag = self._dictionary_tags.get(word)
        if self._user_tags:
            tag = self._user_tags.get(word, tag)
        if tag:
            return tag
        if word.isascii():
            if word.isdigit():
                return NUMBER_TAG
            if word.isalpha():
                return LATIN_TAG
            return SYMBOL_TAG
        if all("\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" for ch in word):
            return UNKNOWN_TAG
        return SYMBOL_TAG

    def segments(self, text: str) -> Iterable[str]:
        """Return jieba's segments of ``text`` (their concatenation is ``text``)."""
        result: Iterable[str] = self._jieba.cut(text, HMM=True)
        return result

    def tokens(self, text: str) -> list[TokenTriple]:
        """Return ``(offset, text, tag)`` for every segment of ``text``."""
        triples: list[TokenTriple] = []
        offset = 0
        for piece in self._jieba.cut(text, HMM=True):
            triples.append((offset, piece, self.tag(piece)))
            offset += len(piece)
        return triples


class JiebaTokenizer:
    """Callable spaCy tokenizer over a :class:`JiebaSegmenter`; ``token.tag_`` is the POS tag.

    Parameters
    ----------
    vocab : spacy.vocab.Vocab
        Vocabulary of the pipeline the tokenizer belongs to.
    segmenter : JiebaSegmenter
        The loaded segmenter (may be shared by several tokenizers).
    """

    def __init__(self, vocab: Vocab, *, segmenter: JiebaSegmenter) -> None:
        self.vocab = vocab
        self.segmenter = segmenter

    def __call__(self, text: str) -> Doc:
        """Segment ``text`` into a spaCy ``Doc`` whose ``tag_`` holds the jieba POS tag."""
        triples = self.segmenter.tokens(text)
        words: list[str] = []
        spaces: list[bool] = []
        tags: list[str] = []
        for _, piece, tag in triples:
            if piece == " " and words and not spaces[-1]:
                spaces[-1] = True  # spaCy keeps a single space as trailing whitespace
                continue
            words.append(piece)
            spaces.append(False)
            tags.append(tag)
        doc = Doc(self.vocab, words=words, spaces=spaces, tags=tags)
        doc.user_data[TOKENS_KEY] = triples
        return doc
