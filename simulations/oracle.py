"""The oracle of a synthetic population: purchase probabilities from the known latent rates.

The generator (``simulations.synthetic``) draws each user's sessions per day from a Poisson
distribution with mean ``session_rate``, sends each to a channel and device with known
probabilities, and makes it a purchase with probability ``purchase_chance``. So the number
of purchase sessions a user makes on one channel and device in a window is Poisson with a
known mean, and the Bayes-optimal score of "purchases in the window" for the subject an edge
sees is ``1 - exp(-mean)``, summed over the (channel, device) pairs that map to the same
pseudonym. Its AUC on the held-out subjects is the best any model can reach on those labels:
every result on synthetic data is printed beside it.

Approximations (so the oracle AUC is a close lower bound of the Bayes AUC, not exact): a
day's sessions are placed at the user's active hour (they spread over ±2 hours), and
linking logins that add the phone number to a device's line are ignored (they carry no
purchases).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from datetime import datetime

from .identities import UserIdentity
from .synthetic import (
    CHANNELS,
    PopulationConfig,
    User,
    device_weights,
    identity_of,
    purchase_chance,
    session_moment,
    session_rate,
)

logger = logging.getLogger(__name__)

#: Turns a ``customer`` object into the pseudonym an edge gives it (``None``: refused).
PseudonymOf = Callable[[dict[str, str]], str | None]


def expected_purchases(
    user: User,
    config: PopulationConfig,
    *,
    channel: str,
    device: int,
    devices: int,
    start: datetime,
    end: datetime,
) -> float:
    """Return the expected purchase sessions of ``user`` on one device in ``(start, end]``.

    Parameters
    ----------
    user : User
        The user (latent traits).
    config : PopulationConfig
        The population's configuration.
    channel : str
        The channel.
    device, devices : int
        Which of the user's devices on that channel, and how many there are.
    start, end : datetime
        The window (timezone-aware).

    Returns
    -------
    float
        The Poisson mean of purchase sessions in the window.
    """
    channel_share = user.channel_weights[CHANNELS.index(channel)]
    weights = device_weights(devices)
    device_share = weights[device] / sum(weights)
    chance = purchase_chance(user, channel)
    total = 0.0
    for day in range(config.days):
        if start < session_moment(user, day, config) <= end:
            total += session_rate(user, day, config)
    return total * channel_share * device_share * chance


def oracle_probabilities(
    users: Sequence[User],
    config: PopulationConfig,
    *,
    pseudonym_of: PseudonymOf,
    start: datetime,
    end: datetime,
    channels: Sequence[str] = CHANNELS,
) -> dict[str, float]:
    """Return the Bayes-optimal P(purchase in ``(start, end]``) per pseudonym.

    Parameters
    ----------
    users : Sequence[User]
        The population's users (``simulations.synthetic.make_users``).
    config : PopulationConfig
        The population's configuration.
    pseudonym_of : Callable[[dict[str, str]], str or None]
        What an edge makes of a ``customer`` object (the strongest identifier, keyed).
    start, end : datetime
        The label window.
    channels : Sequence[str]
        The channels whose events the edge (or edges) holding these pseudonyms see.

    Returns
    -------
    dict[str, float]
        Pseudonym to probability; pseudonyms of devices on other channels are absent.
    """
    means: dict[str, float] = {}
    for user in users:
        identity: UserIdentity = identity_of(user, config)
        for channel in channels:
            count = identity.device_count(channel)
            for device in range(count):
                subject = pseudonym_of(identity.customer(channel, device))
                if subject is None:
                    continue
                means[subject] = means.get(subject, 0.0) + expected_purchases(
                    user,
                    config,
                    channel=channel,
                    device=device,
                    devices=count,
                    start=start,
                    end=end,
                )
    return {subject: 1.0 - math.exp(-mean) for subject, mean in means.items()}
