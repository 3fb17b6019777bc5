"""Explainable profile tags: transparent scored rules over named behaviour features.

Each tag is a logistic score over *scaled* features::

    s_f = clip((x_f - center_f) / scale_f, -3, 3)
    z   = bias + sum_f w_f * s_f
    p   = 1 / (1 + exp(-z))          the tag holds when p >= threshold

A feature's contribution to the explanation is ``w_f * s_f`` (in logit units), listed with its
Chinese and English label, largest first. A tag weighs at most ``MAX_EXPLANATION_ITEMS``
features and every non-zero contribution is listed, so anyone can recompute ``p`` exactly
from the explanation and the tag's bias. Confidence is the probability of the reported value
(``p`` or ``1 - p``); for provisional profiles (new customers) it is pulled halfway towards 0.5.

Feature labels and scales live here (not in the edge) so that the console, the server and
the edge explain tags with the same words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .protocol import ExplanationItem

#: Contributions kept in an explanation, and the most features a tag may weigh.
MAX_EXPLANATION_ITEMS = 6
#: Share of the distance to 0.5 a provisional profile's confidence keeps.
PROVISIONAL_CONFIDENCE_FACTOR = 0.5
_CLIP = 3.0


class FeatureInfo(BaseModel):
    """How a feature is named for people and scaled for tags.

    Parameters
    ----------
    label_zh, label_en : str
        Labels shown in explanations.
    center : float
        Value that scales to 0.
    scale : float
        Distance from ``center`` that scales to 1 (in the feature's own unit).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    label_zh: str = Field(min_length=1, max_length=64)
    label_en: str = Field(min_length=1, max_length=64)
    center: float = 0.0
    scale: float = Field(default=1.0, gt=0.0)

    def scaled(self, value: float) -> float:
        """Return the clipped, scaled value used by tag scores."""
        return max(-_CLIP, min(_CLIP, (value - self.center) / self.scale))


#: Every numeric feature a tag may use: labels (zh, en) and scaling.
FEATURE_INFO: Mapping[str, FeatureInfo] = MappingProxyType(
    {
        name: FeatureInfo(label_zh=zh, label_en=en, center=center, scale=scale)
        for name, zh, en, center, scale in (
            ("recency_days", "距上次购买天数", "Days since last purchase", 0.0, 60.0),
            ("frequency_90d", "近90天购买次数", "Purchases (90 days)", 0.0, 4.0),
            ("monetary_90d", "近90天消费金额", "Spend (90 days, CNY)", 0.0, 2000.0),
            ("avg_order_value", "客单价", "Average order value", 0.0, 300.0),
            ("views_30d", "近30天浏览次数", "Page views (30 days)", 0.0, 20.0),
            ("searches_30d", "近30天搜索次数", "Searches (30 days)", 0.0, 10.0),
            ("cart_adds_30d", "近30天加购次数", "Cart adds (30 days)", 0.0, 5.0),
            ("sessions_30d", "近30天会话数", "Sessions (30 days)", 0.0, 8.0),
            ("cs_messages_90d", "近90天客服咨询次数", "Service messages (90 days)", 0.0, 3.0),
            ("complaints_90d", "近90天投诉次数", "Complaints (90 days)", 0.0, 2.0),
            ("complaint_rate", "投诉占比", "Complaint rate", 0.0, 0.5),
            ("ratings_avg", "平均评分", "Average rating", 3.0, 2.0),
            ("refund_rate", "退款率", "Refund rate", 0.0, 0.5),
            ("coupon_uses_90d", "近90天用券次数", "Coupon uses (90 days)", 0.0, 3.0),
            ("active_days_30d", "近30天活跃天数", "Active days (30 days)", 0.0, 10.0),
            ("activity_trend", "活跃度趋势", "Activity trend", 0.0, 1.0),
            ("channel_count", "使用渠道数", "Channels used", 0.0, 2.0),
            ("history_days", "客户历史天数", "Days as a customer", 0.0, 180.0),
            (
                "browse_depth_30d",
                "浏览深度(每会话浏览页数)",
                "Browse depth (views per session)",
                0.0,
                3.0,
            ),
            ("decision_cycle_hours", "决策周期(小时)", "Decision cycle (hours)", 0.0, 24.0),
            (
                "coupon_rate_90d",
                "用券率(价格敏感度)",
                "Coupon uses per purchase (price sensitivity)",
                0.0,
                0.5,
            ),
            ("weekend_share_90d", "周末活跃占比", "Weekend activity share", 2 / 7, 0.3),
            ("active_weekday", "最活跃星期(0=周一)", "Most active weekday (0 = Monday)", 3.0, 3.0),
            (
                "active_hour_bucket",
                "最活跃时段(每4小时一段)",
                "Most active time of day (4-hour bucket)",
                2.5,
                2.5,
            ),
            ("channel_share_web", "网站渠道占比", "Web channel share", 0.0, 1.0),
            ("channel_share_app", "App渠道占比", "App channel share", 0.0, 1.0),
            ("channel_share_desk", "客服台渠道占比", "Service desk channel share", 0.0, 1.0),
            ("channel_share_sms", "短信渠道占比", "SMS channel share", 0.0, 1.0),
            ("channel_share_social", "社交渠道占比", "Social channel share", 0.0, 1.0),
            ("channel_entropy_90d", "渠道多样性(熵)", "Channel diversity (entropy)", 0.0, 0.5),
        )
    }
)


class TagDefinition(BaseModel):
    """A named, explainable tag: a logistic rule over scaled features.

    Parameters
    ----------
    name : str
        Tag name; the profile field is ``tag.<name>``.
    label_zh, label_en : str
        Short labels, e.g. 高购买力 / High purchasing power.
    description_zh, description_en : str
        What the tag means and how it is derived.
    weights : Mapping[str, float]
        Weight per feature name (each must be in ``FEATURE_INFO``), in logit units per
        scaled unit.
    bias : float
        Intercept of the logistic score.
    threshold : float
        Probability at or above which the tag holds.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=60)
    label_zh: str = Field(min_length=1)
    label_en: str = Field(min_length=1)
    description_zh: str = Field(min_length=1)
    description_en: str = Field(min_length=1)
    weights: Mapping[str, float] = Field(min_length=1)
    bias: float = 0.0
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _known_features(self) -> TagDefinition:
        unknown = sorted(set(self.weights) - set(FEATURE_INFO))
        if unknown:
            raise ValueError(f"weights name unknown features: {', '.join(unknown)}")
        if len(self.weights) > MAX_EXPLANATION_ITEMS:
            raise ValueError(
                f"a tag weighs at most {MAX_EXPLANATION_ITEMS} features, so that its "
                "explanation lists every contribution"
            )
        return self

    @property
    def field_name(self) -> str:
        """The catalogued profile field holding this tag."""
        return f"tag.{self.name}"


class TagResult(BaseModel):
    """A tag computed for one subject.

    Parameters
    ----------
    name : str
        Tag name.
    value : bool
        Whether the tag holds.
    probability : float
        The logistic score ``p`` in [0, 1].
    confidence : float
        Probability of the reported value, lowered for provisional profiles.
    explanation : tuple[ExplanationItem, ...]
        Top contributions ``w * s`` (logit units) with zh/en labels, largest magnitude first.
    provisional : bool
        Whether the subject's profile is provisional.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    value: bool
    probability: float = Field(ge=0.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    explanation: tuple[ExplanationItem, ...] = ()
    provisional: bool = False


def _definitions() -> tuple[TagDefinition, ...]:
    return (
        TagDefinition(
            name="high_purchasing_power",
            label_zh="高购买力",
            label_en="High purchasing power",
            description_zh="近90天消费金额、客单价和购买次数明显高于平均水平，且较少依赖优惠券",
            description_en=(
                "Spend, order value and purchase count over 90 days well above average, "
                "with little reliance on coupons"
            ),
            weights={
                "monetary_90d": 2.0,
                "avg_order_value": 1.5,
                "frequency_90d": 0.5,
                "coupon_rate_90d": -0.75,
            },
            bias=-3.0,
        ),
        TagDefinition(
            name="high_interaction_willingness",
            label_zh="高互动意愿",
            label_en="High interaction willingness",
            description_zh="近期经常浏览、搜索、会话，与客服互动，并使用多个渠道",
            description_en="Browses, searches, returns, talks to service and uses several channels",
            weights={
                "views_30d": 0.5,
                "searches_30d": 0.4,
                "sessions_30d": 0.8,
                "active_days_30d": 1.0,
                "cs_messages_90d": 0.4,
                "channel_entropy_90d": 0.6,
            },
            bias=-3.0,
        ),
        TagDefinition(
            name="common_question_tendency",
            label_zh="常见问题倾向",
            label_en="Common-question tendency",
            description_zh="客服咨询较多但很少投诉，多为常见问题，适合自助或主动推送解答",
            description_en="Many service contacts but few complaints; suits self-service answers",
            weights={"cs_messages_90d": 1.5, "complaint_rate": -1.0, "history_days": -0.5},
            bias=-1.5,
        ),
        TagDefinition(
            name="churn_risk",
            label_zh="流失风险",
            label_en="Churn risk",
            description_zh="距上次购买时间长、活跃度下降且近期购买少",
            description_en="Long since last purchase, falling activity and few recent purchases",
            weights={
                "recency_days": 1.5,
                "activity_trend": -1.5,
                "frequency_90d": -1.0,
                "active_days_30d": -0.8,
            },
            bias=-1.0,
        ),
        TagDefinition(
            name="escalation_need",
            label_zh="人工升级需求",
            label_en="Escalation need",
            description_zh="投诉多、评分低或退款多，建议转人工客服",
            description_en="Complaints, low ratings or refunds suggest routing to a human agent",
            weights={
                "complaints_90d": 1.5,
                "complaint_rate": 0.75,
                "ratings_avg": -1.5,
                "refund_rate": 1.0,
            },
            bias=-2.5,
        ),
    )


#: The tags every edge computes, by name (catalogued as ``tag.<name>``).
TAG_DEFINITIONS: Mapping[str, TagDefinition] = MappingProxyType({d.name: d for d in _definitions()})


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def evaluate_tag(
    definition: TagDefinition, features: Mapping[str, float], *, provisional: bool
) -> TagResult:
    """Compute one tag from features.

    Parameters
    ----------
    definition : TagDefinition
        The tag's rule.
    features : Mapping[str, float]
        Feature values by name; must hold every feature the rule weights.
    provisional : bool
        Whether the subject's profile is provisional (lowers the confidence).

    Returns
    -------
    TagResult
        Value, probability, confidence and explanation.

    Raises
    ------
    ValueError
        If a weighted feature is missing or not finite.
    """
    contributions: list[tuple[str, float]] = []
    for name, weight in definition.weights.items():
        if name not in features:
            raise ValueError(f"tag {definition.name!r} needs feature {name!r}")
        value = float(features[name])
        if not math.isfinite(value):
            raise ValueError(f"feature {name!r} is not finite")
        contributions.append((name, weight * FEATURE_INFO[name].scaled(value)))
    z = definition.bias + sum(c for _, c in contributions)
    p = _sigmoid(z)
    holds = p >= definition.threshold
    confidence = p if holds else 1.0 - p
    if provisional:
        confidence = 0.5 + (confidence - 0.5) * PROVISIONAL_CONFIDENCE_FACTOR
    ranked = sorted(contributions, key=lambda item: (-abs(item[1]), item[0]))
    explanation = tuple(
        ExplanationItem(
            feature=name,
            weight=round(c, 4),
            label_zh=FEATURE_INFO[name].label_zh,
            label_en=FEATURE_INFO[name].label_en,
        )
        for name, c in ranked[:MAX_EXPLANATION_ITEMS]
        if c != 0.0
    )
    return TagResult(
        name=definition.name,
        value=holds,
        probability=round(p, 4),
        confidence=round(confidence, 4),
        explanation=explanation,
        provisional=provisional,
    )


def compute_tags(features: Mapping[str, float], *, provisional: bool) -> list[TagResult]:
    """Compute every tag in ``TAG_DEFINITIONS`` for one subject.

    Parameters
    ----------
    features : Mapping[str, float]
        The subject's numeric features by name.
    provisional : bool
        Whether the subject's profile is provisional (new customer): confidences are lower.

    Returns
    -------
    list[TagResult]
        One result per tag, in ``TAG_DEFINITIONS`` order.

    Raises
    ------
    ValueError
        If a feature a tag needs is missing or not finite.
    """
    return [evaluate_tag(d, features, provisional=provisional) for d in TAG_DEFINITIONS.values()]
