"""Text-derived profile signals on the edge: score recent messages, summarise per subject.

A profile run (``fedprofile edge profile``, the demo) calls :func:`text_signals_for`:

1. **Scorer.** The latest global text model the edge holds (received in a federated round
   or fetched from the server's registry) becomes a ``client.text_signals.MessageScorer``
   named by its registry version. A head's answers are used only if that model passed the
   quality gate on this edge's own held-out labelled messages (one-vs-rest AUC at least
   ``MIN_AUC`` on at least ``MIN_EVAL_EXAMPLES`` messages), as for the behaviour scores.
2. **Incremental scoring.** Messages of the last ``WINDOW_DAYS`` days that no score, or only
   an older model version's score, covers are scored and kept (``message_scores``): a run
   costs the messages that arrived since the last one, or one pass after a new model.
3. **Per subject.** For each message the agent's label wins where there is one (a person's
   judgement beats the model's); otherwise the model's. The subject's signals are the last
   message's intent, the share of messages with negative emotion and the number of urgent
   contacts in the window, and how many messages these rest on.

Nothing here leaves the edge: ``client.profile`` turns the signals into catalogued fields,
and the uploader sends them only for purposes the subject consented to.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from .message_score_store import SCORED_HEADS, MessageScore
from .scoring import MIN_AUC, MIN_EVAL_EXAMPLES, model_quality
from .store import EdgeStore, StoredMessage, to_epoch

if TYPE_CHECKING:
    from .text_signals import MessageScorer

logger = logging.getLogger(__name__)

#: Name of the text model in the edge store, the ledger and the server registry.
TEXT_MODEL = "text"
#: Days of messages the signals summarise.
WINDOW_DAYS = 30
#: Messages scored per forward pass.
_CHUNK = 256


@dataclass(frozen=True, slots=True)
class TextSignals:
    """One subject's text-derived signals over the window.

    Parameters
    ----------
    last_intent : str or None
        Intent of the subject's latest message with a known intent.
    last_intent_confidence : float or None
        The model's probability for it (1.0 when an agent labelled it).
    last_intent_source : {"agent", "model"} or None
        Who judged the latest intent.
    negative_emotion_share : float or None
        Share of messages with a known emotion that were negative (``None`` without any).
    urgent_contacts : int
        Messages judged urgent.
    messages : int
        Messages in the window with at least one known signal.
    """

    last_intent: str | None
    last_intent_confidence: float | None
    last_intent_source: Literal["agent", "model"] | None
    negative_emotion_share: float | None
    urgent_contacts: int
    messages: int


@dataclass(frozen=True, slots=True)
class TextScoringReport:
    """What a scoring pass did: the model version, the heads it may answer, messages scored."""

    model_version: str | None
    published_heads: tuple[str, ...]
    scored: int


def publishable_heads(store: EdgeStore, *, min_auc: float | None = MIN_AUC) -> tuple[str, ...]:
    """Return the text heads whose answers passed this edge's quality gate (all if ``None``)."""
    if min_auc is None:
        return SCORED_HEADS
    quality = model_quality(store, TEXT_MODEL)
    if quality is None or quality.num_examples < MIN_EVAL_EXAMPLES:
        return ()
    return tuple(h for h in SCORED_HEADS if quality.head_aucs.get(h, 0.0) >= min_auc)


def load_scorer(store: EdgeStore) -> MessageScorer | None:
    """Return a ``MessageScorer`` over the edge's latest global text model, or ``None``.

    ``None`` when the edge holds no text model or it cannot be read (logged). The scorer
    names the registry version the server gave with the weights, else the round.
    """
    saved = store.load_global_model(TEXT_MODEL)
    architecture = store.global_model_architecture(TEXT_MODEL)
    if saved is None or architecture is None:
        return None
    from models.text import TextClassifier, TextModelConfig  # torch only when needed
    from models.weights import set_weights, weights_from_bytes

    from .text_signals import MessageScorer

    server_round, data = saved
    version = store.global_model_version(TEXT_MODEL) or f"{TEXT_MODEL}:round-{server_round}"
    try:
        model = TextClassifier(TextModelConfig(**architecture))
        set_weights(model, weights_from_bytes(data))
        return MessageScorer(model, model_version=version)
    except (TypeError, ValueError, KeyError):
        logger.warning("stored global text model %s is unreadable; messages not scored", version)
        return None


def _recent(
    store: EdgeStore, *, now: datetime, subjects: Collection[str] | None
) -> Iterator[StoredMessage]:
    """Yield the window's messages (subject, then time order)."""
    start = to_epoch(now - timedelta(days=WINDOW_DAYS))
    yield from store.messages_between(start=start, end=to_epoch(now) + 1e-6, subjects=subjects)


def score_recent_messages(
    store: EdgeStore,
    scorer: MessageScorer,
    *,
    now: datetime,
    subjects: Collection[str] | None = None,
) -> int:
    """Score the window's messages not yet scored by ``scorer``'s model version.

    Parameters
    ----------
    store : EdgeStore
        The edge store (scores are kept in it).
    scorer : client.text_signals.MessageScorer
        The scorer (``load_scorer``).
    now : datetime
        End of the window (timezone-aware).
    subjects : Collection[str] or None
        Only these subjects' messages (``None``: every subject).

    Returns
    -------
    int
        Messages scored now.
    """
    since = to_epoch(now - timedelta(days=WINDOW_DAYS))
    done = store.scored_versions(since=since)
    todo = [m for m in _recent(store, now=now, subjects=subjects)
            if done.get(m.message_id) != scorer.model_version]  # fmt: skip
    for start in range(0, len(todo), _CHUNK):
        chunk = todo[start : start + _CHUNK]
        answers = scorer.score_many([m.masked_text for m in chunk])
        store.save_message_scores(
            MessageScore(
                message_id=m.message_id,
                subject=m.subject,
                ts=m.ts,
                model_version=a.model_version,
                labels={h: s.label for h, s in a.heads.items() if h in SCORED_HEADS},
                probabilities={h: s.probability for h, s in a.heads.items() if h in SCORED_HEADS},
            )
            for m, a in zip(chunk, answers, strict=True)
        )
    if todo:
        logger.info("scored %d message(s) with text model %s", len(todo), scorer.model_version)
    return len(todo)


def _judged(
    message: StoredMessage, score: MessageScore | None, heads: Sequence[str]
) -> dict[str, tuple[str, float, Literal["agent", "model"]]]:
    """Return head to (label, confidence, source): the agent's label, else the model's."""
    out: dict[str, tuple[str, float, Literal["agent", "model"]]] = {}
    for head in SCORED_HEADS:
        if message.labels.get(head):
            out[head] = (message.labels[head], 1.0, "agent")
        elif score is not None and head in heads and head in score.labels:
            out[head] = (score.labels[head], score.probabilities.get(head, 0.0), "model")
    return out


def subject_text_signals(
    store: EdgeStore,
    *,
    now: datetime,
    heads: Sequence[str],
    subjects: Collection[str] | None = None,
) -> dict[str, TextSignals]:
    """Summarise each subject's window of messages (see the module docstring).

    Parameters
    ----------
    store : EdgeStore
        The edge store.
    now : datetime
        End of the window (timezone-aware).
    heads : Sequence[str]
        Heads whose model answers may be used (``publishable_heads``); agent labels are
        always used.
    subjects : Collection[str] or None
        Only these subjects (``None``: every subject with messages in the window).

    Returns
    -------
    dict[str, TextSignals]
        Subjects with at least one judged message in the window.
    """
    since, until = to_epoch(now - timedelta(days=WINDOW_DAYS)), to_epoch(now)
    scores = {s.message_id: s for s in store.message_scores(since=since, until=until,
                                                            subjects=subjects)}  # fmt: skip
    judged: dict[str, list[dict[str, tuple[str, float, Literal["agent", "model"]]]]] = {}
    for message in _recent(store, now=now, subjects=subjects):  # subject, then time order
        answer = _judged(message, scores.get(message.message_id), heads)
        if answer:
            judged.setdefault(message.subject, []).append(answer)
    out: dict[str, TextSignals] = {}
    for subject, answers in judged.items():
        intents = [a["intent"] for a in answers if "intent" in a]
        emotions = [a["emotion"][0] for a in answers if "emotion" in a]
        last = intents[-1] if intents else None
        out[subject] = TextSignals(
            last_intent=None if last is None else last[0],
            last_intent_confidence=None if last is None else last[1],
            last_intent_source=None if last is None else last[2],
            negative_emotion_share=(
                emotions.count("negative") / len(emotions) if emotions else None
            ),
            urgent_contacts=sum(1 for a in answers if a.get("urgency", ("",))[0] == "urgent"),
            messages=len(answers),
        )
    return out


def text_signals_for(
    store: EdgeStore,
    *,
    now: datetime,
    subjects: Collection[str] | None = None,
    min_auc: float | None = MIN_AUC,
) -> tuple[dict[str, TextSignals], TextScoringReport]:
    """Score new messages with the latest text model, then summarise per subject.

    Parameters
    ----------
    store : EdgeStore
        The edge store.
    now : datetime
        End of the window (timezone-aware).
    subjects : Collection[str] or None
        Only these subjects (``None``: all).
    min_auc : float or None
        The quality gate for the model's heads (``None``: no gate).

    Returns
    -------
    tuple[dict[str, TextSignals], TextScoringReport]
        Signals per subject and what the scoring pass did.
    """
    scorer = load_scorer(store)
    version = None if scorer is None else scorer.model_version
    heads = publishable_heads(store, min_auc=min_auc) if scorer is not None else ()
    scored = (
        score_recent_messages(store, scorer, now=now, subjects=subjects)
        if scorer is not None and heads
        else 0
    )
    signals = subject_text_signals(store, now=now, heads=heads, subjects=subjects)
    return signals, TextScoringReport(model_version=version, published_heads=heads, scored=scored)
