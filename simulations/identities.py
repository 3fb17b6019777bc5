"""Cross-device identities of synthetic users: which devices and accounts each channel knows.

One person uses several devices and accounts. Most users give every channel their mobile
number, so every edge maps all their lines to one pseudonym. A share of users
(``cross_device_share``) are *cross-device*: on the web, app and social channels they use
one to three devices or accounts, each known only by its own login identifier (an app
install id, a web account id or the e-mail address, a social-platform open id), so one
person has several pseudonyms across and within edges, as in real customer-service data.

Those pseudonyms are linked **only through identifiers an edge can normalise**: a share of
logins (``link_rate``) carry the phone number next to the login identifier (an SMS-code
login or a delivery-phone check), and web accounts that log in with the e-mail address share
it across devices. The desk and SMS channels always know the phone number (agents verify
it; SMS is sent to it). Nothing else ties two accounts together, so identity linkage has to
work from what the edges see.

The ground truth (user index -> every identifier per channel) is written next to the
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
#: Chance that a cross-device user uses login identifiers on each login channel.
_LOGIN_RATE = 0.7
#: Chance that a cross-device web device logs in with the e-mail address (else an account id).
_WEB_EMAIL_RATE = 0.5
#: Devices / accounts per login channel of a cross-device user, with their weights.
_DEVICE_COUNTS: tuple[tuple[int, float], ...] = ((1, 0.45), (2, 0.4), (3, 0.15))
_HEX = "0123456789abcdef"
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@dataclass(frozen=True, slots=True)
class UserIdentity:
    """The devices and accounts one synthetic user is known by (raw, synthetic PII).

    Parameters
    ----------
    user : int
        Index of the user in the population.
    devices : dict[str, tuple[dict[str, str], ...]]
        Channel -> one ``customer`` object per device or account the user has there
        (``client.schemas.CustomerRef`` fields); the first is the most used.
    phone : str
        The user's mobile number, added to linking logins.
    cross_device : bool
        Whether some channel knows the user by something other than the phone number.
    """

    user: int
    devices: dict[str, tuple[dict[str, str], ...]]
    phone: str
    cross_device: bool

    def device_count(self, channel: str) -> int:
        """Return how many devices or accounts the user has on ``channel``."""
        return len(self.devices[channel])

    def customer(self, channel: str, device: int = 0, *, link: bool = False) -> dict[str, str]:
        """Return the ``customer`` object of one device on ``channel`` (a fresh copy).

        Parameters
        ----------
        channel : str
            The channel.
        device : int
            Index of the device or account on that channel.
        link : bool
            Add the phone number when the device is known by a login identifier (a
            linking login: the edge can then normalise the phone number).

        Returns
        -------
        dict[str, str]
            The identifiers the line carries.
        """
        ref = dict(self.devices[channel][device])
        if link and "phone" not in ref:
            ref["phone"] = self.phone
        return ref

    def record(self) -> dict[str, Any]:
        """Return the ground-truth linkage record (one line of ``labels/identities.jsonl``)."""
        return {
            "user": self.user,
            "cross_device": self.cross_device,
            "channels": {c: [dict(r) for r in refs] for c, refs in self.devices.items()},
        }


def _token(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def _phone_ref(phone: str, *, channel: str, styled: bool) -> dict[str, str]:
    """Return the phone number as the channel system sends it (web / social may format it)."""
    if styled and channel in (Channel.WEB.value, Channel.SOCIAL.value):
        return {"phone": f"+86 {phone[:3]}-{phone[3:7]}-{phone[7:]}"}
    return {"phone": phone}


def _login_ref(*, channel: str, email: str, rng: random.Random) -> dict[str, str]:
    """Return one device's login identifier on ``channel``: e-mail or account id."""
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
    """Decide which devices and accounts each channel knows ``user`` by.

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
        Probability in [0, 1] that the user logs in with account ids or the e-mail address
        on at least one of the web, app and social channels.

    Returns
    -------
    UserIdentity
        The per-channel devices.

    Raises
    ------
    ValueError
        If ``cross_device_share`` is outside [0, 1].
    """
    if not 0.0 <= cross_device_share <= 1.0:
        raise ValueError("cross_device_share must be within [0, 1]")
    rng = random.Random(f"identity:{seed}:{user}")
    styled = user % 7 == 0  # some channel systems send "+86 138-...."
    devices: dict[str, tuple[dict[str, str], ...]] = {
        c.value: (_phone_ref(phone, channel=c.value, styled=styled),) for c in Channel
    }
    cross = rng.random() < cross_device_share
    if cross:
        logins = [c for c in LOGIN_CHANNELS if rng.random() < _LOGIN_RATE]
        if not logins:
            logins = [rng.choice(LOGIN_CHANNELS)]
        counts, weights = zip(*_DEVICE_COUNTS, strict=True)
        for channel in logins:
            n = rng.choices(counts, weights=weights)[0]
            refs: list[dict[str, str]] = []
            while len(refs) < n:
                ref = _login_ref(channel=channel, email=email, rng=rng)
                if ref not in refs:  # a second e-mail login is the same account
                    refs.append(ref)
                elif channel == Channel.WEB.value:
                    refs.append({"account_id": "web_" + _token(rng, _HEX, 12)})
            devices[channel] = tuple(refs)
    return UserIdentity(user=user, devices=devices, phone=phone, cross_device=cross)
