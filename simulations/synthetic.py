"""Synthetic multi-channel customer populations, seeded and deterministic.

Each user has latent traits (purchasing power, interaction willingness, price sensitivity,
question tendency, complaint proneness, category preferences, a weekly rhythm, a churn
tendency) and real-looking identifiers generated offline with Faker's zh_CN locale (mobile
numbers, checksum-valid resident-ID numbers, Luhn-valid bank cards, names, e-mail). Events
spread over the five channels with a non-IID channel mix per user; customer messages embed the
user's personal information in Chinese (and some English) text; consent decisions are recorded
at the channels where the user is active, with some later withdrawals.

The output is what the channel systems would hand to their edges: one JSONL file per channel
in the edge input schema (``client/schemas.py``), plus ``users.jsonl`` holding the ground
truth (identifiers and traits), which never goes to an edge or the server.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from faker import Faker

from models import CATEGORIES, Channel

from .messages import Intent, Lang, render_message

CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel)
PURPOSES: tuple[str, ...] = (
    "service_routing",
    "personalized_service",
    "proactive_service",
    "marketing",
    "model_training",
    "analytics",
)
#: Probability that a user grants each purpose when first asked.
GRANT_RATE: dict[str, float] = {
    "service_routing": 0.95,
    "personalized_service": 0.8,
    "proactive_service": 0.6,
    "marketing": 0.45,
    "model_training": 0.8,
    "analytics": 0.7,
}
#: Channel affinities: (browse/purchase weight, service-contact weight).
_CHANNEL_AFFINITY: dict[str, tuple[float, float]] = {
    "web": (1.0, 0.2),
    "app": (1.2, 0.4),
    "desk": (0.05, 1.5),
    "sms": (0.1, 0.8),
    "social": (0.3, 1.0),
}
NOTICE_VERSION = "2026-10"
_CST = timezone(timedelta(hours=8), "CST")


@dataclass(frozen=True)
class PopulationConfig:
    """Size and shape of a synthetic population.

    Parameters
    ----------
    users : int
        Number of users.
    days : int
        Length of the observed period in days.
    seed : int
        Seed; equal seeds give byte-identical output.
    end : datetime
        End of the observed period (UTC).
    english_share : float
        Share of messages written in English.
    """

    users: int = 1000
    days: int = 60
    seed: int = 0
    end: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    english_share: float = 0.1

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError("users must be at least 1")
        if self.days < 7:
            raise ValueError("days must be at least 7")
        if not 0.0 <= self.english_share <= 1.0:
            raise ValueError("english_share must be within [0, 1]")


@dataclass
class User:
    """A synthetic user: identifiers (raw PII, synthetic) and latent traits."""

    index: int
    name: str
    phone: str
    id_number: str
    email: str
    bank_card: str
    purchasing_power: float
    interaction: float
    price_sensitivity: float
    question_tendency: float
    complaint_proneness: float
    churn: float
    category_weights: list[float]
    channel_weights: list[float]
    active_hour: int
    consents: dict[str, bool] = field(default_factory=dict)
    withdrawn: dict[str, float] = field(default_factory=dict)


def _dirichlet(rng: random.Random, alphas: list[float]) -> list[float]:
    draws = [rng.gammavariate(a, 1.0) for a in alphas]
    total = sum(draws) or 1.0
    return [d / total for d in draws]


def make_users(config: PopulationConfig) -> list[User]:
    """Draw the users of a population (identifiers via Faker zh_CN, traits from ``seed``)."""
    rng = random.Random(config.seed)
    fake = Faker("zh_CN")
    fake.seed_instance(config.seed)
    users: list[User] = []
    phones: set[str] = set()
    for index in range(config.users):
        phone = fake.phone_number()
        while phone in phones:
            phone = fake.phone_number()
        phones.add(phone)
        user = User(
            index=index,
            name=fake.name(),
            phone=phone,
            id_number=fake.ssn(),
            email=f"{fake.user_name()}{index}@{fake.free_email_domain()}",
            bank_card=fake.credit_card_number(card_type="mastercard"),
            purchasing_power=rng.lognormvariate(0.0, 0.6),
            interaction=rng.betavariate(2.0, 3.0),
            price_sensitivity=rng.random(),
            question_tendency=rng.betavariate(1.5, 4.0),
            complaint_proneness=rng.betavariate(1.0, 8.0),
            churn=rng.random() ** 3,
            category_weights=_dirichlet(rng, [0.6] * len(CATEGORIES)),
            channel_weights=_dirichlet(rng, [0.7] * len(CHANNELS)),
            active_hour=rng.choice([9, 10, 12, 14, 19, 20, 21, 22]),
        )
        for purpose in PURPOSES:
            user.consents[purpose] = rng.random() < GRANT_RATE[purpose]
            if user.consents[purpose] and purpose == "marketing" and rng.random() < 0.25:
                user.withdrawn[purpose] = rng.uniform(0.3, 0.9)  # fraction of the period
        users.append(user)
    return users


def _iso(moment: datetime, rng: random.Random) -> str:
    """ISO-8601 timestamp in a channel-typical timezone (UTC+8 or UTC)."""
    if rng.random() < 0.8:
        return moment.astimezone(_CST).isoformat()
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _customer(user: User, channel: str) -> dict[str, str]:
    if channel in ("web", "social") and user.index % 7 == 0:
        return {"phone": "+86 " + user.phone[:3] + "-" + user.phone[3:7] + "-" + user.phone[7:]}
    return {"phone": user.phone}


def _user_lines(
    user: User, config: PopulationConfig, rng: random.Random
) -> Iterator[dict[str, Any]]:
    start = config.end - timedelta(days=config.days)
    active_channels = [c for c, w in zip(CHANNELS, user.channel_weights, strict=True) if w > 0.08]
    if not active_channels:
        active_channels = [
            CHANNELS[max(range(len(CHANNELS)), key=lambda i: user.channel_weights[i])]
        ]
    # 1. Consent decisions at each active channel, at the start of the period.
    for channel in active_channels:
        for purpose in PURPOSES:
            if not user.consents[purpose]:
                continue  # never asked-and-granted: no consent event, so no consent
            at = start + timedelta(minutes=rng.randint(0, 600))
            yield _consent(user, channel, purpose, at, "granted", rng)
            if purpose in user.withdrawn:
                later = start + timedelta(days=config.days * user.withdrawn[purpose])
                yield _consent(user, channel, purpose, later, "withdrawn", rng)
    # 2. Behaviour and messages, day by day.
    seq = 0
    for day in range(config.days):
        decay = math.exp(-user.churn * 4.0 * day / config.days)
        rate = (0.15 + 1.6 * user.interaction) * decay
        for _ in range(_poisson(rng, rate)):
            channel = rng.choices(CHANNELS, weights=user.channel_weights)[0]
            hour = (user.active_hour + rng.randint(-2, 2)) % 24
            moment = start + timedelta(days=day, hours=hour - 8, minutes=rng.randint(0, 59))
            category = rng.choices(CATEGORIES, weights=user.category_weights)[0]
            for line in _session(user, channel, moment, category, rng, seq, config):
                seq += 1
                yield line


def _poisson(rng: random.Random, lam: float) -> int:
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def _consent(
    user: User, channel: str, purpose: str, at: datetime, status: str, rng: random.Random
) -> dict[str, Any]:
    return {
        "kind": "consent",
        "consent_id": f"{channel}-c-{user.index}-{purpose}-{status}-{int(at.timestamp())}",
        "channel": channel,
        "ts": _iso(at, rng),
        "customer": _customer(user, channel),
        "purpose": purpose,
        "status": status,
        "notice_version": NOTICE_VERSION,
    }


def _session(
    user: User,
    channel: str,
    moment: datetime,
    category: str,
    rng: random.Random,
    seq: int,
    config: PopulationConfig,
) -> Iterator[dict[str, Any]]:
    browse, service = _CHANNEL_AFFINITY[channel]
    session = f"{channel}-s-{user.index}-{seq}"
    t = moment

    def event(kind: str, **extra: Any) -> dict[str, Any]:
        nonlocal t
        t += timedelta(seconds=rng.randint(5, 240))
        line = {
            "kind": "event",
            "event_id": f"{channel}-e-{user.index}-{seq}-{kind}-{int(t.timestamp())}",
            "type": kind,
            "channel": channel,
            "ts": _iso(t, rng),
            "customer": _customer(user, channel),
            "session_id": session,
        }
        line.update(extra)
        return line

    if rng.random() < 0.3 * browse + 0.1:
        yield event("login")
    for _ in range(int(rng.random() < browse) + _poisson(rng, 2.5 * browse)):
        yield event("page_view", category=category)
    if rng.random() < 0.5 * browse:
        yield event("search", category=category)
    buy_p = min(0.9, 0.12 * browse * user.purchasing_power * (1.0 + user.interaction))
    if rng.random() < buy_p * 1.6:
        yield event("add_to_cart", category=category)
        if rng.random() < 0.65:
            amount = round(rng.lognormvariate(4.3, 0.5) * user.purchasing_power, 2)
            if rng.random() < user.price_sensitivity * 0.6:
                yield event("coupon_use", category=category)
                amount = round(amount * 0.85, 2)
            yield event("purchase", category=category, amount=amount, currency="CNY")
            if rng.random() < 0.04 + 0.1 * user.complaint_proneness:
                yield event("refund", category=category, amount=amount, currency="CNY")
            if rng.random() < 0.25:
                stars = 1 + min(4, int(rng.gauss(4.2 - 6 * user.complaint_proneness, 0.8)))
                yield event("rating", category=category, rating=max(1, stars))
    contact_p = min(0.95, service * (0.1 + user.question_tendency))
    if rng.random() < contact_p:
        complain = rng.random() < min(0.9, user.complaint_proneness * 3.0 * service)
        intent = (
            Intent.COMPLAINT
            if complain
            else rng.choice([Intent.INQUIRY, Intent.INQUIRY, Intent.PURCHASE, Intent.RETURN])
        )
        yield event("complaint" if complain else "cs_message", category=category)
        lang: Lang = "en" if rng.random() < config.english_share else "zh"
        person = {
            "name": user.name,
            "phone": user.phone,
            "id_number": user.id_number,
            "email": user.email,
            "bank_card": user.bank_card,
        }
        text, template = render_message(
            rng=rng, lang=lang, intent=intent, category=category, person=person
        )
        t += timedelta(seconds=rng.randint(5, 60))
        yield {
            "kind": "message",
            "message_id": f"{channel}-m-{user.index}-{seq}",
            "channel": channel,
            "ts": _iso(t, rng),
            "customer": _customer(user, channel),
            "text": text,
            "lang": lang,
        }


def _line_order(line: dict[str, Any]) -> tuple[datetime, str]:
    moment = datetime.fromisoformat(line["ts"].replace("Z", "+00:00"))
    return moment, str(line.get("event_id") or line.get("message_id") or line.get("consent_id"))


@dataclass(frozen=True)
class PopulationSummary:
    """Counts of what was generated."""

    users: int
    lines_per_channel: dict[str, int]
    events: int
    messages: int
    consents: int


def write_population(config: PopulationConfig, out_dir: Path) -> PopulationSummary:
    """Generate a population and write one JSONL file per channel plus ``users.jsonl``.

    Parameters
    ----------
    config : PopulationConfig
        Size, period and seed.
    out_dir : Path
        Directory to write ``<channel>.jsonl`` and ``users.jsonl`` into.

    Returns
    -------
    PopulationSummary
        What was written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    users = make_users(config)
    per_channel: dict[str, list[dict[str, Any]]] = {c: [] for c in CHANNELS}
    counts = {"event": 0, "message": 0, "consent": 0}
    for user in users:
        rng = random.Random(config.seed * 1_000_003 + user.index)
        for line in _user_lines(user, config, rng):
            per_channel[line["channel"]].append(line)
            counts[line["kind"]] += 1
    for channel, lines in per_channel.items():
        lines.sort(key=_line_order)
        with (out_dir / f"{channel}.jsonl").open("w", encoding="utf-8") as handle:
            for line in lines:
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    with (out_dir / "users.jsonl").open("w", encoding="utf-8") as handle:
        for user in users:
            handle.write(json.dumps(asdict(user), ensure_ascii=False) + "\n")
    return PopulationSummary(
        users=len(users),
        lines_per_channel={c: len(v) for c, v in per_channel.items()},
        events=counts["event"],
        messages=counts["message"],
        consents=counts["consent"],
    )
