"""Scheduled training: run federated training again and again until the privacy budget stops it.

Continuous learning (issue 14) means training again as new messages and events arrive. Each
run is an ordinary federated run (the same ServerApp and ClientApp): it warm-starts from the
newest compatible model version in the server's registry, every edge composes the run's
releases into its persisted ledger, and an edge refuses a round that would take its ledger
over ``max-epsilon``. When refusals leave a round short of trained edges, the run ends
``budget_exhausted`` and :func:`run_every` stops the schedule: the budget holds across runs,
not only within one.

:func:`run_every` is the loop (``fedprofile train --every``); :func:`latest_outcome` reads how
a run ended from the server database the ServerApp recorded it in. A deployment without the
loop runs one ``fedprofile train`` (or ``flwr run``) from a systemd timer
(``docs/deployment.md``): the ledgers and the registry make each run continue the last.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from .errors import ScheduleError

logger = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}
#: Shortest interval ``--every`` accepts (a run takes minutes; tighter loops are a mistake).
MIN_EVERY = timedelta(seconds=10)


def parse_every(text: str) -> timedelta:
    """Parse an interval such as ``30m``, ``6h`` or ``1d`` (seconds, minutes, hours, days).

    Raises
    ------
    ScheduleError
        If the text is not a number with one of the units ``s``, ``m``, ``h``, ``d``, or
        the interval is shorter than ``MIN_EVERY``.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ScheduleError("interval must be a number with a unit s, m, h or d, e.g. 6h or 1d")
    every = timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if every < MIN_EVERY:
        raise ScheduleError(f"interval must be at least {MIN_EVERY.total_seconds():g} s")
    return every


@dataclass(frozen=True)
class RunOutcome:
    """How one scheduled run ended (read back from the server database).

    Parameters
    ----------
    run_id : str or None
        The server's training-run id (``None`` if the run was not recorded).
    status : str
        ``completed``, ``budget_exhausted`` or ``failed``.
    rounds : int
        Aggregated train rounds.
    edge_epsilon : dict[str, float]
        Each edge's cumulative ε (its ledger, across runs) as last reported in the run.
    """

    run_id: str | None
    status: str
    rounds: int
    edge_epsilon: dict[str, float] = field(default_factory=dict)


def run_every(
    run_once: Callable[[int], RunOutcome],
    *,
    every: timedelta | None,
    runs: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_outcome: Callable[[int, RunOutcome], None] | None = None,
) -> list[RunOutcome]:
    """Run ``run_once`` now and then every ``every`` until the budget, ``runs`` or a failure.

    Parameters
    ----------
    run_once : Callable[[int], RunOutcome]
        Runs one federated training run (argument: its 0-based number) and says how it ended.
    every : timedelta or None
        Time from one run's start to the next's; ``None`` runs once.
    runs : int or None
        Most runs (``None``: until the budget stops the schedule).
    sleep, clock : Callable
        Waiting and the monotonic clock (tests pass fakes).
    on_outcome : Callable[[int, RunOutcome], None] or None
        Called after each run (progress output).

    Returns
    -------
    list[RunOutcome]
        Every run's outcome; the last is ``budget_exhausted`` when the budget stopped it.

    Raises
    ------
    ScheduleError
        If a run failed (the schedule does not retry a failing federation blindly).
    ValueError
        If ``runs`` is below 1.
    """
    if runs is not None and runs < 1:
        raise ValueError("runs must be at least 1")
    outcomes: list[RunOutcome] = []
    number = 0
    while True:
        started = clock()
        outcome = run_once(number)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(number, outcome)
        number += 1
        if outcome.status == "failed":
            raise ScheduleError(f"run {number} failed; see the server's training-run record")
        if outcome.status == "budget_exhausted":
            logger.info("privacy budget reached after %d run(s): schedule stopped", number)
            return outcomes
        if every is None or (runs is not None and number >= runs):
            return outcomes
        wait = every.total_seconds() - (clock() - started)
        if wait > 0:
            logger.info("next run in %.0f s", wait)
            sleep(wait)
