"""Bounds every wire record and route shares: 64-bit integers, representable times, finite floats.

Values that are valid JSON but that the database or Python's datetime arithmetic cannot hold
(``9223372036854775808`` as a cursor, ``0001-01-01T00:00:00+14:00``, ``9999-12-31T23:59:59-12:00``,
``1e400``) used to surface as 5xx. Validating them here, at the boundary, turns them into a
422 that names the rule (never the value). The time window is wide for customer-service data
and keeps every value convertible to UTC and storable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field

#: Largest integer a 64-bit database column holds (cursors, sequence numbers, sizes).
INT64_MAX = 2**63 - 1
#: Earliest and (exclusive) latest time a record may carry, in UTC.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)
#: The message of an out-of-range time (no value in it).
TIME_RANGE_MESSAGE = "time out of range: use a time from 1970-01-01 to 2199-12-31 (UTC)"


def bounded_time(value: datetime) -> datetime:
    """Return ``value`` if it lies within ``[EARLIEST_TIME, LATEST_TIME)`` once in UTC.

    Parameters
    ----------
    value : datetime
        A timezone-aware time.

    Returns
    -------
    datetime
        The same value, unchanged.

    Raises
    ------
    ValueError
        If converting it to UTC overflows or it falls outside the window.
    """
    try:
        utc = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(TIME_RANGE_MESSAGE) from None
    if not EARLIEST_TIME <= utc < LATEST_TIME:
        raise ValueError(TIME_RANGE_MESSAGE)
    return value


#: A timezone-aware time within the window (use for every wire and query time).
BoundedTime = Annotated[AwareDatetime, AfterValidator(bounded_time)]
#: A float that is neither infinite nor NaN (``1e400`` in JSON parses as infinity).
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
