"""Synthetic customer-service messages with gold PII spans (Faker zh_CN / en_US, seeded).

Each message strings together one to three PII fragments and neutral filler clauses (some
carrying PII-like distractors: amounts, dates, 20-digit order numbers) in random order.
Fragments come from several templates per entity type, with and without context words,
and values in several surface formats. Checksum-valid IDs come from Faker's ``ssn()``,
card numbers from ``credit_card_number()`` or a UnionPay generator completed with Luhn.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from faker import Faker

from privacy.pii.recognizers.checksums import USCC_ALPHABET


@dataclass(frozen=True)
class GoldSpan:
    type: str
    start: int
    end: int


@dataclass(frozen=True)
class Sample:
    text: str
    gold: tuple[GoldSpan, ...]


# ------------------------------------------------------------------ value generators
def luhn_complete(prefix: str) -> str:
    """Append the Luhn check digit to ``prefix``."""
    total = 0
    for index, char in enumerate(reversed(prefix)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return prefix + str((10 - total % 10) % 10)


def unionpay_card(rng: random.Random) -> str:
    length = rng.choice((16, 16, 17, 18, 19))
    body = "62" + "".join(str(rng.randrange(10)) for _ in range(length - 3))
    return luhn_complete(body)


def uscc(rng: random.Random) -> str:
    weights = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
    body = rng.choice("159") + rng.choice("123") + "".join(str(rng.randrange(10)) for _ in range(6))
    body += "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body, weights, strict=True))
    return body + USCC_ALPHABET[(31 - total % 31) % 31]


def cn_mobile(fake: Faker, rng: random.Random) -> str:
    digits = fake.phone_number()
    formats = [
        lambda d: d,
        lambda d: d,
        lambda d: f"{d[:3]} {d[3:7]} {d[7:]}",
        lambda d: f"{d[:3]}-{d[3:7]}-{d[7:]}",
        lambda d: f"+86 {d}",
        lambda d: f"+86-{d[:3]}-{d[3:7]}-{d[7:]}",
        lambda d: f"0086{d}",
    ]
    return rng.choice(formats)(digits)


def cn_landline(rng: random.Random) -> str:
    area = rng.choice(["010", "021", "020", "022", "023", "0755", "0571", "028", "027", "0512"])
    local = str(rng.randrange(2, 9)) + "".join(
        str(rng.randrange(10)) for _ in range(7 if len(area) == 3 else rng.choice((6, 7)))
    )
    sep = rng.choice(["-", "-", " "])
    if rng.random() < 0.2:
        return f"({area}){local}"
    return f"{area}{sep}{local}"


def cn_bank_card(fake: Faker, rng: random.Random) -> str:
    # Faker zh_CN issues UnionPay, Visa and Mastercard numbers; add 17-19 digit UnionPay too
    number = unionpay_card(rng) if rng.random() < 0.3 else fake.credit_card_number()
    if rng.random() < 0.3:
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return number


def cn_id(fake: Faker, rng: random.Random) -> str:
    value: str = fake.ssn()
    return value.lower() if rng.random() < 0.2 else value


# ------------------------------------------------------------------ templates
ZH_TEMPLATES: dict[str, tuple[str, ...]] = {
    "CN_MOBILE": (
        "我的手机号是{v}",
        "电话{v}",
        "联系方式：{v}",
        "有问题打{v}找我",
        "{v}是我的号码",
        "请回拨{v}",
        "号码换成{v}了",
        "{v}",
    ),
    "CN_LANDLINE": ("座机{v}", "办公室电话是{v}", "固话：{v}", "打{v}也可以"),
    "CN_ID_CARD": ("身份证号{v}", "我的身份证是{v}", "证件号码：{v}", "实名信息{v}"),
    "CN_BANK_CARD": (
        "请把退款打到我的银行卡{v}",
        "卡号{v}",
        "我的储蓄卡是{v}",
        "用尾号不对的那张，卡号是{v}",
        "退款账户{v}",
    ),
    "EMAIL_ADDRESS": ("邮箱{v}", "发到{v}就行", "我的邮箱是 {v}", "email：{v}", "请联系{v}"),
    "IP_ADDRESS": ("登录IP {v}", "IP地址{v}", "从{v}登录的"),
    "PERSON": (
        "我是{v}",
        "我叫{v}",
        "收件人{v}",
        "联系人：{v}",
        "开户人{v}",
        "{v}先生您好",
        "麻烦转告{v}",
        "这是{v}的账号",
        "{v}女士反映过这个问题",
        "昨天和{v}通过电话了",
    ),
    "CN_ADDRESS": ("收货地址：{v}", "我住在{v}", "寄到{v}", "地址是{v}", "送到{v}吧"),
    "CN_LICENSE_PLATE": ("我的车牌是{v}", "车牌号{v}", "车辆{v}违章了吗"),
    "CN_USCC": ("公司统一社会信用代码{v}", "税号{v}", "营业执照号{v}"),
    "CN_PASSPORT": ("护照号{v}", "我的护照是{v}"),
}

ZH_FILLERS = (
    "您好",
    "麻烦尽快处理一下",
    "订单还没到",
    "谢谢",
    "我要投诉",
    "这个商品质量有问题",
    "请问什么时候发货",
    "金额是128元",
    "一共付了1999元",
    "订单号20230101123456789012",
    "第3次联系你们了",
    "已经等了5天",
    "2024年3月5日下的单",
    "下午3点前有人吗",
    "华为荣耀的手机屏幕坏了",
    "银行卡退款多久到账",
    "快递员态度很差",
    "能不能便宜一点",
    "优惠券用不了",
    "我想换一个白色的",
    "买了2件只到了1件",
    "客服一直不回复",
    "周末可以送货吗",
    "发票抬头写公司",
    "运费谁来出",
    "麻烦帮我看看",
    "型号是X200 Pro",
    "单价299元，数量3",
    "会员积分12800",
    "明天上午10:30以后都在家",
)

EN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "PHONE_NUMBER": (
        "my phone number is {v}",
        "call me at {v}",
        "you can reach me on {v}",
        "{v} is my mobile",
        "new number: {v}",
        "{v}",
    ),
    "CREDIT_CARD": (
        "card number {v}",
        "I paid with {v}",
        "please refund to {v}",
        "my visa is {v}",
        "{v}",
    ),
    "EMAIL_ADDRESS": ("my email is {v}", "send it to {v}", "contact {v}", "email: {v}"),
    "IP_ADDRESS": ("I logged in from {v}", "my IP is {v}", "the request came from {v}"),
}

EN_FILLERS = (
    "Hi",
    "my order hasn't arrived",
    "order #1234567890 was late",
    "I was charged $129.99 twice",
    "thanks",
    "I'd like a refund",
    "the package was damaged",
    "it's the 3rd time I'm writing",
    "I ordered 2 items on 2024-03-05",
    "please call back after 5 pm",
    "the coupon code SAVE20 didn't work",
    "model X200 in white",
    "I waited 45 minutes on hold",
    "the tracking page shows nothing",
)


def _assemble(
    rng: random.Random,
    fragments: list[tuple[str, str, str]],
    fillers: tuple[str, ...],
    *,
    joiners: tuple[str, ...],
    end: str,
) -> Sample:
    """Shuffle fragments (template, type, value) with fillers and record gold spans."""
    parts: list[tuple[str, str | None, str | None]] = [(t, k, v) for t, k, v in fragments]
    parts += [(f, None, None) for f in rng.sample(fillers, rng.randint(1, 3))]
    rng.shuffle(parts)
    text = ""
    gold: list[GoldSpan] = []
    for index, (template, kind, value) in enumerate(parts):
        if index:
            text += rng.choice(joiners)
        if kind is None or value is None:
            text += template
            continue
        head, _, tail = template.partition("{v}")
        text += head
        gold.append(GoldSpan(kind, len(text), len(text) + len(value)))
        text += value + tail
    return Sample(text=text + end, gold=tuple(gold))


def zh_samples(
    count: int,
    *,
    seed: int = 20260601,
    kinds: tuple[str, ...] | None = None,
    templates: Mapping[str, tuple[str, ...]] | None = None,
    fillers: tuple[str, ...] | None = None,
) -> list[Sample]:
    """Generate ``count`` Chinese messages with gold spans (templates/fillers overridable)."""
    templates = templates or ZH_TEMPLATES
    fillers = fillers or ZH_FILLERS
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    values: dict[str, Callable[[], str]] = {
        "CN_MOBILE": lambda: cn_mobile(fake, rng),
        "CN_LANDLINE": lambda: cn_landline(rng),
        "CN_ID_CARD": lambda: cn_id(fake, rng),
        "CN_BANK_CARD": lambda: cn_bank_card(fake, rng),
        "EMAIL_ADDRESS": lambda: rng.choice([fake.email, fake.free_email, fake.company_email])(),
        "IP_ADDRESS": fake.ipv4,
        "PERSON": fake.name,
        "CN_ADDRESS": lambda: str(fake.address()).split(" ")[0],
        "CN_LICENSE_PLATE": fake.license_plate,
        "CN_USCC": lambda: uscc(rng),
        "CN_PASSPORT": lambda: rng.choice("EG") + "".join(str(rng.randrange(10)) for _ in range(8)),
    }
    pool = kinds or tuple(k for k in values if k in templates)
    samples = []
    for _ in range(count):
        chosen = rng.sample(pool, rng.randint(1, min(3, len(pool))))
        fragments = [(rng.choice(templates[k]), k, values[k]()) for k in chosen]
        samples.append(
            _assemble(rng, fragments, fillers, joiners=("，", "，", "。", "；", " "), end="。")
        )
    return samples


def en_samples(count: int, *, seed: int = 20260602) -> list[Sample]:
    """Generate ``count`` English messages with gold spans."""
    rng = random.Random(seed)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    values: dict[str, Callable[[], str]] = {
        "PHONE_NUMBER": fake.phone_number,
        "CREDIT_CARD": fake.credit_card_number,
        "EMAIL_ADDRESS": fake.email,
        "IP_ADDRESS": fake.ipv4,
    }
    samples = []
    for _ in range(count):
        chosen = rng.sample(tuple(values), rng.randint(1, 3))
        fragments = [(rng.choice(EN_TEMPLATES[k]), k, values[k]()) for k in chosen]
        samples.append(_assemble(rng, fragments, EN_FILLERS, joiners=(", ", ". ", "; "), end="."))
    return samples
