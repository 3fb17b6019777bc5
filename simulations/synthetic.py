"""Synthetic multi-channel customer populations, seeded and deterministic.

Each user has latent traits (purchasing power, interaction willingness, price sensitivity,
question tendency, complaint proneness, category preferences, a weekly rhythm and an active
hour, a churn tendency) and real-looking identifiers generated offline with Faker's zh_CN
locale (mobile numbers, checksum-valid resident-ID numbers, Luhn-valid bank cards, names,
e-mail). Events spread over the five channels with a non-IID channel mix per user; customer
messages embed the user's personal information in Chinese (and some English) text, with
intent and emotion labels (``simulations.messages``). Users may have several devices and
accounts per channel (``simulations.identities``).

Consent changes over time: grants at the start of the period on every device of every
channel the user is active on, late grants, withdrawals at one channel (some re-granted
later), a material notice renewal part-way through (``notices.json``; grants under the old
version are paused until the user renews them under the new one), SMS marketing grants that
expire, and separate consents (PIPL Art. 29) for personalised service.

The output is what the channel systems would hand to their edges: one JSONL file per channel
in the edge input schema (``client/schemas.py``) and ``notices.json`` (the published notice
versions). Ground truth that never goes to an edge or the server: ``users.jsonl``
(identifiers, traits, consent plan), ``labels/identities.jsonl`` (every identifier of each
user per channel) and ``labels/messages.jsonl`` (intent, emotion and tone of each message).

(About 580 lines, above the 400-line guide: the session generator and the consent plan share
the user's traits and random stream kept here.)
"""

from __future__ import annotations

import hashlib
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

from .identities import UserIdentity, assign_identity
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
#: Probability that a user who refused at first grants later in the period.
LATE_GRANT_RATE = 0.1
#: Probability that a granted purpose is withdrawn during the period.
WITHDRAW_RATE: dict[str, float] = {
    "service_routing": 0.01,
    "personalized_service": 0.05,
    "proactive_service": 0.08,
    "marketing": 0.25,
    "model_training": 0.05,
    "analytics": 0.05,
}
#: Probability that a withdrawn purpose is granted again later.
REGRANT_RATE = 0.3
#: Purposes whose notice is renewed materially part-way through the period.
RENEWED_PURPOSES: tuple[str, ...] = ("marketing", "personalized_service")
#: Probability that a user holding a grant renews it under the new notice.
RENEW_RATE = 0.7
#: SMS marketing grants expire after this many days.
SMS_MARKETING_DAYS = 30
#: Share of personalised-service grants given as a separate consent (PIPL Art. 29).
SEPARATE_RATE = 0.5
#: Share of logins of a device known by a login identifier that also carry the phone.
LINK_RATE = 0.4
#: Channel roles: (browsing weight, purchase weight, service-contact weight). Every channel
#: of a customer-service platform sells: agents place orders at the desk (代客下单), SMS
#: carries short links to a shop, social channels run mini-program shops; browsing happens
#: mostly on the web and in the app.
_CHANNEL_AFFINITY: dict[str, tuple[float, float, float]] = {
    "web": (1.0, 1.0, 0.2),
    "app": (1.2, 1.2, 0.4),
    "desk": (0.05, 0.5, 1.5),
    "sms": (0.1, 0.5, 0.8),
    "social": (0.3, 0.6, 1.0),
}
#: Notice version in force at the start, and the material renewal.
#: Share of each channel's messages an agent labels with intent, emotion and urgency (the
#: ticket disposition): every desk ticket, chats an agent took over on the web and app,
#: some social threads; SMS replies are never labelled.
AGENT_LABEL_SHARE: dict[str, float] = {"desk": 1.0, "web": 0.5, "app": 0.5, "social": 0.3}
#: Key of the ground truth on generated message lines (``user_lines(..., labels=True)``).
TRUTH_KEY = "truth"

NOTICE_VERSION = "2026-10"
RENEWED_NOTICE_VERSION = "2026-10.2"
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
    cross_device_share : float
        Share of users with several devices / accounts (``simulations.identities``).
    notice_renewal_at : float or None
        When the material notice renewal is published, as a fraction of the period;
        ``None`` publishes none.
    """

    users: int = 1000
    days: int = 60
    seed: int = 0
    end: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    english_share: float = 0.1
    cross_device_share: float = 0.15
    notice_renewal_at: float | None = 0.5

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ValueError("users must be at least 1")
        if self.days < 7:
            raise ValueError("days must be at least 7")
        for name in ("english_share", "cross_device_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [0, 1]")
        if self.notice_renewal_at is not None and not 0.0 < self.notice_renewal_at < 1.0:
            raise ValueError("notice_renewal_at must be within (0, 1) or None")

    @property
    def start(self) -> datetime:
        """Start of the observed period."""
        return self.end - timedelta(days=self.days)

    @property
    def renewal(self) -> datetime | None:
        """When the renewed notice is published, if any."""
        if self.notice_renewal_at is None:
            return None
        return self.start + timedelta(days=self.days * self.notice_renewal_at)


@dataclass
class User:
    """A synthetic user: identifiers (raw PII, synthetic), latent traits and consent plan.

    Consent times are fractions of the observed period; ``consents`` says whether the user
    grants a purpose when first asked.
    """

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
    weekday_weights: list[float]
    active_hour: int
    consents: dict[str, bool] = field(default_factory=dict)
    late_grants: dict[str, float] = field(default_factory=dict)
    withdrawn: dict[str, float] = field(default_factory=dict)
    regranted: dict[str, float] = field(default_factory=dict)
    renews: dict[str, float] = field(default_factory=dict)
    separate: list[str] = field(default_factory=list)


def _dirichlet(rng: random.Random, alphas: list[float]) -> list[float]:
    draws = [rng.gammavariate(a, 1.0) for a in alphas]
    total = sum(draws) or 1.0
    return [d / total for d in draws]


def _weekly_rhythm(rng: random.Random) -> list[float]:
    """Relative activity Monday..Sunday (mean 1): a weekend factor and day-to-day noise."""
    weekend = rng.uniform(0.5, 1.8)
    raw = [rng.lognormvariate(0.0, 0.25) * (weekend if d >= 5 else 1.0) for d in range(7)]
    mean = sum(raw) / 7
    return [round(r / mean, 4) for r in raw]


def _consent_plan(user: User, rng: random.Random) -> None:
    """Draw when the user grants, withdraws, re-grants and renews each purpose."""
    for purpose in PURPOSES:
        user.consents[purpose] = rng.random() < GRANT_RATE[purpose]
        if not user.consents[purpose]:
            if rng.random() < LATE_GRANT_RATE:
                user.late_grants[purpose] = rng.uniform(0.1, 0.8)
            else:
                continue
        if rng.random() < WITHDRAW_RATE[purpose]:
            user.withdrawn[purpose] = rng.uniform(0.3, 0.9)  # of the time left after the grant
            if rng.random() < REGRANT_RATE:
                user.regranted[purpose] = rng.uniform(0.2, 0.9)  # of the time left after that
        if purpose in RENEWED_PURPOSES and rng.random() < RENEW_RATE:
            user.renews[purpose] = rng.uniform(0.0, 0.4)  # of the period, after the renewal
        if purpose == "personalized_service" and rng.random() < SEPARATE_RATE:
            user.separate.append(purpose)


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
            weekday_weights=_weekly_rhythm(rng),
            active_hour=rng.choice([9, 10, 12, 14, 19, 20, 21, 22]),
        )
        _consent_plan(user, rng)
        users.append(user)
    return users


def identity_of(user: User, config: PopulationConfig) -> UserIdentity:
    """Return the devices and accounts each channel knows ``user`` by."""
    return assign_identity(
        user=user.index,
        phone=user.phone,
        email=user.email,
        seed=config.seed,
        cross_device_share=config.cross_device_share,
    )


def _iso(moment: datetime, rng: random.Random) -> str:
    """ISO-8601 timestamp in a channel-typical timezone (UTC+8 or UTC)."""
    if rng.random() < 0.8:
        return moment.astimezone(_CST).isoformat()
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _active_channels(user: User) -> list[str]:
    active = [c for c, w in zip(CHANNELS, user.channel_weights, strict=True) if w > 0.08]
    return active or [CHANNELS[max(range(len(CHANNELS)), key=lambda i: user.channel_weights[i])]]


def _consent_lines(
    user: User, who: UserIdentity, config: PopulationConfig, rng: random.Random
) -> Iterator[dict[str, Any]]:
    """Yield the user's consent lines: grants, withdrawals, re-grants and renewals."""
    start, period, renewal = config.start, timedelta(days=config.days), config.renewal
    channels = _active_channels(user)
    main = max(channels, key=lambda c: user.channel_weights[CHANNELS.index(c)])

    def line(channel: str, device: int, purpose: str, at: datetime, status: str) -> dict[str, Any]:
        version = NOTICE_VERSION if renewal is None or at < renewal else RENEWED_NOTICE_VERSION
        out: dict[str, Any] = {
            "kind": "consent",
            "consent_id": f"{channel}-c-{user.index}-{device}-{purpose}-{status}-"
            f"{int(at.timestamp())}",
            "channel": channel,
            "ts": _iso(at, rng),
            "customer": who.customer(channel, device),
            "purpose": purpose,
            "status": status,
            "notice_version": version,
        }
        if status == "granted" and purpose in user.separate:
            out["separate"] = True
        if status == "granted" and purpose == "marketing" and channel == "sms":
            out["expires_at"] = _iso(at + timedelta(days=SMS_MARKETING_DAYS), rng)
        return out

    def everywhere(purpose: str, at: datetime) -> Iterator[dict[str, Any]]:
        for channel in channels:
            for device in range(who.device_count(channel)):
                offset = timedelta(minutes=rng.randint(0, 600))
                yield line(channel, device, purpose, min(at + offset, config.end), "granted")

    for purpose in PURPOSES:
        if user.consents[purpose]:
            granted = start
        elif purpose in user.late_grants:
            granted = start + period * user.late_grants[purpose]
        else:
            continue  # never asked-and-granted: no consent event, so no consent
        yield from everywhere(purpose, granted)
        withdrawn = again = config.end + period  # never, unless drawn
        if purpose in user.withdrawn:
            withdrawn = granted + (config.end - granted) * user.withdrawn[purpose]
            yield line(main, 0, purpose, withdrawn, "withdrawn")
            if purpose in user.regranted:
                again = withdrawn + (config.end - withdrawn) * user.regranted[purpose]
                yield line(main, 0, purpose, again, "granted")
        if renewal is None or purpose not in user.renews or granted >= renewal:
            continue
        renew = renewal + period * user.renews[purpose]
        if renew < config.end and not withdrawn <= renew < again:
            yield from everywhere(purpose, renew)  # renews only a grant still in force


def session_rate(user: User, day: int, config: PopulationConfig) -> float:
    """Return the expected sessions of ``user`` on ``day`` (from the period start), all channels.

    Interaction willingness sets the level, churn decays it over the period and the weekly
    rhythm modulates it; sessions per day are Poisson with this mean.
    """
    decay = math.exp(-user.churn * 4.0 * day / config.days)
    weekday = (config.start + timedelta(days=day)).astimezone(_CST).weekday()
    return (0.15 + 1.6 * user.interaction) * decay * user.weekday_weights[weekday]


def purchase_chance(user: User, channel: str) -> float:
    """Probability that one session of ``user`` on ``channel`` contains a purchase."""
    return min(1.0, 1.6 * _buy_propensity(user, channel)) * _CHECKOUT_RATE


def _buy_propensity(user: User, channel: str) -> float:
    purchase = _CHANNEL_AFFINITY[channel][1]
    return min(0.9, 0.12 * purchase * user.purchasing_power * (1.0 + user.interaction))


def device_weights(count: int) -> list[float]:
    """Relative use of a user's ``count`` devices on one channel (the first is the main one)."""
    return [2.0] + [1.0] * (count - 1)


#: Share of carts that end in a purchase.
_CHECKOUT_RATE = 0.65


def session_moment(user: User, day: int, config: PopulationConfig) -> datetime:
    """When ``user``'s sessions of ``day`` cluster: the active hour (China time) that day."""
    return config.start + timedelta(days=day, hours=user.active_hour - 8)


def _user_lines(
    user: User, config: PopulationConfig, rng: random.Random
) -> Iterator[dict[str, Any]]:
    who = identity_of(user, config)
    # 1. Consent decisions over the period.
    yield from _consent_lines(user, who, config, rng)
    # 2. Behaviour and messages, day by day (weekly rhythm, churn decay).
    seq = 0
    for day in range(config.days):
        for _ in range(_poisson(rng, session_rate(user, day, config))):
            channel = rng.choices(CHANNELS, weights=user.channel_weights)[0]
            hour = (user.active_hour + rng.randint(-2, 2)) % 24
            moment = config.start + timedelta(days=day, hours=hour - 8, minutes=rng.randint(0, 59))
            category = rng.choices(CATEGORIES, weights=user.category_weights)[0]
            count = who.device_count(channel)
            device = rng.choices(range(count), weights=device_weights(count))[0]
            for line in _session(user, who, (channel, device), moment, category, rng, seq, config):
                seq += 1
                yield line


def user_lines(
    user: User, config: PopulationConfig, *, labels: bool = False
) -> Iterator[dict[str, Any]]:
    """Yield every input line of one user (consents first, then sessions in time order).

    The lines depend only on ``config`` and the user, so a user's lines can be produced (and
    partitioned, e.g. one user per edge) without generating the rest of the population.

    Parameters
    ----------
    user : User
        A user from :func:`make_users` with the same ``config``.
    config : PopulationConfig
        The population's configuration.
    labels : bool
        Keep the ``truth`` key (intent, emotion, urgency, tone of every message) on message
        lines. It is not part of the edge input schema: drop it before handing a line to an
        edge. (Agent-assigned ``labels``, on a share of messages per channel, are part of
        the input and always kept.)

    Yields
    ------
    dict
        Lines in the edge input schema (``client/schemas.py``).
    """
    rng = random.Random(config.seed * 1_000_003 + user.index)
    for line in _user_lines(user, config, rng):
        if not labels:
            line.pop(TRUTH_KEY, None)
        yield line


def _poisson(rng: random.Random, lam: float) -> int:
    threshold, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= threshold:
            return k
        k += 1


def account_profile(
    user: User, config: PopulationConfig, *, channel: str, device: int
) -> dict[str, str]:
    """Return the name and birth date an account or an agent holds (quasi-identifiers).

    Real-name verified accounts (实名认证) and service agents know the customer's name and
    birth date (from the resident ID); each system writes the date its own way and some
    leave it out. Drawn from a generator of its own (per user, channel and device), so the
    rest of the population does not change.
    """
    rng = random.Random(f"profile:{config.seed}:{user.index}:{channel}:{device}")
    born = user.id_number[6:14]
    year, month, day = born[:4], born[4:6], born[6:]
    spellings = (
        f"{year}-{month}-{day}",
        born,
        f"{year}/{int(month)}/{int(day)}",
        f"{year}年{int(month)}月{int(day)}日",
    )
    profile = {"name": user.name}
    if rng.random() >= 0.1:
        profile["birth_date"] = rng.choice(spellings)
    return profile


def _session(
    user: User,
    who: UserIdentity,
    where: tuple[str, int],
    moment: datetime,
    category: str,
    rng: random.Random,
    seq: int,
    config: PopulationConfig,
) -> Iterator[dict[str, Any]]:
    channel, device = where
    browse, _, service = _CHANNEL_AFFINITY[channel]
    session = f"{channel}-s-{user.index}-{seq}"
    customer = who.customer(channel, device)
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
            "customer": dict(customer),
            "session_id": session,
        }
        line.update(extra)
        return line

    if rng.random() < 0.3 * browse + 0.1:
        login = event("login")
        if "phone" not in customer and rng.random() < LINK_RATE:
            login["customer"] = who.customer(channel, device, link=True)
        login["customer"].update(account_profile(user, config, channel=channel, device=device))
        yield login
    for _ in range(int(rng.random() < browse) + _poisson(rng, 2.5 * browse)):
        yield event("page_view", category=category)
    if rng.random() < 0.5 * browse:
        yield event("search", category=category)
    buy_p = _buy_propensity(user, channel)
    if rng.random() < buy_p * 1.6:
        yield event("add_to_cart", category=category)
        if rng.random() < _CHECKOUT_RATE:
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
        contact = event("complaint" if complain else "cs_message", category=category)
        if channel == Channel.DESK.value:  # the agent verifies who is calling
            contact["customer"].update(account_profile(user, config, channel=channel, device=0))
        yield contact
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
        message_id = f"{channel}-m-{user.index}-{seq}"
        line: dict[str, Any] = {
            "kind": "message",
            "message_id": message_id,
            "channel": channel,
            "ts": _iso(t, rng),
            "customer": dict(customer),
            "text": text,
            "lang": lang,
        }
        if _agent_labelled(message_id, channel):
            line["labels"] = {
                "intent": template.intent.value,
                "emotion": template.emotion.value,
                "urgency": template.urgency.value,
            }
        line[TRUTH_KEY] = {
            "intent": template.intent.value,
            "emotion": template.emotion.value,
            "urgency": template.urgency.value,
            "tone": template.tone,
        }
        yield line


def _agent_labelled(message_id: str, channel: str) -> bool:
    """Whether an agent labelled this message (its ticket disposition), by channel share.

    Drawn from the message id, not the population's generator, so adding dispositions left
    every other seeded choice unchanged.
    """
    share = AGENT_LABEL_SHARE.get(channel, 0.0)
    return share > 0.0 and random.Random(f"disposition|{message_id}").random() < share


def _line_order(line: dict[str, Any]) -> tuple[float, str]:
    # Epoch seconds: comparing aware datetimes of different zones is slow in big sorts.
    moment = datetime.fromisoformat(line["ts"].replace("Z", "+00:00")).timestamp()
    return moment, str(line.get("event_id") or line.get("message_id") or line.get("consent_id"))


def notices(config: PopulationConfig) -> list[dict[str, Any]]:
    """Return the notice versions the population's consents refer to (``notices.json``).

    Each is a ``consent.NoticeDraft`` plus ``published_at``: the original notice (published
    30 days before the period) and, with ``notice_renewal_at``, the material renewal of
    ``RENEWED_PURPOSES``.
    """
    drafts = [(NOTICE_VERSION, PURPOSES, False, config.start - timedelta(days=30))]
    if config.renewal is not None:
        drafts.append((RENEWED_NOTICE_VERSION, RENEWED_PURPOSES, True, config.renewal))
    return [
        {
            "version": version,
            "purposes": sorted(purposes),
            "material": material,
            "content_hash": hashlib.sha256(f"synthetic notice {version}".encode()).hexdigest(),
            "url": f"https://example.com/privacy/{version}",
            "language": "zh-CN",
            "published_at": published.isoformat(),
        }
        for version, purposes, material, published in drafts
    ]


@dataclass(frozen=True)
class PopulationSummary:
    """Counts of what was generated."""

    users: int
    lines_per_channel: dict[str, int]
    events: int
    messages: int
    consents: int
    cross_device_users: int = 0


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_population(config: PopulationConfig, out_dir: Path) -> PopulationSummary:
    """Generate a population: ``<channel>.jsonl``, ``notices.json`` and the ground truth.

    Parameters
    ----------
    config : PopulationConfig
        Size, period and seed.
    out_dir : Path
        Directory to write ``<channel>.jsonl``, ``notices.json``, ``users.jsonl`` and
        ``labels/{identities,messages}.jsonl`` into.

    Returns
    -------
    PopulationSummary
        What was written.
    """
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    users = make_users(config)
    per_channel: dict[str, list[dict[str, Any]]] = {c: [] for c in CHANNELS}
    identities: list[dict[str, Any]] = []
    message_labels: list[dict[str, Any]] = []
    counts = {"event": 0, "message": 0, "consent": 0}
    for user in users:
        identities.append(identity_of(user, config).record())
        for line in user_lines(user, config, labels=True):
            labels = line.pop(TRUTH_KEY, None)
            if labels is not None:
                message_labels.append(
                    {"message_id": line["message_id"], "user": user.index, "lang": line["lang"]}
                    | labels
                )
            per_channel[line["channel"]].append(line)
            counts[line["kind"]] += 1
    for channel, lines in per_channel.items():
        lines.sort(key=_line_order)
        _write_jsonl(out_dir / f"{channel}.jsonl", lines)
    (out_dir / "notices.json").write_text(json.dumps(notices(config), indent=2) + "\n")
    _write_jsonl(out_dir / "users.jsonl", [asdict(u) for u in users])
    _write_jsonl(out_dir / "labels" / "identities.jsonl", identities)
    _write_jsonl(out_dir / "labels" / "messages.jsonl", message_labels)
    return PopulationSummary(
        users=len(users),
        lines_per_channel={c: len(v) for c, v in per_channel.items()},
        events=counts["event"],
        messages=counts["message"],
        consents=counts["consent"],
        cross_device_users=sum(1 for i in identities if i["cross_device"]),
    )
