"""Robust aggregation: check and bound every edge's update before any rule averages it.

At channel scale one broken app build or compromised device reaches every customer's scores
through the global model, and FedAvg trusts what edges report. ``guard_replies`` runs on a
round's replies before the aggregating strategy (``server.fl.central_dp.build_strategy``)
sees them and:

1. **excludes** a reply whose arrays do not match the global model (names, shapes) or hold
   non-finite values, or whose weight is not a positive finite number;
2. **bounds each update's L2 norm** (update = edge weights − global weights): to
   ``update-norm-bound`` × the round's median update norm (local DP and no-DP runs), or to
   ``central-clipping-norm`` exactly when the server adds client-level noise, since the
   accountant's sensitivity assumes every edge clipped (an edge that did not is clipped
   here);
3. **judges the edge's data-quality report** (``models.quality.assess``: schema break,
   drift, label shift, volume drop, duplicates) by ``quality-policy``: ``exclude`` (the
   default) excludes an edge whose data broke and halves the FedAvg weight of one whose
   data moved moderately, ``flag`` only records the flags, ``off`` ignores the reports;
4. **caps the FedAvg weight** (``num-examples``, self-reported) at ``weight-cap`` × the
   round's median weight, or sets every weight equal under central DP (the accounted
   wrapper requires it).

Under central DP an excluded reply would leave the accounted wrapper short of its fixed
sample, so such a reply's update is **zeroed** instead (the global model, norm 0: within
the sensitivity the noise is calibrated to). Every exclusion, clip, cap or zeroing is
returned as a ``GuardNote`` with its reason; ``ProfileStrategy`` adds them to the round's
per-edge rows, which the training run records.

Written here rather than taken from Flower: Flower's robust rules (FedTrimmedAvg,
FedMedian, Krum, MultiKrum, Bulyan) choose among updates but neither validate them nor
bound norms or self-reported weights, and its DP wrappers clip only in their own
(server-side) variant; this step composes with all of them. All of it is post-processing
of what edges sent, so it costs no privacy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict

from models.quality import DOWN_WEIGHT, QUALITY_PREFIX, assess

#: What the guard did to one reply.
GuardAction = Literal[
    "excluded", "zeroed", "clipped", "weight-capped", "weight-equalised", "down-weighted", "flagged"
]
#: What the guard does with edges' data-quality flags.
QualityPolicy = Literal["exclude", "flag", "off"]
#: Relative slack on the central clipping norm (float rounding on the edge's own clip).
_CENTRAL_SLACK = 1e-6


@dataclass(frozen=True, slots=True)
class GuardSettings:
    """How a round's updates are bounded.

    Parameters
    ----------
    weight_key : str
        Metric holding the FedAvg weight (``num-examples``).
    norm_factor : float
        Updates are clipped to ``norm_factor`` × the round's median update norm; 0 = no
        relative bound.
    weight_cap : float
        Weights are capped at ``weight_cap`` × the round's median weight; 0 = no cap.
    central_norm : float or None
        Central DP: clip every update to this norm (the edges' ``central-clipping-norm``),
        set every weight equal and zero (not exclude) a bad update. ``None``: not central.
    quality : {"exclude", "flag", "off"}
        What the edges' data-quality flags do (see the module docstring).
    weighted : bool
        Whether the aggregation rule weighs updates (FedAvg, MultiKrum); for unweighted
        rules (trimmed mean, median, Krum, Bulyan) weights are neither capped nor
        down-weighted: a flagged edge is only flagged or excluded.
    """

    weight_key: str
    norm_factor: float = 0.0
    weight_cap: float = 0.0
    central_norm: float | None = None
    quality: QualityPolicy = "off"
    weighted: bool = True


@dataclass(frozen=True, slots=True)
class GuardNote:
    """One thing the guard did to the reply at ``index`` of the round, and why."""

    index: int
    action: GuardAction
    reason: str


@dataclass(frozen=True, slots=True)
class _Update:
    index: int
    reply: Message
    delta: dict[str, np.ndarray]
    norm: float
    weight: float
    factor: float = 1.0


def _arrays_of(reply: Message) -> ArrayRecord | None:
    records = reply.content.array_records
    return next(iter(records.values())) if len(records) == 1 else None


def _metrics_of(reply: Message) -> MetricRecord | None:
    records = reply.content.metric_records
    return next(iter(records.values())) if len(records) == 1 else None


def _problem(reply: Message, global_arrays: dict[str, np.ndarray], weight_key: str) -> str | None:
    """Return why ``reply`` cannot be aggregated, or ``None`` when it can."""
    arrays, metrics = _arrays_of(reply), _metrics_of(reply)
    if arrays is None or metrics is None:
        return "the reply needs exactly one ArrayRecord and one MetricRecord"
    if list(arrays.keys()) != list(global_arrays):
        return "its arrays are not named as the global model's"
    for name, array in arrays.items():
        values, expected = array.numpy(), global_arrays[name].shape
        if values.shape != expected:
            return f"array {name!r} has shape {values.shape}, the global model {expected}"
        if not np.all(np.isfinite(values)):
            return f"array {name!r} holds non-finite values"
    weight = metrics.get(weight_key)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)):
        return f"its {weight_key!r} is missing or not a number"
    if not math.isfinite(weight) or weight <= 0:
        return f"its {weight_key!r} is not a positive finite number"
    return None


def _replace(
    reply: Message, arrays: dict[str, np.ndarray], *, weight_key: str, weight: float | None
) -> None:
    """Put ``arrays`` (and ``weight``, when given) into ``reply`` in place of what it sent."""
    content = reply.content
    array_key = next(iter(content.array_records), "arrays")
    metric_key = next(iter(content.metric_records), "metrics")
    metrics = MetricRecord(dict(content.metric_records.get(metric_key, MetricRecord())))
    if weight is not None:
        metrics[weight_key] = weight
    reply.content = RecordDict(
        {
            array_key: ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()}),
            metric_key: metrics,
            **dict(content.config_records.items()),
        }
    )


def _median(values: list[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64))) if values else 0.0


def guard_replies(
    replies: list[Message],
    global_arrays: dict[str, np.ndarray],
    settings: GuardSettings,
) -> tuple[list[Message], list[GuardNote]]:
    """Validate and bound a round's replies; return the ones to aggregate and the notes.

    Parameters
    ----------
    replies : list[Message]
        The round's replies (error replies pass through untouched: the strategy drops them).
    global_arrays : dict[str, np.ndarray]
        The global model the round started from.
    settings : GuardSettings
        Bounds to apply.

    Returns
    -------
    tuple[list[Message], list[GuardNote]]
        Replies to aggregate (bounded in place; excluded ones left out) and one note per
        action, indexed by the reply's position in ``replies``.
    """
    central = settings.central_norm is not None
    notes: list[GuardNote] = []
    kept: list[Message] = []
    updates: list[_Update] = []
    for index, reply in enumerate(replies):
        if reply.has_error():
            kept.append(reply)
            continue
        problem = _problem(reply, global_arrays, settings.weight_key)
        if problem is not None and not central:
            notes.append(GuardNote(index, "excluded", problem))
            continue
        if problem is not None:
            notes.append(GuardNote(index, "zeroed", f"{problem}; its update counts as zero"))
            zero = {k: v.copy() for k, v in global_arrays.items()}
            _replace(reply, zero, weight_key=settings.weight_key, weight=1)
            kept.append(reply)
            continue
        arrays = _arrays_of(reply)
        metrics = _metrics_of(reply)
        assert arrays is not None and metrics is not None
        factor = 1.0
        if settings.quality != "off":
            verdict = _judge_quality(index, metrics, settings, notes)
            if verdict is None:  # excluded for its data
                if not central:
                    continue
                zero = {k: v.copy() for k, v in global_arrays.items()}
                _replace(reply, zero, weight_key=settings.weight_key, weight=1)
                kept.append(reply)
                continue
            factor = verdict
        delta = {k: arrays[k].numpy().astype(np.float64) - global_arrays[k] for k in global_arrays}
        norm = math.sqrt(sum(float(np.sum(d * d)) for d in delta.values()))
        weight = float(metrics[settings.weight_key])  # type: ignore[arg-type]
        updates.append(_Update(index, reply, delta, norm, weight, factor))
        kept.append(reply)
    _bound(updates, global_arrays, settings, notes)
    return kept, sorted(notes, key=lambda n: n.index)


def _judge_quality(
    index: int, metrics: MetricRecord, settings: GuardSettings, notes: list[GuardNote]
) -> float | None:
    """Note the reply's quality flags; return its weight factor, or ``None`` to exclude it."""
    values = {k: float(v) for k, v in metrics.items() if k.startswith(QUALITY_PREFIX)}  # type: ignore[arg-type]
    flags = assess(values)
    for flag in flags:
        notes.append(GuardNote(index, "flagged", f"{flag.kind}: {flag.reason}"))
    if settings.quality != "exclude" or not flags:
        return 1.0
    excluding = [f for f in flags if f.action == "exclude"]
    if excluding:
        action: GuardAction = "zeroed" if settings.central_norm is not None else "excluded"
        reasons = "; ".join(f"{f.kind}: {f.reason}" for f in excluding)
        notes.append(GuardNote(index, action, f"data quality ({reasons})"))
        return None
    if settings.central_norm is not None or not settings.weighted:
        return 1.0  # equal weights (central DP) or an unweighted rule: flagged only
    kinds = ", ".join(f.kind for f in flags if f.action == "down-weight")
    notes.append(
        GuardNote(index, "down-weighted", f"weight × {DOWN_WEIGHT:g} for data quality ({kinds})")
    )
    return DOWN_WEIGHT


def _bound(
    updates: list[_Update],
    global_arrays: dict[str, np.ndarray],
    settings: GuardSettings,
    notes: list[GuardNote],
) -> None:
    """Clip norms and cap (or equalise) weights of the valid updates, noting each change."""
    if settings.central_norm is not None:
        limit = settings.central_norm * (1.0 + _CENTRAL_SLACK)
        norm_reason = f"above the central clipping norm {settings.central_norm:.4g}"
        cap, cap_reason = None, ""
    else:
        median_norm = _median([u.norm for u in updates])
        limit = settings.norm_factor * median_norm if settings.norm_factor > 0 else math.inf
        norm_reason = (
            f"above {settings.norm_factor:g} × the round's median update norm ({median_norm:.4g})"
        )
        median_weight = _median([u.weight for u in updates])
        capping = settings.weight_cap > 0 and settings.weighted
        cap = settings.weight_cap * median_weight if capping else None
        cap_reason = f"{settings.weight_cap:g} × the round's median ({median_weight:.4g})"
    for update in updates:
        clipped = update.norm > limit
        target = settings.central_norm if settings.central_norm is not None else limit
        if clipped:
            notes.append(
                GuardNote(
                    update.index,
                    "clipped",
                    f"update norm {update.norm:.4g} {norm_reason}; scaled to {target:.4g}",
                )
            )
        weight: float | None = None if update.factor == 1.0 else update.weight * update.factor
        if settings.central_norm is not None and update.weight != 1:
            weight = 1
            notes.append(
                GuardNote(
                    update.index,
                    "weight-equalised",
                    f"reported {settings.weight_key} {update.weight:g}; central DP weighs "
                    "every edge equally",
                )
            )
        elif cap is not None and update.weight > cap:
            weight = cap * update.factor
            notes.append(
                GuardNote(
                    update.index,
                    "weight-capped",
                    f"reported {settings.weight_key} {update.weight:g}, capped at {cap:g} "
                    f"({cap_reason})",
                )
            )
        if not clipped and weight is None:
            continue
        scale = target / update.norm if clipped else 1.0
        bounded = {
            k: (global_arrays[k] + scale * d).astype(global_arrays[k].dtype, copy=False)
            for k, d in update.delta.items()
        }
        _replace(update.reply, bounded, weight_key=settings.weight_key, weight=weight)
