"""Offline NLP engine: blank spaCy pipelines, Chinese tokenised and POS-tagged by jieba.

Presidio's default engine loads ``en_core_web_lg`` and downloads it when missing. This
engine only builds blank pipelines in memory, so it never touches the network. No named
entities come out of it: person names and addresses are found by our own recognizers from
the jieba tags.

spaCy interns every new token string in the pipeline's vocabulary, which would grow without
bound in a long-running edge (every phone number is a new string). The engine therefore
rebuilds its blank pipelines, keeping the loaded jieba dictionary, every
``refresh_every`` documents.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import spacy
from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine
from spacy.language import Language

from .tokenizer import TOKENS_KEY, JiebaSegmenter, JiebaTokenizer, TokenTriple

logger = logging.getLogger(__name__)

#: Documents processed before the blank pipelines are rebuilt to release interned strings.
DEFAULT_REFRESH_EVERY = 50_000


class OfflineNlpEngine(SpacyNlpEngine):
    """Presidio NLP engine over blank spaCy pipelines (no model, no download).

    Parameters
    ----------
    languages : sequence of str
        Language codes to build (``zh`` and/or ``en``).
    user_words : mapping of str to str or None
        Extra jieba words and POS tags for Chinese (e.g. known names tagged ``nr``).
    refresh_every : int
        Documents after which the pipelines are rebuilt (bounds vocabulary growth).
    """

    engine_name = "fedprofile_offline"

    def __init__(
        self,
        *,
        languages: Sequence[str],
        user_words: Mapping[str, str] | None = None,
        refresh_every: int = DEFAULT_REFRESH_EVERY,
    ) -> None:
        if not languages:
            raise ValueError("languages must name at least one language")
        if refresh_every < 1:
            raise ValueError("refresh_every must be >= 1")
        super().__init__(
            models=[{"lang_code": lang, "model_name": f"blank:{lang}"} for lang in languages]
        )
        self._languages = tuple(languages)
        self._user_words = dict(user_words or {})
        self._refresh_every = refresh_every
        self._processed = 0
        self._segmenter: JiebaSegmenter | None = None

    def load(self) -> None:
        """Build the blank pipelines (loads the jieba dictionary for ``zh``, about 1 s)."""
        # Presidio declares ``nlp`` as None until loaded; it is a dict of pipelines after.
        self.nlp = {lang: self._build(lang) for lang in self._languages}  # type: ignore[assignment]
        self._processed = 0

    def _build(self, lang: str) -> Language:
        """Build one blank pipeline, reusing the jieba tokenizer once it exists."""
        if lang != "zh":
            return spacy.blank(lang)
        if self._segmenter is None:
            self._segmenter = JiebaSegmenter(user_words=self._user_words)
        pipeline = spacy.blank("zh")
        pipeline.tokenizer = JiebaTokenizer(pipeline.vocab, segmenter=self._segmenter)
        return pipeline

    def process_text(self, text: str, language: str) -> NlpArtifacts:
        """Tokenise ``text`` and return Presidio's NLP artifacts (tokens, no entities).

        Parameters
        ----------
        text : str
            Text to process.
        language : str
            One of the engine's languages.

        Returns
        -------
        NlpArtifacts
            Tokens (a spaCy ``Doc`` whose ``tag_`` holds jieba POS tags for Chinese).
        """
        self._processed += 1
        if self._processed > self._refresh_every:
            logger.debug("rebuilding blank pipelines after %d documents", self._processed - 1)
            self.load()
            self._processed = 1
        if not self.nlp:
            raise ValueError("NLP engine is not loaded; call load() first")
        doc = self.nlp[language](text)
        triples: list[TokenTriple] | None = doc.user_data.get(TOKENS_KEY)
        if triples is None:
            triples = [(token.idx, token.text, token.tag_) for token in doc]
        return NlpArtifacts(
            entities=[],
            tokens=doc,
            tokens_indices=[offset for offset, _, _ in triples],
            lemmas=[word.lower() for _, word, _ in triples],
            nlp_engine=self,
            language=language,
        )

    def is_stopword(self, word: str, language: str) -> bool:
        """Return False: no stop-word list (a vocabulary lookup would also grow the vocab)."""
        return False

    def is_punct(self, word: str, language: str) -> bool:
        """Return whether ``word`` has no letter or digit (checked without the vocabulary)."""
        return not any(ch.isalnum() for ch in word)
