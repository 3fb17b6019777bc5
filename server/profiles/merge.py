"""Combine several edges' contributions to one field by the catalogue's merge rule.

Pure functions over already-opened contributions: no database, no consent (the caller
passes only contributions a reader may see). Written here rather than taken from a library
because the rules are a handful of lines each and must match the catalogue's declared
semantics exactly (``consent.MergeRule``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from consent import FieldSpec, MergeRule
from models import Contribution, ExplanationItem, ProfileFieldOut

#: Decimals kept when numbers are summed or averaged (hides float noise such as 0.1 + 0.2).
MERGED_DECIMALS = 6
#: Channel label of a contribution an officer set (no edge).
OFFICER_CHANNEL = "officer"


@dataclass(frozen=True, slots=True)
class Part:
    """One opened contribution: the stored row's wire form, its edge and its pseudonym.

    A person's read merges the contributions of several pseudonyms, so one edge may
    contribute twice (two devices at the web edge): ``key`` tells them apart.
    """

    edge_id: str | None
    field: ProfileFieldOut
    subject: str = ""

    @property
    def key(self) -> tuple[str, str | None]:
        """``(pseudonym, edge)``: whose contribution this is (``merge_weight`` lookups)."""
        return self.subject, self.edge_id

    @property
    def channel(self) -> str:
        """The contributing channel (``officer`` for a rectified value)."""
        return self.field.source_channel or OFFICER_CHANNEL

    def contribution(self) -> Contribution:
        """Return the provenance record shown in a breakdown."""
        value = self.field.value
        return Contribution(
            edge_id=self.edge_id,
            channel=self.channel,
            value=value if not isinstance(value, list) else ",".join(value),
            confidence=self.field.confidence,
            computed_at=self.field.computed_at,
        )


def _latest(parts: Sequence[Part]) -> Part:
    """Return the most recently computed part (ties: the last edge id, for a stable answer)."""
    return max(parts, key=lambda p: (p.field.computed_at, p.edge_id or ""))


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("a numeric merge rule met a non-numeric contribution")
    return float(value)


def _tag_probability(part: Part) -> float:
    """Probability that a tag holds, from its value and the confidence of that value."""
    confidence = part.field.confidence if part.field.confidence is not None else 1.0
    return confidence if part.field.value is True else 1.0 - confidence


def _weighted_mean(values: Sequence[float], weights: Sequence[float]) -> float:
    total = sum(weights)
    if total <= 0 or not math.isfinite(total):
        return sum(values) / len(values)
    return sum(v * w for v, w in zip(values, weights, strict=True)) / total


def _vote(parts: Sequence[Part]) -> tuple[bool, float, list[ExplanationItem]]:
    """Confidence-weighted mean probability of tag contributions -> value, confidence."""
    weights = [p.field.confidence if p.field.confidence is not None else 1.0 for p in parts]
    p = _weighted_mean([_tag_probability(part) for part in parts], weights)
    holds = p >= 0.5
    surest = max(parts, key=lambda part: (part.field.confidence or 0.0, part.field.computed_at))
    return holds, round(p if holds else 1.0 - p, 4), list(surest.field.explanation)


def merge_parts(
    spec: FieldSpec,
    parts: Sequence[Part],
    *,
    weights: Mapping[tuple[str, str | None], float] | None = None,
    breakdown: bool = False,
) -> ProfileFieldOut:
    """Merge the visible contributions to one field.

    Parameters
    ----------
    spec : FieldSpec
        The field's catalogue entry (its ``merge_rule``). ``derived`` tags are merged here
        as ``vote`` (the caller derives them when their inputs are visible).
    parts : Sequence[Part]
        At least one contribution. A part with no edge (an officer's rectification)
        replaces every edge's contribution.
    weights : Mapping[tuple[str, str or None], float] or None
        For ``mean`` with a ``merge_weight``: that field's value per ``Part.key``.
    breakdown : bool
        Whether to list the contributions in the result.

    Returns
    -------
    ProfileFieldOut
        The merged field, with the rule, the channels and (on request) the contributions.

    Raises
    ------
    ValueError
        If ``parts`` is empty.
    """
    if not parts:
        raise ValueError("nothing to merge")
    rectified = [p for p in parts if p.edge_id is None]
    if rectified:
        # An officer's correction (rectification) is the final word over every channel.
        parts = rectified
    rule = spec.merge_rule
    rule = MergeRule.VOTE if rule is MergeRule.DERIVED else rule
    latest = _latest(parts)
    value: bool | int | float | str | list[str] = latest.field.value
    confidence, explanation = latest.field.confidence, list(latest.field.explanation)
    if len(parts) > 1 and rule is not MergeRule.LATEST:
        value, confidence, explanation = _combine(rule, parts, weights or {})
    channels = sorted({p.channel for p in parts})
    return ProfileFieldOut(
        name=spec.name,
        value=value,
        confidence=confidence,
        explanation=explanation,
        provisional=all(p.field.provisional for p in parts),
        computed_at=latest.field.computed_at,
        source_channel=channels[0] if len(channels) == 1 else None,
        merge=rule.value,
        channels=channels,
        contributions=[p.contribution() for p in parts] if breakdown else None,
    )


def _combine(
    rule: MergeRule, parts: Sequence[Part], weights: Mapping[tuple[str, str | None], float]
) -> tuple[bool | int | float | str | list[str], float | None, list[ExplanationItem]]:
    """Apply a rule other than ``latest`` to two or more parts."""
    if rule is MergeRule.VOTE:
        return _vote(parts)
    if rule is MergeRule.ANY:
        return any(p.field.value is True for p in parts), None, []
    if rule is MergeRule.ALL:
        return all(p.field.value is True for p in parts), None, []
    if rule is MergeRule.UNION:
        return sorted({str(p.field.value) for p in parts}), None, []
    numbers = [_number(p.field.value) for p in parts]
    if rule is MergeRule.SUM:
        return round(sum(numbers), MERGED_DECIMALS), None, []
    if rule in (MergeRule.MAX, MergeRule.MIN):
        pick = max if rule is MergeRule.MAX else min
        chosen = pick(range(len(parts)), key=lambda i: numbers[i])
        return parts[chosen].field.value, parts[chosen].field.confidence, []
    # MEAN: by the declared weight field's value from the same edge, else by confidence.
    if weights:
        shares = [max(weights.get(p.key, 0.0), 0.0) for p in parts]
    else:
        shares = [p.field.confidence if p.field.confidence is not None else 1.0 for p in parts]
    return round(_weighted_mean(numbers, shares), MERGED_DECIMALS), None, []
