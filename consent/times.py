"""The time window consent records may carry (the same as ``models.bounds``; a test checks it).

A leaf room cannot import another, so the consent room keeps its own copy of the rule: times
must convert to UTC and lie in [1970-01-01, 2200-01-01). ``0001-01-01T00:00:00+14:00`` or
``9999-12-31T23:59:59-12:00`` as a consent's ``occurred_at`` or ``expires_at`` used to crash
the server and abort the edge's whole ingest; now the event alone is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)
TIME_RANGE_MESSAGE = "time out of range: use a time from 1970-01-01 to 2199-12-31 (UTC)"


def bounded_time(value: datetime) -> datetime:
    """Return ``value`` unchanged if it converts to UTC within the window, else raise.

    Raises
    ------
    ValueError
        With ``TIME_RANGE_MESSAGE`` (no value in it).
    """
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(TIME_RANGE_MESSAGE) from None
    if not EARLIEST_TIME <= utc < LATEST_TIME:
        raise ValueError(TIME_RANGE_MESSAGE)
    return value


#: A timezone-aware time within the window.
ConsentTime = Annotated[AwareDatetime, AfterValidator(bounded_time)]
