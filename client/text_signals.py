"""Per-message text signals on the edge, in process: intent, emotion, urgency with probabilities.

Edge software (a chat widget, the desk's ticket screen) calls :meth:`MessageScorer.score` with
a message the edge has already masked and gets, per head of the text model, the most likely
label, its probability and every label's probability — before the conversation goes on, with
no round trip and nothing leaving the edge. The scorer wraps a ``models.text.TextClassifier``
(the model federated training produces) and names which model version it scores with, so a
signal can always be traced to the model that produced it.

This is the in-process call of issue 14; fetching the newest global model from the server's
registry and the per-subject fields built from these signals come with it later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from models.text import DEFAULT_HEADS, TextClassifier


@dataclass(frozen=True, slots=True)
class HeadScore:
    """One head's answer for one message.

    Parameters
    ----------
    label : str
        The most likely label (e.g. ``complaint``).
    probability : float
        Its probability.
    probabilities : Mapping[str, float]
        Every label's probability (they sum to 1).
    """

    label: str
    probability: float
    probabilities: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class MessageSignals:
    """Every head's answer for one message, and the model version that gave them."""

    heads: Mapping[str, HeadScore]
    model_version: str


class MessageScorer:
    """Score masked messages with one text model.

    Parameters
    ----------
    model : TextClassifier
        The trained text model.
    model_version : str
        Which model this is (a registry version, a run and round); returned with every score.
    labels : Mapping[str, Sequence[str]] or None
        Label names per head, in the head's class order; ``None`` uses the default heads'
        names (intent, emotion, urgency) for the heads the model has.

    Raises
    ------
    ValueError
        If a head of the model has no label names, or their number differs from its classes.
    """

    def __init__(
        self,
        model: TextClassifier,
        *,
        model_version: str,
        labels: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        names = dict(DEFAULT_HEADS) if labels is None else {k: tuple(v) for k, v in labels.items()}
        problems = [
            head
            for head, size in model.config.heads.items()
            if head not in names or len(names[head]) != size
        ]
        if problems:
            raise ValueError(
                f"label names missing or of the wrong length for head(s): {', '.join(problems)}"
            )
        self.model = model
        self.model_version = model_version
        self._labels = {head: tuple(names[head]) for head in model.config.heads}

    def score(self, masked_text: str) -> MessageSignals:
        """Score one masked message.

        Parameters
        ----------
        masked_text : str
            The message after the edge's masking (placeholders such as ``<CN_MOBILE>``).

        Returns
        -------
        MessageSignals
            Label, probability and all probabilities per head, with the model version.
        """
        return self.score_many([masked_text])[0]

    def score_many(self, masked_texts: Sequence[str]) -> list[MessageSignals]:
        """Score several masked messages in one pass (same answers as one by one).

        Parameters
        ----------
        masked_texts : Sequence[str]
            Messages after masking.

        Returns
        -------
        list[MessageSignals]
            One per message, in order.
        """
        probabilities = self.model.score(list(masked_texts))
        out: list[MessageSignals] = []
        for row in range(len(masked_texts)):
            heads: dict[str, HeadScore] = {}
            for head, names in self._labels.items():
                values = probabilities[head][row]
                best = int(values.argmax())
                heads[head] = HeadScore(
                    label=names[best],
                    probability=float(values[best]),
                    probabilities={name: float(p) for name, p in zip(names, values, strict=True)},
                )
            out.append(MessageSignals(heads=heads, model_version=self.model_version))
        return out
