"""The training schedule: runs until the budget, the run count or a failure; intervals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from simulations.errors import ScheduleError
from simulations.schedule import RunOutcome, parse_every, run_every


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _runs(*statuses: str, took: float = 100.0, time: FakeTime):  # type: ignore[no-untyped-def]
    def run(number: int) -> RunOutcome:
        time.now += took
        return RunOutcome(run_id=f"r{number}", status=statuses[number], rounds=2,
                          edge_epsilon={"desk": 2.0 * (number + 1)})  # fmt: skip

    return run


def test_the_schedule_stops_on_the_budget_and_waits_out_each_interval() -> None:
    time = FakeTime()
    seen: list[int] = []

    outcomes = run_every(
        _runs("completed", "completed", "budget_exhausted", "completed", time=time),
        every=timedelta(minutes=10),
        sleep=time.sleep,
        clock=time.clock,
        on_outcome=lambda n, _: seen.append(n),
    )

    assert [o.status for o in outcomes] == ["completed", "completed", "budget_exhausted"]
    assert seen == [0, 1, 2]
    assert time.slept == [500.0, 500.0]  # the interval runs from start to start


def test_the_schedule_stops_after_runs_and_a_single_run_without_every() -> None:
    time = FakeTime()
    assert len(run_every(_runs(*["completed"] * 5, time=time), every=timedelta(seconds=60),
                         runs=2, sleep=time.sleep, clock=time.clock)) == 2  # fmt: skip
    assert len(run_every(_runs("completed", time=time), every=None, sleep=time.sleep)) == 1


def test_a_failed_run_stops_the_schedule_with_an_error() -> None:
    time = FakeTime()
    with pytest.raises(ScheduleError, match="run 2 failed"):
        run_every(_runs("completed", "failed", time=time), every=timedelta(seconds=60),
                  sleep=time.sleep, clock=time.clock)  # fmt: skip


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("6h", 21600), ("1d", 86400), (" 1.5 h ", 5400)]
)
def test_intervals_parse_with_units(text: str, seconds: float) -> None:
    assert parse_every(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "6", "6 weeks", "-1h", "1s"])
def test_bad_or_too_short_intervals_are_refused(text: str) -> None:
    with pytest.raises(ScheduleError):
        parse_every(text)
