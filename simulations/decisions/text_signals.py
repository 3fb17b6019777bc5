"""Live signals from a trained text classifier: intent, emotion and urgency of each message.

Deployed edges score each masked message with the federated text model
(``client.text_signals.MessageScorer``, trained with user-level DP on agents' labels). The
decision simulation stands in for it with the text task's simple baseline, trained here on a
separate set of generated masked messages (``simulations.labeled.masked_messages``, its own
seed): TF-IDF over character 1-3-grams and one logistic regression per head. On these
template messages the baseline is at least as accurate as the federated model
(``docs/learning.md``: held-out intent accuracy 1.000 against 0.943), so the simulated gain
of models is, if anything, optimistic; the report shows the same rules on the true labels
beside it. Each contact's signals are the heads' most likely labels with their probabilities,
what ``models.decisions.Signals`` takes; the router never sees the true labels.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from ..labeled import masked_messages

logger = logging.getLogger(__name__)

#: The heads scored, as ``models.decisions.SIGNAL_LABELS`` names them.
HEADS: tuple[str, ...] = ("intent", "emotion", "urgency")


@dataclass(frozen=True)
class ScoredMessage:
    """One message's live signals: each head's label and that label's probability."""

    labels: Mapping[str, str]
    probabilities: Mapping[str, float]


class TextSignalModel:
    """TF-IDF character n-grams + one logistic regression per head (the text baseline).

    Parameters
    ----------
    vectorizer : TfidfVectorizer
        Fitted on the training texts.
    heads : Mapping[str, LogisticRegression]
        One fitted classifier per head.
    trained_on : int
        Number of training messages.
    """

    def __init__(
        self,
        vectorizer: TfidfVectorizer,
        heads: Mapping[str, LogisticRegression],
        trained_on: int,
    ) -> None:
        self.vectorizer = vectorizer
        self.heads = dict(heads)
        self.trained_on = trained_on

    @classmethod
    def train(cls, texts: Sequence[str], labels: Mapping[str, Sequence[str]]) -> TextSignalModel:
        """Fit the vectorizer and one classifier per head.

        Raises
        ------
        ValueError
            If there are no texts, or a head's labels differ in length or have one class.
        """
        if not texts:
            raise ValueError("the text model needs training messages")
        vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(1, 3), min_df=2, sublinear_tf=True
        )
        x = vectorizer.fit_transform(texts)
        heads: dict[str, LogisticRegression] = {}
        for head in HEADS:
            y = list(labels[head])
            if len(y) != len(texts) or len(set(y)) < 2:
                raise ValueError(f"head {head!r} needs one label per text and two classes")
            heads[head] = LogisticRegression(C=10.0, max_iter=2000).fit(x, y)
        return cls(vectorizer, heads, len(texts))

    def score(self, texts: Sequence[str]) -> list[ScoredMessage]:
        """Score messages: each head's most likely label and its probability."""
        if not texts:
            return []
        x = self.vectorizer.transform(texts)
        per_head: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for head, model in self.heads.items():
            proba = model.predict_proba(x)
            best = proba.argmax(axis=1)
            per_head[head] = (model.classes_[best], proba[np.arange(len(texts)), best])
        return [
            ScoredMessage(
                labels={h: str(per_head[h][0][i]) for h in self.heads},
                probabilities={h: round(float(per_head[h][1][i]), 6) for h in self.heads},
            )
            for i in range(len(texts))
        ]


def train_text_model(*, messages: int, seed: int, english_share: float) -> TextSignalModel:
    """Train the stand-in on ``messages`` freshly generated masked messages.

    Parameters
    ----------
    messages : int
        Training messages (intents drawn uniformly, as in ``masked_messages``).
    seed : int
        Seed of the training set (kept apart from the contacts' seeds).
    english_share : float
        Share of English messages.

    Returns
    -------
    TextSignalModel
        The fitted model.

    Raises
    ------
    ValueError
        If ``messages`` is below 100.
    """
    if messages < 100:
        raise ValueError("the text model needs at least 100 training messages")
    texts, labels = masked_messages(messages, seed=seed, english_share=english_share)
    model = TextSignalModel.train(texts, labels)
    logger.info("text stand-in trained on %d messages", messages)
    return model


def head_accuracy(
    scored: Sequence[ScoredMessage], truth: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Share of messages whose predicted label equals the true one, per head."""
    out: dict[str, float] = {}
    for head in HEADS:
        hits = [s.labels[head] == t for s, t in zip(scored, truth[head], strict=True)]
        out[head] = round(float(np.mean(hits)), 4) if hits else 0.0
    return out
