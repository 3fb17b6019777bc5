"""Profile building on the edge: features + explainable tags (+ model scores) -> stored fields.

Only fields declared in the field catalogue are ever produced (checked on every build), and
each value is checked against its catalogued shape before it is stored. What may later be
*uploaded* is decided per purpose by the uploader; this module decides what is *computed*.

A build refreshes every subject (``ProfileScope.ALL``, the default: windows slide for
everyone, so run one daily), only the subjects whose events or messages arrived since the
last build (``ProfileScope.TOUCHED``: the store's change sequence number is the watermark,
kept in the store metadata), or an explicit set of pseudonyms. Features come from the daily
rollups, so a refresh costs the subjects it covers, not every stored event.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from consent import FieldCatalogue, FieldNotCataloguedError, load_default_catalogue
from models import TAG_DEFINITIONS, compute_tags

from .features import SubjectFeatures, features_from_store
from .store import EdgeStore, StoredProfileField

if TYPE_CHECKING:
    from .text_profile import TextSignals

logger = logging.getLogger(__name__)

#: Feature values published as ``feature.<name>`` fields (all catalogued).
PUBLISHED_FEATURES: tuple[str, ...] = (
    "recency_days",
    "frequency_90d",
    "monetary_90d",
    "complaint_rate",
    "complaints_90d",
    "cs_messages_90d",
    "active_days_30d",
)
#: Model scores published as ``score.<name>`` fields when the edge has a global model.
PUBLISHED_SCORES: tuple[str, ...] = ("purchase_propensity", "escalation_risk")
#: Text-derived fields (``client.text_profile``) published as ``text.<name>``.
PUBLISHED_TEXT_FIELDS: tuple[str, ...] = (
    "last_intent",
    "negative_emotion_share_30d",
    "urgent_contacts_30d",
    "messages_30d",
)
#: Scores per subject: ``{pseudonym: {"purchase_propensity": p, "escalation_risk": q}}``.
Scores = Mapping[str, Mapping[str, float]]
#: Store metadata key: the change sequence number the last full or touched build covered.
PROFILE_WATERMARK_META = "profiles_built_seq"


class ProfileScope(StrEnum):
    """Which subjects ``build_profiles`` refreshes (besides an explicit set of pseudonyms).

    ``all``: every subject with behaviour; profiles of subjects without any are dropped.
    ``touched``: subjects whose events or messages changed since the last all/touched build.
    """

    ALL = "all"
    TOUCHED = "touched"


@dataclass
class ProfileBuildReport:
    """Outcome of building profiles.

    Parameters
    ----------
    subjects : int
        Subjects with a profile.
    provisional : int
        Of which provisional (new customers).
    fields_written : int
        Profile fields stored.
    tags_true : dict[str, int]
        Subjects holding each tag.
    scored : int
        Subjects that received model scores.
    text_signals : int
        Subjects that received text-derived fields.
    skipped_invalid : dict[str, int]
        Fields not stored because the value did not fit the catalogue, by field name.
    scope : str
        ``all``, ``touched`` or ``subjects`` (an explicit set).
    elapsed : float
        Wall-clock seconds.
    """

    subjects: int = 0
    provisional: int = 0
    fields_written: int = 0
    tags_true: dict[str, int] = field(default_factory=dict)
    scored: int = 0
    text_signals: int = 0
    skipped_invalid: dict[str, int] = field(default_factory=dict)
    scope: str = ProfileScope.ALL.value
    elapsed: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary (counts only)."""
        return {
            "subjects": self.subjects,
            "provisional": self.provisional,
            "fields_written": self.fields_written,
            "tags_true": dict(sorted(self.tags_true.items())),
            "scored": self.scored,
            "text_signals": self.text_signals,
            "skipped_invalid": dict(sorted(self.skipped_invalid.items())),
            "scope": self.scope,
            "elapsed_seconds": round(self.elapsed, 3),
        }


def produced_field_names() -> tuple[str, ...]:
    """Return every field name this module can produce."""
    return (
        *(f"tag.{name}" for name in TAG_DEFINITIONS),
        *(f"feature.{name}" for name in PUBLISHED_FEATURES),
        "feature.preferred_category",
        *(f"score.{name}" for name in PUBLISHED_SCORES),
        *(f"text.{name}" for name in PUBLISHED_TEXT_FIELDS),
    )


def check_catalogued(catalogue: FieldCatalogue) -> None:
    """Refuse to build if any producible field is missing from ``catalogue``.

    Parameters
    ----------
    catalogue : FieldCatalogue
        The catalogue in force.

    Raises
    ------
    FieldNotCataloguedError
        For the first producible field the catalogue does not declare.
    """
    for name in produced_field_names():
        if name not in catalogue.by_name:
            raise FieldNotCataloguedError(name)


#: Published values are coarsened (data minimisation, PIPL Art. 6): two decimals for scores,
#: confidences, weights and rates; whole days and whole yuan for recency and spend. It also
#: keeps a rebuild minutes later from changing every upload (nothing to re-send).
PUBLISHED_DECIMALS = 2
_WHOLE_NUMBER_FEATURES = frozenset(
    {"recency_days", "frequency_90d", "monetary_90d", "complaints_90d", "cs_messages_90d",
     "active_days_30d"}
)  # fmt: skip


def _publish(name: str, value: float) -> float | int:
    """Return a feature value at the precision it is published with."""
    if name in _WHOLE_NUMBER_FEATURES:
        return int(value)
    return round(value, PUBLISHED_DECIMALS)


def _text_fields(
    subject: str, signals: TextSignals, *, provisional: bool, computed_at: float
) -> Iterator[StoredProfileField]:
    """Yield the ``text.*`` fields of one subject's text signals."""
    if signals.last_intent is not None:
        confidence = signals.last_intent_confidence
        yield StoredProfileField(
            subject, "text.last_intent", signals.last_intent,
            None if confidence is None else round(confidence, PUBLISHED_DECIMALS),
            [], provisional, computed_at,
        )  # fmt: skip
    if signals.negative_emotion_share is not None:
        yield StoredProfileField(
            subject, "text.negative_emotion_share_30d",
            round(signals.negative_emotion_share, PUBLISHED_DECIMALS),
            None, [], provisional, computed_at,
        )  # fmt: skip
    yield StoredProfileField(
        subject, "text.urgent_contacts_30d", signals.urgent_contacts, None, [], provisional,
        computed_at,
    )  # fmt: skip
    yield StoredProfileField(
        subject, "text.messages_30d", signals.messages, None, [], provisional, computed_at
    )


def subject_fields(
    features: SubjectFeatures,
    *,
    computed_at: float,
    scores: Mapping[str, float] | None = None,
    text: TextSignals | None = None,
) -> Iterator[StoredProfileField]:
    """Yield the profile fields of one subject (not yet checked against the catalogue).

    Parameters
    ----------
    features : SubjectFeatures
        The subject's features.
    computed_at : float
        UTC epoch seconds the fields describe.
    scores : Mapping[str, float] or None
        Model scores of the subject, if any.
    text : TextSignals or None
        The subject's text-derived signals (``client.text_profile``), if any.

    Yields
    ------
    StoredProfileField
        Tags, published features, the preferred category, model scores and text fields.
    """
    subject, provisional = features.subject, features.provisional
    for tag in compute_tags(features.values, provisional=provisional):
        yield StoredProfileField(
            subject=subject,
            field=f"tag.{tag.name}",
            value=tag.value,
            confidence=round(tag.confidence, PUBLISHED_DECIMALS),
            explanation=[
                item.model_copy(
                    update={"weight": round(item.weight, PUBLISHED_DECIMALS)}
                ).model_dump()
                for item in tag.explanation
            ],
            provisional=provisional,
            computed_at=computed_at,
        )
    for name in PUBLISHED_FEATURES:
        yield StoredProfileField(
            subject,
            f"feature.{name}",
            _publish(name, features.values[name]),
            None,
            [],
            provisional,
            computed_at,
        )
    if features.preferred_category is not None:
        yield StoredProfileField(
            subject,
            "feature.preferred_category",
            features.preferred_category,
            None,
            [],
            provisional,
            computed_at,
        )
    for name in PUBLISHED_SCORES:
        if scores is not None and name in scores:
            yield StoredProfileField(
                subject,
                f"score.{name}",
                round(float(scores[name]), PUBLISHED_DECIMALS),
                None,
                [],
                provisional,
                computed_at,
            )
    if text is not None:
        yield from _text_fields(subject, text, provisional=provisional, computed_at=computed_at)


def build_profiles(
    *,
    store: EdgeStore,
    now: datetime,
    scores: Scores | None = None,
    text: Mapping[str, TextSignals] | None = None,
    catalogue: FieldCatalogue | None = None,
    subjects: Collection[str] | ProfileScope | None = None,
) -> ProfileBuildReport:
    """Compute and store the profiles of the subjects with behaviour on this edge.

    Parameters
    ----------
    store : EdgeStore
        The edge store (rollups and recent events are read; each refreshed subject's
        profile is replaced by the one built now, atomically).
    now : datetime
        The moment the profiles describe (timezone-aware).
    scores : Scores or None
        Model scores per subject, e.g. from ``client.scoring.score_subjects(store)``;
        ``None`` or ``{}`` when the edge has no global model yet.
    text : Mapping[str, TextSignals] or None
        Text-derived signals per subject (``client.text_profile.text_signals_for``).
    catalogue : FieldCatalogue or None
        The catalogue in force; default the shipped one.
    subjects : Collection[str] or ProfileScope or None
        ``None`` or ``ProfileScope.ALL``: every subject (a full rebuild);
        ``ProfileScope.TOUCHED``: subjects changed since the last all/touched build; or
        these pseudonyms only (their profiles are dropped if they have no behaviour). All
        and touched builds move the watermark.

    Returns
    -------
    ProfileBuildReport
        Subjects, provisional subjects, fields written and tag counts.

    Raises
    ------
    FieldNotCataloguedError
        If this module could produce a field the catalogue does not declare.
    ValueError
        If ``now`` is not timezone-aware.
    TypeError
        If ``subjects`` is a single string rather than a collection or a scope.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if isinstance(subjects, str) and not isinstance(subjects, ProfileScope):
        raise TypeError("subjects must be a collection of pseudonyms or a ProfileScope")
    started = time.perf_counter()
    catalogue = catalogue or load_default_catalogue()
    check_catalogued(catalogue)
    specs = catalogue.by_name
    report = ProfileBuildReport()
    tags_true: Counter[str] = Counter(dict.fromkeys(TAG_DEFINITIONS, 0))
    skipped: Counter[str] = Counter()
    computed_at = now.timestamp()
    watermark = store.change_seq()  # read first: rows arriving during the build count later
    scope, chosen = _resolve_scope(store, subjects)
    report.scope = scope
    profiles: dict[str, list[StoredProfileField]] = {s: [] for s in chosen or ()}
    for subject, features in features_from_store(store, now=now, subjects=chosen).items():
        subject_scores = (scores or {}).get(subject)
        report.subjects += 1
        report.provisional += features.provisional
        report.scored += subject_scores is not None
        kept = profiles.setdefault(subject, [])
        subject_text = (text or {}).get(subject)
        report.text_signals += subject_text is not None
        fields = subject_fields(
            features, computed_at=computed_at, scores=subject_scores, text=subject_text
        )
        for f in fields:
            if specs[f.field].value_problems(f.value):
                skipped[f.field] += 1
                continue
            if f.field.startswith("tag.") and f.value is True:
                tags_true[f.field.removeprefix("tag.")] += 1
            kept.append(f)
    # Each refreshed subject's field set is replaced, so fields no longer produced (a score
    # without a model, a category without purchases) do not linger; a full rebuild also
    # drops the profiles of subjects without behaviour any more.
    full = scope == ProfileScope.ALL
    report.fields_written = store.replace_profiles(profiles, drop_others=full)
    if scope != "subjects":
        store.set_meta(PROFILE_WATERMARK_META, str(watermark))
    report.tags_true = dict(tags_true)
    report.skipped_invalid = dict(skipped)
    report.elapsed = time.perf_counter() - started
    logger.info(
        "built %d profile(s) (%s; %d provisional, %d field(s)) in %.2fs",
        report.subjects,
        report.scope,
        report.provisional,
        report.fields_written,
        report.elapsed,
    )
    return report


def _resolve_scope(
    store: EdgeStore, subjects: Collection[str] | ProfileScope | None
) -> tuple[str, list[str] | None]:
    """Return the scope's name and its pseudonyms (``None``: every subject)."""
    if subjects is None or subjects == ProfileScope.ALL:
        return ProfileScope.ALL.value, None
    if subjects == ProfileScope.TOUCHED:
        since = int(store.get_meta(PROFILE_WATERMARK_META) or 0)
        return ProfileScope.TOUCHED.value, store.touched_subjects(since=since)
    return "subjects", sorted(set(subjects))
