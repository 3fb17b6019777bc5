"""Tags the server re-derives from merged, catalogued fields (one person, every channel).

An edge computes its tags from its own events only: the service desk sees complaints but no
purchases, so on its own it calls a big spender a churn risk. The server therefore derives
the cross-channel tags again from the *merged* catalogued fields (sums, minima ... across
edges, ``consent`` catalogue ``merge``) with the same explainable logistic rules as the edge
(:func:`models.tags.evaluate_tag`), restricted to features that leave edges as catalogued
fields. Ratios are recomputed from merged counts (``avg_order_value`` = spend / purchases),
never averaged. No raw data is involved: only the merged field values.

Each rule's inputs are the catalogued fields ``feature.<name>`` listed in the tag's
catalogue entry ``derived_from``; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from .tags import TagDefinition, TagResult, evaluate_tag

#: Features computed on the server from two merged features: name -> (numerator, denominator).
#: A zero denominator gives 0 (no purchases: no order value; no contacts: no complaint rate).
RATIO_FEATURES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "avg_order_value": ("monetary_90d", "frequency_90d"),
        "complaint_rate": ("complaints_90d", "cs_messages_90d"),
    }
)


def _definitions() -> tuple[TagDefinition, ...]:
    return (
        TagDefinition(
            name="high_purchasing_power",
            label_zh="高购买力",
            label_en="High purchasing power",
            description_zh="全渠道近90天消费金额、客单价和购买次数明显高于平均水平",
            description_en=(
                "Spend, order value and purchase count over 90 days, across all channels, "
                "well above average"
            ),
            weights={"monetary_90d": 2.0, "avg_order_value": 1.5, "frequency_90d": 0.5},
            bias=-3.0,
        ),
        TagDefinition(
            name="common_question_tendency",
            label_zh="常见问题倾向",
            label_en="Common-question tendency",
            description_zh="全渠道客服咨询较多但很少投诉，适合自助或主动推送解答",
            description_en="Many service contacts on any channel but few complaints",
            weights={"cs_messages_90d": 1.5, "complaint_rate": -1.0},
            bias=-1.5,
        ),
        TagDefinition(
            name="churn_risk",
            label_zh="流失风险",
            label_en="Churn risk",
            description_zh="在所有渠道距上次购买时间都很长，近期购买和活跃天数少",
            description_en=(
                "Long since the last purchase on every channel, few purchases and active days"
            ),
            weights={"recency_days": 1.5, "frequency_90d": -1.0, "active_days_30d": -0.8},
            bias=-1.0,
        ),
        TagDefinition(
            name="escalation_need",
            label_zh="人工升级需求",
            label_en="Escalation need",
            description_zh="全渠道投诉次数和投诉占比高，建议转人工客服",
            description_en="Complaints and complaint share across channels suggest a human agent",
            weights={"complaints_90d": 1.5, "complaint_rate": 0.75},
            bias=-2.5,
        ),
    )


#: Server-side rules of the tags catalogued with ``merge: derived``, by tag name.
MERGED_TAG_DEFINITIONS: Mapping[str, TagDefinition] = MappingProxyType(
    {d.name: d for d in _definitions()}
)


def merged_inputs(definition: TagDefinition) -> frozenset[str]:
    """Return the merged features (without the ``feature.`` prefix) a rule reads.

    Parameters
    ----------
    definition : TagDefinition
        A rule of ``MERGED_TAG_DEFINITIONS``.

    Returns
    -------
    frozenset[str]
        Its weighted features, with each ratio replaced by its two operands.
    """
    names: set[str] = set()
    for feature in definition.weights:
        names.update(RATIO_FEATURES.get(feature, (feature,)))
    return frozenset(names)


def derive_merged_tag(
    definition: TagDefinition, merged: Mapping[str, float], *, provisional: bool
) -> TagResult:
    """Evaluate a server-side tag rule on merged feature values.

    Parameters
    ----------
    definition : TagDefinition
        The rule.
    merged : Mapping[str, float]
        Merged values by feature name (``monetary_90d`` ...); must hold ``merged_inputs``.
    provisional : bool
        Whether every contribution was provisional (lowers the confidence).

    Returns
    -------
    TagResult
        Value, probability, confidence and the explanation in merged features.

    Raises
    ------
    ValueError
        If an input is missing or not finite.
    """
    features = dict(merged)
    for name, (numerator, denominator) in RATIO_FEATURES.items():
        if name in definition.weights:
            if numerator not in merged or denominator not in merged:
                raise ValueError(f"tag {definition.name!r} needs {numerator!r} and {denominator!r}")
            below = float(merged[denominator])
            features[name] = float(merged[numerator]) / below if below > 0 else 0.0
    return evaluate_tag(definition, features, provisional=provisional)
