"""Synthetic linkage sets: Chinese customers (Faker zh_CN) with realistic corruptions.

Used by the linkage tests and ``benchmarks/identity.py``. Side A holds clean records; side B
holds a corrupted copy of a share of them plus other
people, among them hard negatives (a relative at the same address with the same surname).
Corruptions of B's copies, each drawn independently:

- name: a homophone character (张伟 -> 张玮), another character, traditional characters
  (张伟 -> 張偉), or missing;
- birth date: any of four spellings (1990-03-07, 19900307, 1990/3/7, 1990年3月7日), two
  adjacent digits swapped, or missing;
- address: 省 / 市 dropped, the postcode dropped, full-width digits, a character replaced,
  or missing.

``people_csv`` writes a side as CSV (UTF-8 or GB18030). The benchmark uses the same
generator at 100,000 records.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from faker import Faker
from faker.providers.person.zh_CN import Provider as PersonProvider
from pypinyin import lazy_pinyin

FIELDS = ("name", "birth_date", "address")
#: Simplified -> traditional for characters common in names (a typical mixed-script typo).
TRADITIONAL = dict(
    zip(
        "张伟刘陈杨黄赵吴孙马罗郑谢许韩冯邓蒋叶苏吕卢钟谭陆贾韦邹闫龙贺顾龚万钱严汤"
        "华军杰丽红刚辉静凤兰国东云涛鹏飞宁莹洁颖贵庆岚荣凯玮伦锋强鑫鸿"
        "广东门阳长开发区县乡镇",
        "張偉劉陳楊黃趙吳孫馬羅鄭謝許韓馮鄧蔣葉蘇呂盧鍾譚陸賈韋鄒閆龍賀顧龔萬錢嚴湯"
        "華軍傑麗紅剛輝靜鳳蘭國東雲濤鵬飛寧瑩潔穎貴慶嵐榮凱瑋倫鋒強鑫鴻"
        "廣東門陽長開發區縣鄉鎮",
        strict=True,
    )
)
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_COMMON = "的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要她出也得里后"


@dataclass(frozen=True, slots=True)
class LinkageSet:
    """Two sides and the true pairs (A id, B id)."""

    a: list[dict[str, str]]
    b: list[dict[str, str]]
    truth: set[tuple[str, str]]


def _homophones() -> dict[str, list[str]]:
    """Name characters grouped by toneless pinyin (from Faker's own name lists)."""
    chars = {c for name in PersonProvider.first_names for c in name}
    chars |= {c for name in PersonProvider.last_names for c in name}
    chars |= set("玮炜维薇卫威为唯巍蔚")
    groups: dict[str, list[str]] = defaultdict(list)
    for char in sorted(chars):
        groups[lazy_pinyin(char)[0]].append(char)
    return {c: [o for o in groups[lazy_pinyin(c)[0]] if o != c] for c in chars}


_HOMOPHONES = _homophones()


def _corrupt_name(name: str, rng: random.Random) -> str:
    roll = rng.random()
    position = rng.randrange(len(name))
    if roll < 0.25:
        options = _HOMOPHONES.get(name[position], [])
        if options:
            return name[:position] + rng.choice(options) + name[position + 1 :]
    if roll < 0.35:
        return name[:position] + rng.choice(_COMMON) + name[position + 1 :]
    if roll < 0.5:
        return "".join(TRADITIONAL.get(c, c) for c in name)
    if roll < 0.53:
        return ""
    return name


def _spell_date(year: int, month: int, day: int, rng: random.Random) -> str:
    style = rng.randrange(4)
    if style == 0:
        return f"{year:04d}-{month:02d}-{day:02d}"
    if style == 1:
        return f"{year:04d}{month:02d}{day:02d}"
    if style == 2:
        return f"{year}/{month}/{day}"
    return f"{year}年{month}月{day}日"


def _corrupt_date(iso: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.04:
        return ""
    digits = iso.replace("-", "")
    if roll < 0.14:
        i = rng.randrange(len(digits) - 1)
        digits = digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
        return digits
    return _spell_date(int(digits[:4]), int(digits[4:6]), int(digits[6:]), rng)


def _corrupt_address(address: str, rng: random.Random) -> str:
    if rng.random() < 0.04:
        return ""
    if rng.random() < 0.3:
        address = address.replace("省", "").replace("市", "")
    if rng.random() < 0.3:
        address = address.rsplit(" ", 1)[0]
    if rng.random() < 0.1:
        address = address.translate(_FULL_WIDTH)
    if rng.random() < 0.15:
        i = rng.randrange(len(address))
        address = address[:i] + rng.choice(_COMMON) + address[i + 1 :]
    return address


def _person(fake: Faker, _rng: random.Random, prefix: str, number: int) -> dict[str, str]:
    born = fake.date_of_birth(minimum_age=16, maximum_age=90)
    return {
        "id": f"{prefix}{number}",
        "name": fake.name(),
        "birth_date": born.isoformat(),
        "address": fake.address(),
    }


def chinese_linkage_set(n: int, *, overlap: float = 0.8, seed: int = 0) -> LinkageSet:
    """Generate ``n`` clean A records and a corrupted B side (``overlap`` share are copies).

    B also holds ``n - copies`` other people, a tenth of them relatives of A's people: same
    surname and address, another given name and birth date (hard negatives).
    """
    rng = random.Random(seed)
    fake = Faker("zh_CN")
    fake.seed_instance(seed)
    a = [_person(fake, rng, "a", i) for i in range(n)]
    copies = rng.sample(range(n), int(n * overlap))
    b: list[dict[str, str]] = []
    truth: set[tuple[str, str]] = set()
    for j, i in enumerate(copies):
        source = a[i]
        b_id = f"b{j}"
        b.append(
            {
                "id": b_id,
                "name": _corrupt_name(source["name"], rng),
                "birth_date": _corrupt_date(source["birth_date"], rng),
                "address": _corrupt_address(source["address"], rng),
            }
        )
        truth.add((source["id"], b_id))
    for j in range(len(copies), n):
        other = _person(fake, rng, "b", j)
        if rng.random() < 0.1:
            relative = a[rng.randrange(n)]
            other["name"] = relative["name"][0] + other["name"][1:]
            other["address"] = relative["address"]
        b.append(other)
    rng.shuffle(b)
    return LinkageSet(a=a, b=b, truth=truth)


def people_csv(
    rows: list[dict[str, str]], path: Path, *, encoding: str = "utf-8", id_field: str = "id"
) -> Path:
    """Write rows as CSV with columns ``id_field`` + ``FIELDS`` and return the path."""
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([id_field, *FIELDS])
        for row in rows:
            writer.writerow([row["id"], *(row[field] for field in FIELDS)])
    return path
