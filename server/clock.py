"""The server's clock seam: every time-dependent rule takes ``at`` or a ``Clock``.

Routes get the clock from a dependency (``server.api.deps.get_clock``) that tests override to
move time, e.g. past a consent's expiry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

#: A source of timezone-aware "now".
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Return the current time in UTC (timezone-aware).

    Returns
    -------
    datetime
        ``datetime.now(UTC)``.
    """
    return datetime.now(UTC)
