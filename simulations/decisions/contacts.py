"""Contacts over working days: who writes in, when, on which channel, about what, and the message.

Who contacts and why follows the synthetic generator's own session model
(``simulations.synthetic``): a customer's contacts per day are their sessions per day times
each channel's chance of a service contact (``service affinity × (0.1 + question
tendency)``), and a contact is a complaint with probability ``min(0.9, 3 × complaint
proneness × service affinity)``, otherwise an inquiry, inquiry, purchase or return with equal
odds. So customers with many complaints in their history complain more now, which is what
profile rules can exploit. The message is rendered by ``simulations.messages.render_message``
with the masked placeholders an edge leaves (``simulations.labeled.MASKED_PERSON``); its
template gives the true emotion and urgency.

Arrivals follow an hourly profile over the opening hours (two daytime peaks and the evening
peak of Chinese e-commerce). Each contact also carries its own random draws (for the bot,
the transfer, the resolution and the handle times) so every policy is scored on the same
contacts with the same luck: common random numbers.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models import CATEGORIES

from ..labeled import MASKED_PERSON
from ..messages import Intent, Lang, render_message
from ..synthetic import _CHANNEL_AFFINITY, CHANNELS, PopulationConfig, session_rate
from .population import HISTORY_DAYS, Customer

#: Uniform draws per contact: bot, first agent's transfer, first and second resolution.
UNIFORM_DRAWS = 4
#: Standard-normal draws per contact: the first and second handle times.
NORMAL_DRAWS = 2
_OTHER_INTENTS = (Intent.INQUIRY, Intent.INQUIRY, Intent.PURCHASE, Intent.RETURN)


@dataclass(frozen=True)
class ContactParams:
    """How many contacts arrive and when.

    Parameters
    ----------
    contacts_per_day : int
        Mean contacts per working day (Poisson).
    open_hour, close_hour : int
        Opening hours (local time); contacts arrive in between, the desks work until empty.
    hourly_weights : tuple[float, ...]
        Relative arrivals in each hour from ``open_hour``: morning and afternoon peaks and
        the evening peak of Chinese e-commerce.
    english_share : float
        Share of messages written in English (the synthetic population's default).
    """

    contacts_per_day: int = 800
    open_hour: int = 9
    close_hour: int = 21
    hourly_weights: tuple[float, ...] = (
        0.7,
        1.2,
        1.2,
        0.8,
        0.9,
        1.1,
        1.1,
        1.0,
        0.9,
        0.8,
        1.0,
        1.1,
    )
    english_share: float = 0.1

    def __post_init__(self) -> None:
        if self.contacts_per_day < 1:
            raise ValueError("contacts_per_day must be at least 1")
        if not 0 <= self.open_hour < self.close_hour <= 24:
            raise ValueError("opening hours must satisfy 0 <= open_hour < close_hour <= 24")
        if len(self.hourly_weights) != self.close_hour - self.open_hour:
            raise ValueError("hourly_weights needs one weight per opening hour")
        if any(w < 0 for w in self.hourly_weights) or sum(self.hourly_weights) <= 0:
            raise ValueError("hourly_weights must be non-negative with a positive sum")
        if not 0.0 <= self.english_share <= 1.0:
            raise ValueError("english_share must be within [0, 1]")


@dataclass(frozen=True)
class Contact:
    """One contact: what a router may see (channel, message, the profile) and the truth.

    Parameters
    ----------
    contact_id : str
        Stable identifier (set, day and number).
    day : int
        Working day (queues start empty each day).
    arrival_s : float
        Seconds after opening.
    customer : int
        Index of the customer (into the population).
    channel : str
        The channel it arrived on.
    text : str
        The masked message.
    lang : str
        ``zh`` or ``en``.
    intent, emotion, urgency : str
        True labels of the message.
    high_value : bool
        The customer is high-value (truth).
    uniforms : tuple[float, ...]
        The contact's own uniform draws (common random numbers).
    normals : tuple[float, ...]
        The contact's own standard-normal draws (handle times).
    """

    contact_id: str
    day: int
    arrival_s: float
    customer: int
    channel: str
    text: str
    lang: str
    intent: str
    emotion: str
    urgency: str
    high_value: bool
    uniforms: tuple[float, ...]
    normals: tuple[float, ...]

    @property
    def needs_senior(self) -> bool:
        """A high-value customer with a complaint or in a negative mood: needs authority."""
        return self.high_value and (self.intent == "complaint" or self.emotion == "negative")

    @property
    def simple(self) -> bool:
        """A calm, non-urgent inquiry: what self-service answers well."""
        return self.intent == "inquiry" and self.urgency != "urgent" and self.emotion != "negative"


def _channel_contact_chance(question_tendency: float) -> np.ndarray:
    """Chance that a session on each channel holds a service contact (the generator's)."""
    return np.array(
        [min(0.95, _CHANNEL_AFFINITY[c][2] * (0.1 + question_tendency)) for c in CHANNELS]
    )


def contact_rates(customers: Sequence[Customer]) -> np.ndarray:
    """Return each customer's expected service contacts per day at the end of the history."""
    config = PopulationConfig(users=max(len(customers), 1), days=HISTORY_DAYS)
    rates = []
    for customer in customers:
        user = customer.user
        sessions = np.mean(
            [session_rate(user, day, config) for day in range(HISTORY_DAYS - 7, HISTORY_DAYS)]
        )
        weights = np.asarray(user.channel_weights)
        rates.append(float(sessions * weights @ _channel_contact_chance(user.question_tendency)))
    return np.asarray(rates)


def _one_contact(
    customer: Customer, *, contact_id: str, day: int, arrival_s: float, english_share: float
) -> Contact:
    """Draw one contact of ``customer`` (channel, intent, message, its own random draws)."""
    rng = random.Random(f"contact|{contact_id}")
    user = customer.user
    chance = _channel_contact_chance(user.question_tendency)
    channel = rng.choices(CHANNELS, weights=list(np.asarray(user.channel_weights) * chance))[0]
    service = _CHANNEL_AFFINITY[channel][2]
    complain = rng.random() < min(0.9, user.complaint_proneness * 3.0 * service)
    intent = Intent.COMPLAINT if complain else rng.choice(_OTHER_INTENTS)
    lang: Lang = "en" if rng.random() < english_share else "zh"
    category = rng.choices(CATEGORIES, weights=user.category_weights)[0]
    text, template = render_message(
        rng=rng, lang=lang, intent=intent, category=category, person=dict(MASKED_PERSON)
    )
    return Contact(
        contact_id=contact_id,
        day=day,
        arrival_s=arrival_s,
        customer=customer.index,
        channel=channel,
        text=text,
        lang=lang,
        intent=template.intent.value,
        emotion=template.emotion.value,
        urgency=template.urgency.value,
        high_value=customer.high_value,
        uniforms=tuple(rng.random() for _ in range(UNIFORM_DRAWS)),
        normals=tuple(rng.gauss(0.0, 1.0) for _ in range(NORMAL_DRAWS)),
    )


def draw_contacts(
    customers: Sequence[Customer],
    params: ContactParams,
    *,
    days: int,
    seed: int,
    label: str,
) -> list[Contact]:
    """Draw the contacts of ``days`` working days, in arrival order.

    Parameters
    ----------
    customers : Sequence[Customer]
        The population (``customer`` indexes into it).
    params : ContactParams
        Volume, opening hours and arrival profile.
    days : int
        Working days.
    seed : int
        Seed; ``label`` separates sets of one seed (calibration, evaluation).
    label : str
        Name of the set (part of every contact id).

    Returns
    -------
    list[Contact]
        Sorted by day and arrival time.

    Raises
    ------
    ValueError
        If ``days`` is below 1 or there are no customers.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if not customers:
        raise ValueError("there must be at least one customer")
    rng = np.random.default_rng([seed, zlib.crc32(label.encode())])
    rates = contact_rates(customers)
    who_p = rates / rates.sum()
    hours = np.asarray(params.hourly_weights, dtype=float)
    hour_p = hours / hours.sum()
    contacts: list[Contact] = []
    for day in range(days):
        n = int(rng.poisson(params.contacts_per_day))
        hour = rng.choice(len(hour_p), size=n, p=hour_p)
        arrivals = np.sort((hour + rng.random(n)) * 3600.0)
        chosen = rng.choice(len(customers), size=n, p=who_p)
        for number, (at, who) in enumerate(zip(arrivals, chosen, strict=True)):
            contacts.append(
                _one_contact(
                    customers[int(who)],
                    contact_id=f"{label}-{seed}-d{day}-{number:05d}",
                    day=day,
                    arrival_s=round(float(at), 3),
                    english_share=params.english_share,
                )
            )
    return contacts
