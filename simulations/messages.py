"""Customer-message templates and noise for synthetic populations (Chinese and English).

A message is rendered from a *pattern* written for one intent (咨询 inquiry, 投诉 complaint,
购买 purchase, 退换 return) and the emotions its wording allows; a mood phrase, emoji and
punctuation carry the chosen emotion (with a finer ``tone``: angry, anxious, disappointed,
calm, satisfied, grateful, excited). Personal information enters through named slots
(names, mobile numbers, resident-ID numbers, bank cards, e-mail addresses) at the pattern's
own places or as a clause before or after the body, written the ways customers write it
(spaced or dashed groups, ``+86``, full-width digits). Noise makes the text realistic and
the labels not trivially separable: shared skeletons whose only intent signal is a short
cue, typos and homophones, code-switching between Chinese and English, emoji, sloppy
punctuation. Only the non-PII text gets typos, so the embedded identifiers stay exact:
``render_labeled_message`` also returns where each one sits (``PIISpan``), for masking tests
and evaluations.

The pattern tables are data; the module is longer than the 400-line guide because of them.
"""

from __future__ import annotations

import logging
import random
import string
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

logger = logging.getLogger(__name__)

Lang = Literal["zh", "en"]


class Intent(StrEnum):
    """Customer intent of a message."""

    INQUIRY = "inquiry"  # 咨询
    COMPLAINT = "complaint"  # 投诉
    PURCHASE = "purchase"  # 购买
    RETURN = "return"  # 退换


class Emotion(StrEnum):
    """Emotion expressed in a message (the text model's three classes)."""

    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"


class Urgency(StrEnum):
    """How urgent a message is (紧急程度; the text model's urgency head)."""

    LOW = "low"
    NORMAL = "normal"
    URGENT = "urgent"


#: Finer tones of each emotion (how the mood phrases are grouped).
TONES: dict[Emotion, tuple[str, ...]] = {
    Emotion.NEGATIVE: ("angry", "anxious", "disappointed"),
    Emotion.NEUTRAL: ("calm",),
    Emotion.POSITIVE: ("satisfied", "grateful", "excited"),
}

#: The slots that carry personal information.
PII_SLOTS: tuple[str, ...] = ("name", "phone", "id_number", "email", "bank_card")


@dataclass(frozen=True)
class Template:
    """A rendered message's pattern with its labels.

    Parameters
    ----------
    lang : str
        ``"zh"`` or ``"en"``.
    intent : Intent
        Intent the message expresses.
    emotion : Emotion
        Emotion the message expresses.
    text : str
        The pattern, with ``{slot}`` fields.
    tone : str
        Finer tone of the emotion (one of ``TONES[emotion]``).
    urgency : Urgency
        How urgent the message is (low / normal / urgent).
    """

    lang: str
    intent: Intent
    emotion: Emotion
    text: str
    tone: str = "calm"
    urgency: Urgency = Urgency.NORMAL


@dataclass(frozen=True)
class MessageNoise:
    """How noisy rendered messages are (all probabilities in [0, 1]).

    Parameters
    ----------
    typo_rate : float
        Per character of non-PII text: chance of a typo (dropped, doubled or swapped
        character, or a Chinese homophone).
    emoji_rate : float
        Chance of an emoji matching the emotion.
    mixed_rate : float
        Chance of code-switching (English words in Chinese text and the reverse).
    punctuation_rate : float
        Chance of sloppy punctuation (half-width marks, repeated marks, none at the end).
    format_rate : float
        Per phone / ID / card number: chance of spaced or dashed groups (or ``+86``).
    fullwidth_rate : float
        Per phone / ID / card number: chance of full-width digits.
    pii_rate : float
        Chance of a personal-information clause in a pattern that has no PII slot.
    """

    typo_rate: float = 0.01
    emoji_rate: float = 0.15
    mixed_rate: float = 0.08
    punctuation_rate: float = 0.2
    format_rate: float = 0.25
    fullwidth_rate: float = 0.05
    pii_rate: float = 0.55

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")


#: No noise at all (exact patterns; tests and ablations).
NO_NOISE = MessageNoise(
    typo_rate=0.0,
    emoji_rate=0.0,
    mixed_rate=0.0,
    punctuation_rate=0.0,
    format_rate=0.0,
    fullwidth_rate=0.0,
    pii_rate=0.0,
)

_ALL = (Emotion.NEGATIVE, Emotion.NEUTRAL, Emotion.POSITIVE)
_NEG = (Emotion.NEGATIVE,)
_NOT_POS = (Emotion.NEGATIVE, Emotion.NEUTRAL)
_NOT_NEG = (Emotion.NEUTRAL, Emotion.POSITIVE)

I, C, P, R = Intent.INQUIRY, Intent.COMPLAINT, Intent.PURCHASE, Intent.RETURN

#: Chinese patterns: (intent, emotions the wording allows, text).
_ZH: tuple[tuple[Intent, tuple[Emotion, ...], str], ...] = (
    (I, _ALL, "想问一下{product}什么时候发货？{pii}"),
    (I, _ALL, "请问{product}现在有没有优惠活动？"),
    (I, _ALL, "{product}的保修期是多久？坏了去哪里修？{pii}"),
    (I, _NOT_POS, "订单{order}到哪了？物流{when}就没更新了。{pii}"),
    (I, _ALL, "我的会员积分怎么查？注册手机是{phone}。"),
    (I, _ALL, "发票开好了吗？请发到我的邮箱{email}，抬头写{name}。"),
    (I, _ALL, "{product}支持货到付款吗？"),
    (I, _ALL, "这款{product}和上一代有什么区别？送人合适吗"),
    (I, _NOT_POS, "请问你们周末有客服吗？我{when}打过电话没人接。"),
    (I, _ALL, "我想改一下收货地址，订单号{order}，联系人{name}。"),
    (I, _ALL, "{product}怎么使用？说明书看不太懂。{pii}"),
    (I, _NOT_POS, "实名认证一直不通过，身份证{id_number}，是哪里填错了吗？"),
    (I, _ALL, "退货政策是怎样的？{product}还没拆封，先问问。"),
    (I, _ALL, "{product}有没有大一点的型号？想先了解一下。"),
    (C, _NEG, "我要投诉！{product}一直没到，{pii}请尽快处理。"),
    (C, _NEG, "收到的{product}是坏的，{when}就反映过了，到现在没人管。"),
    (C, _NEG, "客服一直不回复，我已经等了三天了。{pii}"),
    (C, _NEG, "快递员态度很差，把{product}直接扔在门口，要求赔偿。"),
    (C, _NEG, "你们{when}多扣了我{amount}元，银行卡{bank_card}，必须给个说法。"),
    (C, _NEG, "再不处理我就去12315投诉了，订单{order}。"),
    (C, _NEG, "{product}和页面描述严重不符，这是虚假宣传。"),
    (C, _NOT_POS, "同一个问题说了三遍了，{product}的质量问题你们一直在踢皮球。"),
    (C, _NEG, "没经过我同意就给我发营销短信，手机号{phone}，请立刻停止。"),
    (C, _NOT_POS, "售后电话根本打不通，{product}坏了没人修。{pii}"),
    (C, _NEG, "{when}刚买的{product}就降价{amount}元，这不是坑人吗？"),
    (C, _NOT_POS, "包装破损，{product}里面少了配件，订单号{order}。"),
    (P, _NOT_NEG, "{product}还有货吗？我想买两件。{pii}"),
    (P, _NOT_NEG, "想给家里人再订一个{product}，收货人{name}，手机号码{phone}。"),
    (P, _NOT_NEG, "企业采购{product}，能开专票吗？对接人{name}，邮箱{email}。"),
    (P, _ALL, "帮我下单{product}，用上次的地址就行。"),
    (P, _ALL, "{product}现在下单今天能发吗？急用。"),
    (P, _NOT_NEG, "买三个{product}有折扣吗？打算和同事一起买。"),
    (P, _NOT_NEG, "我想升级会员，顺便买{product}，怎么付款？{pii}"),
    (P, _ALL, "{product}加进购物车了，优惠券用不了，能帮我看下吗？今天就想买。"),
    (P, _NOT_NEG, "上次买的{product}很好用，想再回购一箱。"),
    (P, _NOT_NEG, "可以预订下个月到货的{product}吗？先付定金也行。"),
    (P, _NOT_NEG, "送朋友的{product}能包成礼盒吗？我现在就下单。"),
    (P, _ALL, "分期付款买{product}可以吗？我的卡是{bank_card}。"),
    (R, _ALL, "我想退货，{product}尺码不对。{pii}"),
    (R, _ALL, "申请退款，请把钱退到我的银行卡{bank_card}，开户人{name}。"),
    (R, _NOT_POS, "换货申请：{product}有质量问题。{pii}"),
    (R, _ALL, "{product}收到颜色发错了，能换一个吗？"),
    (R, _ALL, "订单{order}我不要了，怎么取消并退款？"),
    (R, _ALL, "七天无理由退货还能申请吗？{product}是{when}签收的。"),
    (R, _NOT_POS, "退货寄回去一周了，钱还没到账，订单号{order}。"),
    (R, _ALL, "{product}买大了，想换小一号。{pii}"),
    (R, _NEG, "拆开发现{product}是用过的，要求退货退款。"),
    (R, _ALL, "帮我把{product}换成别的颜色，差价我补。"),
    (R, _ALL, "退款能退回原来的卡吗？当时用的卡是{bank_card}。"),
    (R, _ALL, "{product}跟我家里的不配套，想退掉。"),
)

#: Skeletons shared by all intents: the ``{cue}`` is the only intent signal.
_ZH_SHARED: tuple[str, ...] = (
    "关于订单{order}的{product}，{cue}。",
    "{when}买的{product}，{cue}。{pii}",
    "{product}的事情：{cue}",
)
_ZH_CUES: dict[Intent, tuple[str, ...]] = {
    I: ("想问下怎么用", "想了解一下保修", "请问什么时候能到", "想确认一下发票信息", "参数能发我看看吗"),
    C: ("到现在都没人处理", "质量太差了我要投诉", "你们客服态度太差了", "被多扣钱了", "完全是欺骗消费者"),
    P: ("还想再买两个", "想再下一单", "有货的话马上下单", "能不能帮我直接下单", "想买来送人"),
    R: ("想退掉", "想换个型号", "申请退款", "尺码不合适要换", "想办理退货"),
}  # fmt: skip

_EN: tuple[tuple[Intent, tuple[Emotion, ...], str], ...] = (
    (I, _ALL, "Hi, when will my {product} ship? {pii}"),
    (I, _ALL, "Does the {product} come with a warranty?"),
    (I, _NOT_POS, "Can you tell me where order {order} is? Tracking hasn't moved since {when}."),
    (I, _ALL, "How do I use the {product}? The manual is confusing. {pii}"),
    (C, _NEG, "My {product} arrived broken. {pii} Fix this now."),
    (C, _NEG, "Nobody has answered me for three days, this is unacceptable."),
    (C, _NEG, "You charged me twice for order {order}, card {bank_card}."),
    (C, _NOT_POS, "The courier left the {product} in the rain and it is ruined."),
    (P, _NOT_NEG, "Is the {product} in stock? I'd like two. {pii}"),
    (P, _ALL, "I want to order another {product} for my mom."),
    (P, _NOT_NEG, "Can I pre-order the {product}? Happy to pay a deposit."),
    (P, _NOT_NEG, "Is there a discount if I buy three of the {product}?"),
    (R, _ALL, "I want to return the {product}; refund to card {bank_card} please."),
    (R, _ALL, "The {product} is the wrong size, can I exchange it? {pii}"),
    (R, _ALL, "How do I cancel order {order} and get my money back?"),
    (R, _NOT_POS, "Please send me a return label for the {product}."),
)
_EN_SHARED: tuple[str, ...] = (
    "About the {product} from order {order}: {cue}.",
    "Bought the {product} {when}, {cue}. {pii}",
)
_EN_CUES: dict[Intent, tuple[str, ...]] = {
    I: ("how do I set it up", "what does the warranty cover", "when will it arrive"),
    C: ("nobody has fixed it yet", "the quality is terrible", "you overcharged me"),
    P: ("I want to buy two more", "please place another order", "I'd like one as a gift"),
    R: ("I want to send it back", "can I swap it for another model", "I need a refund"),
}

#: Mood phrases per (language, tone): prefix or suffix; empty = no mood phrase.
_MOODS: dict[tuple[str, str], tuple[str, ...]] = {
    ("zh", "angry"): ("气死我了！", "太过分了！", "什么破服务！", "忍无可忍！", "简直离谱！"),
    ("zh", "anxious"): ("急急急！", "很着急，", "在线等，挺急的。", "麻烦快点，急用！"),
    ("zh", "disappointed"): ("太失望了。", "有点失望，", "唉，", "真的很无语…", "不太满意。"),
    ("zh", "calm"): ("", "", "你好，", "您好，", "在吗？", "麻烦了。", "谢谢。"),
    ("zh", "satisfied"): ("很满意，", "好评！", "东西不错，", "整体挺好的。"),
    ("zh", "grateful"): ("谢谢你们！", "辛苦啦～", "感谢客服小姐姐！", "上次的服务很贴心，"),
    ("zh", "excited"): ("太棒了！", "超喜欢！", "终于等到了！"),
    ("en", "angry"): ("This is ridiculous!", "Absolutely unacceptable!", "I'm furious."),
    ("en", "anxious"): ("Urgent, please!", "I really need this soon.", "Please hurry,"),
    ("en", "disappointed"): ("Pretty disappointed.", "Sigh,", "Not happy with this."),
    ("en", "calm"): ("", "", "Hi,", "Hello,", "Thanks."),
    ("en", "satisfied"): ("Great service so far!", "Really happy with it,", "Love it,"),
    ("en", "grateful"): ("Thank you so much!", "Appreciate your help!", "You guys are great,"),
    ("en", "excited"): ("So excited!", "Awesome!", "Can't wait!"),
}  # fmt: skip
#: Urgency phrases per (language, urgency); normal urgency has none.
_URGENCY_CUES: dict[tuple[str, Urgency], tuple[str, ...]] = {
    ("zh", Urgency.URGENT): ("今天之内必须处理！", "请马上处理，", "明天就要用，", "请尽快回复，",
                             "加急处理一下，", "等不了了，"),
    ("zh", Urgency.LOW): ("不着急，", "有空的时候回复就行。", "方便时再处理，", "慢慢来不急，",
                          "不赶时间，"),
    ("en", Urgency.URGENT): ("Need this sorted today.", "Please handle it right away,",
                             "Time-critical,"),
    ("en", Urgency.LOW): ("No rush,", "Whenever you get a chance.", "Not urgent,"),
}  # fmt: skip
#: Chance of an urgent message by tone (anxious and angry customers are pressed for time);
#: other tones use ``_URGENT_BASE`` plus ``_URGENT_INTENT`` for their intent.
_URGENT_BY_TONE: dict[str, float] = {"anxious": 0.85, "angry": 0.5}
_URGENT_BASE = 0.08
_URGENT_INTENT: dict[Intent, float] = {Intent.COMPLAINT: 0.15, Intent.RETURN: 0.1}
#: Chance of a low-urgency message for tones that are not pressed for time.
_LOW_BY_TONE: dict[str, float] = {"calm": 0.3, "satisfied": 0.3, "grateful": 0.3}
_LOW_BASE = 0.15
#: Chance that a low or urgent message says so in words (otherwise only tone hints at it).
_URGENCY_CUE_RATE = 0.75
_EMOJI: dict[Emotion, tuple[str, ...]] = {
    Emotion.NEGATIVE: ("😡", "😤", "😞", "😰", "🙄", "💢"),
    Emotion.NEUTRAL: ("🙂", "🤔", "📦"),
    Emotion.POSITIVE: ("😊", "👍", "🙏", "❤️", "🎉", "😄"),
}

#: Personal-information clauses per (language, slot).
_PII_CLAUSES: dict[tuple[str, str], tuple[str, ...]] = {
    ("zh", "phone"): ("手机{phone}", "电话：{phone}", "联系方式{phone}", "我的手机号是{phone}", "回电{phone}"),
    ("zh", "name"): ("我是{name}", "我叫{name}", "收件人{name}"),
    ("zh", "id_number"): ("身份证号{id_number}", "证件号{id_number}"),
    ("zh", "email"): ("邮箱{email}", "email：{email}"),
    ("zh", "bank_card"): ("卡号{bank_card}", "银行卡{bank_card}"),
    ("en", "phone"): ("call me at {phone}", "my number is {phone}"),
    ("en", "name"): ("this is {name}", "name: {name}"),
    ("en", "id_number"): ("ID {id_number}",),
    ("en", "email"): ("you can reach me at {email}", "email {email}"),
    ("en", "bank_card"): ("card {bank_card}",),
}  # fmt: skip
#: Chance of each kind of personal information in a generic PII clause.
_PII_KINDS: tuple[tuple[str, float], ...] = (
    ("name", 0.45),
    ("phone", 0.7),
    ("email", 0.15),
    ("id_number", 0.12),
    ("bank_card", 0.06),
)

_PRODUCTS: dict[str, tuple[str, ...]] = {
    "electronics": ("蓝牙耳机", "扫地机器人", "平板电脑", "充电宝"),
    "apparel": ("羽绒服", "运动鞋", "连衣裙", "牛仔裤"),
    "beauty": ("面霜", "口红", "洗发水", "防晒霜"),
    "home": ("床上四件套", "收纳箱", "台灯", "空气炸锅"),
    "food": ("坚果礼盒", "有机牛奶", "咖啡豆", "月饼礼盒"),
    "baby": ("纸尿裤", "婴儿推车", "奶粉", "儿童座椅"),
    "sports": ("瑜伽垫", "登山包", "跑步机", "羽毛球拍"),
    "books": ("儿童绘本", "编程书", "小说套装"),
    "other": ("礼品卡", "会员服务", "配件"),
}
_PRODUCTS_EN: dict[str, tuple[str, ...]] = {
    "electronics": ("headphones", "robot vacuum", "tablet"),
    "apparel": ("jacket", "running shoes", "dress"),
    "beauty": ("face cream", "lipstick", "shampoo"),
    "home": ("desk lamp", "air fryer", "storage box"),
    "food": ("coffee beans", "nut gift box"),
    "baby": ("stroller", "diapers", "car seat"),
    "sports": ("yoga mat", "hiking backpack"),
    "books": ("book set", "picture book"),
    "other": ("gift card", "membership"),
}
_WHEN: dict[str, tuple[str, ...]] = {
    "zh": ("昨天", "前天", "上周", "上周五", "三天前", "今天上午", "月初", "双十一"),
    "en": ("yesterday", "last week", "on Monday", "three days ago", "this morning"),
}
#: Code-switching: Chinese words customers write in English, and Chinese interjections.
_ZH_TO_EN: tuple[tuple[str, str], ...] = (
    ("订单", "order"), ("退款", "refund"), ("退货", "return"), ("优惠券", "coupon"),
    ("发票", "invoice"), ("尺码", "size"), ("谢谢", "thx"), ("客服", "CS"),
    ("快递", "快递express"), ("会员", "VIP"),
)  # fmt: skip
_EN_TAGS: tuple[str, ...] = (" pls", " asap", " OK?", " thx")
_ZH_TAGS: tuple[str, ...] = ("谢谢", "麻烦了", "在吗", "亲")
#: Chinese homophones and near-homophones customers mix up.
_HOMOPHONES: dict[str, str] = {
    "的": "得", "在": "再", "再": "在", "吗": "嘛", "那": "哪", "做": "作", "已": "以",
    "账": "帐", "到": "倒", "急": "及", "换": "还", "买": "卖",
}  # fmt: skip
_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


@dataclass(frozen=True)
class _Pattern:
    lang: Lang
    intent: Intent
    emotions: tuple[Emotion, ...]
    text: str


def _patterns() -> tuple[_Pattern, ...]:
    own = [_Pattern("zh", i, e, t) for i, e, t in _ZH] + [
        _Pattern("en", i, e, t) for i, e, t in _EN
    ]
    tables: tuple[tuple[Lang, tuple[str, ...], dict[Intent, tuple[str, ...]]], ...] = (
        ("zh", _ZH_SHARED, _ZH_CUES),
        ("en", _EN_SHARED, _EN_CUES),
    )
    shared = [
        _Pattern(lang, intent, _ALL, skeleton.replace("{cue}", cue))
        for lang, skeletons, cues in tables
        for skeleton in skeletons
        for intent, phrases in cues.items()
        for cue in phrases
    ]
    return tuple(own + shared)


PATTERNS: tuple[_Pattern, ...] = _patterns()
_BY_KEY: dict[tuple[str, Intent, Emotion], tuple[_Pattern, ...]] = {
    (lang, intent, emotion): tuple(
        p for p in PATTERNS if p.lang == lang and p.intent is intent and emotion in p.emotions
    )
    for lang in ("zh", "en")
    for intent in Intent
    for emotion in Emotion
}
#: Every pattern, one ``Template`` per emotion its wording allows.
TEMPLATES: tuple[Template, ...] = tuple(
    Template(p.lang, p.intent, e, p.text, TONES[e][0]) for p in PATTERNS for e in p.emotions
)


def pattern_count(lang: Lang, intent: Intent) -> int:
    """Return how many distinct patterns express ``intent`` in ``lang``."""
    return sum(1 for p in PATTERNS if p.lang == lang and p.intent is intent)


#: Default noise of generated populations.
DEFAULT_NOISE = MessageNoise()

#: How likely each emotion is for each intent (complaints are mostly negative).
_EMOTION_WEIGHTS: dict[Intent, tuple[float, float, float]] = {
    Intent.INQUIRY: (0.2, 0.6, 0.2),
    Intent.COMPLAINT: (0.85, 0.15, 0.0),
    Intent.PURCHASE: (0.1, 0.45, 0.45),
    Intent.RETURN: (0.45, 0.45, 0.1),
}
_FORMATTER = string.Formatter()


def _typo(text: str, lang: str, rate: float, rng: random.Random) -> str:
    """Return ``text`` with per-character typos (drop, double, swap or homophone)."""
    if rate <= 0.0 or not text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if rng.random() >= rate or ch.isspace():
            out.append(ch)
            i += 1
            continue
        kind = rng.random()
        if lang == "zh" and ch in _HOMOPHONES and kind < 0.5:
            out.append(_HOMOPHONES[ch])
        elif kind < 0.65:
            pass  # dropped
        elif kind < 0.8:
            out.append(ch + ch)
        elif i + 1 < len(text):
            out.append(text[i + 1] + ch)
            i += 1
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _digits(value: str, noise: MessageNoise, rng: random.Random, slot: str) -> str:
    """Write a phone / ID / card number the ways customers write it."""
    if slot not in ("phone", "id_number", "bank_card") or not value.isdigit():
        return value
    text = value
    if rng.random() < noise.format_rate:
        if slot == "phone" and len(value) == 11:
            sep = rng.choice([" ", "-"])
            text = f"{value[:3]}{sep}{value[3:7]}{sep}{value[7:]}"
            if rng.random() < 0.3:
                text = "+86 " + text
        elif slot == "bank_card":
            text = " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        elif slot == "id_number" and len(value) == 18:
            text = f"{value[:6]} {value[6:14]} {value[14:]}"
    if rng.random() < noise.fullwidth_rate:
        text = text.translate(_FULLWIDTH)
    return text


def _pii_clause(
    lang: str, person: dict[str, str], rng: random.Random
) -> tuple[str, dict[str, str]]:
    """Return a personal-information clause (with slots) and the slot values it uses."""
    kinds = [k for k, p in _PII_KINDS if k in person and rng.random() < p]
    if not kinds:
        kinds = ["phone"] if "phone" in person else []
    parts = [rng.choice(_PII_CLAUSES[(lang, k)]) for k in kinds]
    joiner = "，" if lang == "zh" else ", "
    return joiner.join(parts), {k: person[k] for k in kinds}


def _values(lang: str, category: str, rng: random.Random) -> dict[str, str]:
    products = (_PRODUCTS if lang == "zh" else _PRODUCTS_EN).get(category) or _PRODUCTS["other"]
    if lang == "en" and category not in _PRODUCTS_EN:
        products = _PRODUCTS_EN["other"]
    return {
        "product": rng.choice(products),
        "order": str(rng.randint(10**11, 10**12 - 1)),
        "when": rng.choice(_WHEN[lang]),
        "amount": str(rng.choice([5, 10, 20, 35, 50, 99, 120, 200])),
    }


def _code_switch(text: str, lang: str, rng: random.Random) -> str:
    if lang == "zh":
        pairs = [(zh, en) for zh, en in _ZH_TO_EN if zh in text]
        if pairs:
            zh, en = rng.choice(pairs)
            return text.replace(zh, en, 1)
        return text + rng.choice(_EN_TAGS)
    return text + " " + rng.choice(_ZH_TAGS)


def _punctuate(text: str, lang: str, rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.35:
        return text.rstrip("。.！!？?")
    if choice < 0.7:
        return text.replace("，", ",").replace("。", ".").replace("？", "?").replace("！", "!")
    mark = "！！！" if lang == "zh" else "!!!"
    return text.rstrip("。.！!") + rng.choice([mark, "???", "。。。", "..."])


@dataclass(frozen=True)
class PIISpan:
    """Where one piece of personal information sits in a rendered message.

    Parameters
    ----------
    slot : str
        Which kind (one of ``PII_SLOTS``).
    value : str
        The person's value as given (unformatted).
    start, end : int
        ``text[start:end]`` is the value as written (spaced, dashed, ``+86`` or full-width
        digits under noise; exactly ``value`` without noise).
    """

    slot: str
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class RenderedMessage:
    """A rendered message with its labels and the exact places of its personal information.

    Parameters
    ----------
    text : str
        The message.
    template : Template
        The pattern and labels it came from (``template.intent``, ``template.emotion``).
    pii : tuple[PIISpan, ...]
        Every embedded piece of personal information, in text order.
    """

    text: str
    template: Template
    pii: tuple[PIISpan, ...]


def render_message(
    *,
    rng: random.Random,
    lang: Lang,
    intent: Intent,
    category: str,
    person: dict[str, str],
    emotion: Emotion | None = None,
    noise: MessageNoise = DEFAULT_NOISE,
) -> tuple[str, Template]:
    """Render one customer message and return it with the template and labels it came from.

    Parameters
    ----------
    rng : random.Random
        Source of every choice (the output is a pure function of its state).
    lang : {"zh", "en"}
        Language of the message.
    intent : Intent
        Intent the message expresses.
    category : str
        Product category (picks the product named).
    person : dict
        The customer's personal information by slot (``name``, ``phone``, ``id_number``,
        ``email``, ``bank_card``); pass masked placeholders for pre-masked text.
    emotion : Emotion or None
        Emotion to express; drawn from the intent's usual emotions when ``None``.
    noise : MessageNoise
        How noisy the text is.

    Returns
    -------
    tuple of (str, Template)
        The text and its template (``template.intent`` and ``template.emotion`` are the
        labels).
    """
    rendered = render_labeled_message(
        rng=rng,
        lang=lang,
        intent=intent,
        category=category,
        person=person,
        emotion=emotion,
        noise=noise,
    )
    return rendered.text, rendered.template


def _locate(text: str, inserted: list[tuple[str, str, str]]) -> tuple[PIISpan, ...]:
    """Find each inserted ``(slot, value, written)`` in ``text``, in insertion order."""
    spans: list[PIISpan] = []
    pos = 0
    for slot, value, written in inserted:
        start = text.find(written, pos)
        if start < 0:  # the noise never touches identifiers; this would be a bug
            raise RuntimeError(f"rendered {slot} slot not found in the message")
        spans.append(PIISpan(slot, value, start, start + len(written)))
        pos = start + len(written)
    return tuple(spans)


def render_labeled_message(
    *,
    rng: random.Random,
    lang: Lang,
    intent: Intent,
    category: str,
    person: dict[str, str],
    emotion: Emotion | None = None,
    noise: MessageNoise = DEFAULT_NOISE,
) -> RenderedMessage:
    """Render one customer message with its labels and the spans of its personal information.

    Takes the same arguments as :func:`render_message` and draws the same random numbers, so
    both give the same text for the same ``rng`` state. The spans let PII-masking tests and
    evaluations score detection against exact gold positions.

    Returns
    -------
    RenderedMessage
        Text, template (labels) and PII spans.

    Raises
    ------
    ValueError
        If ``lang`` is neither ``"zh"`` nor ``"en"``.
    """
    if lang not in ("zh", "en"):
        raise ValueError(f"unknown language {lang!r}; use 'zh' or 'en'")
    if emotion is None:
        emotion = rng.choices(list(Emotion), weights=_EMOTION_WEIGHTS[intent])[0]
    choices = _BY_KEY[(lang, intent, emotion)]
    pattern = rng.choice(choices)
    tone = rng.choice(TONES[emotion])
    values = _values(lang, category, rng)
    body = pattern.text
    if "{pii}" in body:
        clause = ""
        if person and rng.random() < noise.pii_rate:
            clause, _ = _pii_clause(lang, person, rng)
            clause += "。" if lang == "zh" else "."
        body = body.replace("{pii}", clause)
    # Typos go into the literal text only, so the identifiers stay exact.
    pieces: list[str] = []
    inserted: list[tuple[str, str, str]] = []
    for literal, field, _spec, _conv in _FORMATTER.parse(body):
        pieces.append(_typo(literal, lang, noise.typo_rate, rng))
        if field is None:
            continue
        if field in values:
            pieces.append(values[field])
        elif field in person:
            written = _digits(person[field], noise, rng, field)
            pieces.append(written)
            if field in PII_SLOTS and written:
                inserted.append((field, person[field], written))
        else:
            pieces.append(values.get(field, ""))
    text = "".join(pieces).strip()
    mood = rng.choice(_MOODS[(lang, tone)])
    if mood:
        space = "" if lang == "zh" else " "
        text = f"{mood}{space}{text}" if rng.random() < 0.6 else f"{text}{space}{mood}"
    if rng.random() < noise.mixed_rate:
        text = _code_switch(text, lang, rng)
    if rng.random() < noise.punctuation_rate:
        text = _punctuate(text, lang, rng)
    if rng.random() < noise.emoji_rate:
        text += rng.choice(_EMOJI[emotion])
    urgency, text = _urgency(text, lang, intent, tone)
    template = Template(lang, intent, emotion, pattern.text, tone, urgency)
    return RenderedMessage(text, template, _locate(text, inserted))


def _urgency(text: str, lang: str, intent: Intent, tone: str) -> tuple[Urgency, str]:
    """Draw the message's urgency and maybe say it in words; return it with the text.

    The draw comes from a generator seeded by the text itself, not from the caller's
    ``rng``: adding the urgency label left every other seeded choice (and so every earlier
    population, dataset and test expectation) unchanged.
    """
    draw = random.Random(f"urgency|{lang}|{text}")
    urgent = _URGENT_BY_TONE.get(tone, _URGENT_BASE + _URGENT_INTENT.get(intent, 0.0))
    low = 0.0 if tone in _URGENT_BY_TONE else _LOW_BY_TONE.get(tone, _LOW_BASE)
    roll = draw.random()
    urgency = (
        Urgency.URGENT if roll < urgent else Urgency.LOW if roll < urgent + low else Urgency.NORMAL
    )
    if urgency is Urgency.NORMAL or draw.random() >= _URGENCY_CUE_RATE:
        return urgency, text
    cue = draw.choice(_URGENCY_CUES[(lang, urgency)])
    space = "" if lang == "zh" else " "
    return urgency, (f"{cue}{space}{text}" if draw.random() < 0.5 else f"{text}{space}{cue}")
