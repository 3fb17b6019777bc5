"""Cross-device identities of synthetic users: which identifier each channel knows a user by.

Most users give every channel their mobile number, so every edge maps them to the same
pseudonym. A share of users (``cross_device_share``) log in on some channels with an
account id or an e-mail address instead (a device or app login, a social-platform open id):
the same person then has several pseudonyms across edges, as in real customer-service data.
The desk and SMS channels always know the phone number (agents verify it; SMS is sent to it).

The ground truth (user index -> the identifiers used per channel) is written next to the
population as ``labels/identities.jsonl`` for identity-linkage work; it never goes to an
edge or to the server.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

from models import Channel

logger = logging.getLogger(__name__)

#: Channels that may know a user by something other than the phone number.
LOGIN_CHANNELS: tuple[str, ...] = (Channel.WEB.value, Channel.APP.value, Channel.SOCIAL.value)
#: Channels that always know the phone number.
PHONE_CHANNELS: tuple[str, ...] = (Channel.DESK.value, Channel.SMS.value)
#: Chance that a cross-device user uses a login identifier on each login channel.
_LOGIN_RATE = 0.7
#: Chance that a cross-device user's web login is the e-mail address (else an account id).
_WEB_EMAIL_RATE = 0.6
_HEX = "0123456789abcdef"
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True, slots=True)
class UserIdentity:
    """The identifiers one synthetic user is known by on each channel (raw, synthetic PII).

    Parameters
    ----------
    user : int
        Index of the user in the population.
    per_channel : dict[str, dict[str, str]]
        Channel -> the ``customer`` object of that channel's input lines
        (``client.schemas.CustomerRef`` fields).
    cross_device : bool
        Whether some channel knows the user by something other than the phone number.
    """

    user: int
    per_channel: dict[str, dict[str, str]]
    cross_device: bool

    def customer(self, channel: str) -> dict[str, str]:
        """Return the ``customer`` object of ``channel`` (a fresh copy)."""
        return dict(self.per_channel[channel])

    def record(self) -> dict[str, Any]:
        """Return the ground-truth linkage record (one line of ``labels/identities.jsonl``)."""
        return {
            "user": self.user,
            "cross_device": self.cross_device,
            "channels": {c: dict(ref) for c, ref in self.per_channel.items()},
        }


def _token(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _phone_ref(phone: str, *, channel: str, styled: bool) -> dict[str, str]:
    """Return the phone number as the channel system sends it (web / social may format it)."""
    if styled and channel in (Channel.WEB.value, Channel.SOCIAL.value):
        return {"phone": f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}"}
    return {"phone": phone}


def _login_ref(*, channel: str, email: str, rng: random.Random) -> dict[str, str]:
    """Return a login identifier for ``channel``: e-mail or account id (never the phone)."""
    if channel == Channel.WEB.value:
        if rng.random() < _WEB_EMAIL_RATE:
            return {"email": email}
        return {"account_id": "web_" + _token(rng, _HEX, 12)}
    if channel == Channel.APP.value:
        return {"account_id": "app:" + _token(rng, _HEX, 16)}
    return {"account_id": "wx_o" + _token(rng, _ALNUM, 24)}


def assign_identity(
    *, user: int, phone: str, email: str, seed: int, cross_device_share: float
) -> UserIdentity:
    """Decide which identifier each channel knows ``user`` by.

    Parameters
    ----------
    user : int
        Index of the user in the population.
    phone : str
        The user's mobile number (11 digits).
    email : str
        The user's e-mail address.
    seed : int
        Population seed; with ``user`` it fixes the outcome.
    cross_device_share : float
        Probability in [0, 1] that the user logs in with an account id or e-mail on at
        least one of the web, app and social channels.

    Returns
    -------
    UserIdentity
        The per-channel ``customer`` objects.

    Raises
    ------
    ValueError
        If ``cross_device_share`` is outside [0, 1].
    """
    if not 0.0 <= cross_device_share <= 1.0:
        raise ValueError("cross_device_share must be within [0, 1]")
    rng = random.Random(f"identity:{seed}:{user}")
    styled = user % 7 == 0  # some channel systems send "+86 138-...."
    per_channel = {c.value: _phone_ref(phone, channel=c.value, styled=styled) for c in Channel}
    cross = rng.random() < cross_device_share
    if cross:
        logins = [c for c in LOGIN_CHANNELS if rng.random() < _LOGIN_RATE]
        if not logins:
            logins = [rng.choice(LOGIN_CHANNELS)]
        for channel in logins:
            per_channel[channel] = _login_ref(channel=channel, email=email, rng=rng)
    return UserIdentity(user=user, per_channel=per_channel, cross_device=cross)
