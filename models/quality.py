"""Data quality of an edge's training data: measured on the edge, judged on the server.

A broken export or a drifted population on one channel reaches every customer's scores
through the global model, so each edge measures, every training round, how its data
compares with its own **reference window** (the first round it trained on healthy data,
kept on the edge) and sends the result with its update, as aggregates only:

- ``quality-psi-max`` / ``quality-psi-mean``: Population Stability Index of each feature
  (10 bins at the reference's deciles) against the reference; < 0.1 stable, 0.1-0.25
  moderate, > 0.25 significant shift (the credit-risk convention);
- ``quality-label-rate`` and ``quality-label-shift``: share of the main label's positive
  class (class 1; for more classes, the reference's most frequent class) and its absolute
  change against the reference;
- ``quality-constant-features``: share of features that varied in the reference but are
  constant now (a renamed or dropped source column, filled with a default);
- ``quality-duplicate-rate``: share of rows that repeat another row exactly;
- ``quality-volume-ratio``: examples now / examples in the reference.

Every value is computed over at least ``MIN_QUALITY_EXAMPLES`` examples; below that the edge
reports ``quality-reported = 0`` and ``NOT_MEASURED`` (-1) for the rest (minimum counts: no
per-customer value ever leaves; every reply carries the same keys). The reference stays on
the edge; a round that raises no flag becomes the new reference, so slow, accepted change
moves the reference while a sudden break is judged against the last healthy window.

``assess`` is the server's documented policy (``docs/robustness.md``): it turns the numbers
into flags, each with what aggregation does about it (exclude or down-weight).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

#: Examples a quality report needs; below it the edge reports nothing but the fact.
MIN_QUALITY_EXAMPLES = 50
#: Bins of each feature's PSI (at the reference's quantiles).
PSI_BINS = 10
#: Smallest bin share in the PSI (an empty bin would make it infinite).
PSI_FLOOR = 1e-4
#: Value of a quality key the edge could not measure (too few examples, no reference yet).
NOT_MEASURED = -1.0

#: Prefix of every quality metric key.
QUALITY_PREFIX = "quality-"
Q_REPORTED = "quality-reported"
Q_PSI_MAX = "quality-psi-max"
Q_PSI_MEAN = "quality-psi-mean"
Q_LABEL_RATE = "quality-label-rate"
Q_LABEL_SHIFT = "quality-label-shift"
Q_CONSTANT = "quality-constant-features"
Q_DUPLICATES = "quality-duplicate-rate"
Q_VOLUME = "quality-volume-ratio"
QUALITY_KEYS = (
    Q_REPORTED,
    Q_PSI_MAX,
    Q_PSI_MEAN,
    Q_LABEL_RATE,
    Q_LABEL_SHIFT,
    Q_CONSTANT,
    Q_DUPLICATES,
    Q_VOLUME,
)

#: What aggregation does about a flag.
FlagAction = Literal["exclude", "down-weight", "note"]
FlagKind = Literal["schema-break", "drift", "label-shift", "volume-drop", "duplicates"]


@dataclass(frozen=True)
class QualityReference:
    """An edge's reference window, kept on the edge (never sent).

    Parameters
    ----------
    cuts : list[list[float]]
        Per feature, the inner bin edges (the reference's deciles, deduplicated).
    shares : list[list[float]]
        Per feature, the reference's share of examples in each bin.
    varying : list[bool]
        Per feature, whether it took more than one value in the reference.
    label_class : int
        The class whose rate is tracked.
    label_rate : float
        Its share in the reference.
    examples : int
        Examples in the reference.
    """

    cuts: list[list[float]]
    shares: list[list[float]]
    varying: list[bool]
    label_class: int
    label_rate: float
    examples: int

    def to_json(self) -> dict[str, Any]:
        """Return the reference as JSON values (the edge stores it)."""
        return {
            "cuts": self.cuts,
            "shares": self.shares,
            "varying": self.varying,
            "label_class": self.label_class,
            "label_rate": self.label_rate,
            "examples": self.examples,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> QualityReference:
        """Rebuild a stored reference."""
        return cls(
            cuts=[[float(x) for x in c] for c in value["cuts"]],
            shares=[[float(x) for x in s] for s in value["shares"]],
            varying=[bool(v) for v in value["varying"]],
            label_class=int(value["label_class"]),
            label_rate=float(value["label_rate"]),
            examples=int(value["examples"]),
        )


def _shares(column: np.ndarray, cuts: list[float]) -> np.ndarray:
    counts = np.bincount(np.searchsorted(cuts, column, side="right"), minlength=len(cuts) + 1)
    return counts / max(len(column), 1)


def population_stability_index(expected: np.ndarray, actual: np.ndarray) -> float:
    """Return PSI = Σ (a − e) · ln(a / e) over bins, shares floored at ``PSI_FLOOR``."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _clean(features: np.ndarray) -> np.ndarray:
    matrix = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    return np.where(np.isfinite(matrix), matrix, np.nan)


def build_reference(features: np.ndarray, labels: np.ndarray) -> QualityReference | None:
    """Return the reference window of ``features`` / ``labels``, or ``None`` when too few.

    Parameters
    ----------
    features : np.ndarray
        ``(n, k)`` numeric summary of each example (``Learner.quality_features``).
    labels : np.ndarray
        ``(n,)`` main labels (negative = unlabelled, ignored).
    """
    matrix = _clean(features)
    if len(matrix) < MIN_QUALITY_EXAMPLES:
        return None
    cuts: list[list[float]] = []
    shares: list[list[float]] = []
    varying: list[bool] = []
    for column in matrix.T:
        values = column[np.isfinite(column)]
        inner = (
            np.unique(np.quantile(values, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
            if len(values)
            else np.asarray([])
        )
        cut = [float(x) for x in inner]
        cuts.append(cut)
        shares.append([float(x) for x in _shares(np.nan_to_num(column, nan=-np.inf), cut)])
        varying.append(bool(len(values) and np.ptp(values) > 0))
    known = labels[labels >= 0].astype(np.int64)
    classes = np.bincount(known) if len(known) else np.zeros(2, dtype=np.int64)
    label_class = 1 if len(classes) == 2 else int(np.argmax(classes))
    rate = float(np.mean(known == label_class)) if len(known) else 0.0
    return QualityReference(cuts, shares, varying, label_class, rate, len(matrix))


def measure(
    features: np.ndarray, labels: np.ndarray, reference: QualityReference | None
) -> dict[str, float]:
    """Return the round's quality aggregates against ``reference`` (see the module docstring).

    With fewer than ``MIN_QUALITY_EXAMPLES`` examples, or no reference, only
    ``quality-reported`` (0) and what needs no reference are returned.
    """
    matrix = _clean(features)
    n = len(matrix)
    out = dict.fromkeys(QUALITY_KEYS, NOT_MEASURED)
    if n < MIN_QUALITY_EXAMPLES:
        out[Q_REPORTED] = 0.0
        return out
    rounded = np.round(np.nan_to_num(matrix, nan=-1e300), 9)
    unique_rows = len(np.unique(rounded, axis=0)) if rounded.shape[1] else n
    out[Q_REPORTED] = 1.0
    out[Q_DUPLICATES] = 1.0 - unique_rows / n
    if reference is None or len(reference.cuts) != matrix.shape[1]:
        return out
    psis = [
        population_stability_index(
            np.asarray(shares), _shares(np.nan_to_num(column, nan=-np.inf), cuts)
        )
        for column, cuts, shares in zip(matrix.T, reference.cuts, reference.shares, strict=True)
    ]
    constant = [
        was and not (np.isfinite(column).any() and np.nanmax(column) > np.nanmin(column))
        for column, was in zip(matrix.T, reference.varying, strict=True)
    ]
    known = labels[labels >= 0].astype(np.int64)
    rate = float(np.mean(known == reference.label_class)) if len(known) else 0.0
    varying = max(sum(reference.varying), 1)
    out.update(
        {
            Q_PSI_MAX: float(max(psis, default=0.0)),
            Q_PSI_MEAN: float(np.mean(psis)) if psis else 0.0,
            Q_LABEL_RATE: rate,
            Q_LABEL_SHIFT: abs(rate - reference.label_rate),
            Q_CONSTANT: sum(constant) / varying,
            Q_VOLUME: n / max(reference.examples, 1),
        }
    )
    return out


@dataclass(frozen=True, slots=True)
class QualityFlag:
    """One problem the server sees in an edge's quality report, and what it does about it."""

    kind: FlagKind
    action: FlagAction
    reason: str


#: The documented policy: (metric, threshold, kind, action) per problem, checked in order.
PSI_SIGNIFICANT = 0.25
PSI_MODERATE = 0.10
CONSTANT_LIMIT = 0.20
LABEL_SHIFT_LIMIT = 0.25
LABEL_SHIFT_NOTE = 0.10
VOLUME_DROP = 0.20
DUPLICATE_LIMIT = 0.50
#: Factor a down-weighted edge's FedAvg weight is multiplied by.
DOWN_WEIGHT = 0.5


def assess(metrics: Mapping[str, float]) -> list[QualityFlag]:
    """Return the flags the policy raises for one edge's quality aggregates.

    Exclude: a schema break (more than 20% of the reference's varying features now
    constant), significant drift (PSI > 0.25 in some feature) or a label-rate shift above
    0.25. Down-weight (FedAvg weight × 0.5): moderate drift (PSI 0.1-0.25), a label shift
    above 0.10, volume below 20% of the reference, more than half the rows duplicated.
    Nothing is judged when the edge reported no quality (too few examples).
    """
    if metrics.get(Q_REPORTED, 0.0) <= 0:
        return []
    flags: list[QualityFlag] = []
    constant = metrics.get(Q_CONSTANT, NOT_MEASURED)
    psi = metrics.get(Q_PSI_MAX, NOT_MEASURED)
    shift = metrics.get(Q_LABEL_SHIFT, NOT_MEASURED)
    if constant > CONSTANT_LIMIT:
        flags.append(
            QualityFlag(
                "schema-break",
                "exclude",
                f"{100 * constant:.0f}% of the features that varied in the reference window "
                "are constant now (a missing or renamed source field?)",
            )
        )
    if psi > PSI_SIGNIFICANT:
        flags.append(
            QualityFlag("drift", "exclude", f"feature drift PSI {psi:.2f} > {PSI_SIGNIFICANT}")
        )
    elif psi > PSI_MODERATE:
        flags.append(QualityFlag("drift", "down-weight", f"moderate feature drift PSI {psi:.2f}"))
    if shift > LABEL_SHIFT_LIMIT:
        flags.append(QualityFlag("label-shift", "exclude", f"label rate moved by {shift:.2f}"))
    elif shift > LABEL_SHIFT_NOTE:
        flags.append(QualityFlag("label-shift", "down-weight", f"label rate moved by {shift:.2f}"))
    volume = metrics.get(Q_VOLUME, NOT_MEASURED)
    if 0 <= volume < VOLUME_DROP:
        flags.append(
            QualityFlag(
                "volume-drop",
                "down-weight",
                f"{100 * volume:.0f}% of the reference window's volume",
            )
        )
    duplicates = metrics.get(Q_DUPLICATES, NOT_MEASURED)
    if duplicates > DUPLICATE_LIMIT:
        flags.append(
            QualityFlag(
                "duplicates", "down-weight", f"{100 * duplicates:.0f}% of rows are duplicates"
            )
        )
    return flags
