from __future__ import annotations

import math

import dp_accounting
import pytest
from dp_accounting.pld.pld_privacy_accountant import PLDAccountant
from opacus.accountants import PRVAccountant, RDPAccountant

from privacy import compute_epsilon
from privacy.accounting import _prv_or_rdp, merge_history

DELTA = 1e-5

HISTORIES = {
    "one-round": [(1.0, 1 / 7, 7)],
    "three-rounds-same": [(1.0, 1 / 7, 7)] * 3,
    "heterogeneous": [(1.1, 0.01, 1000), (0.8, 0.05, 200), (1.5, 0.2, 30)],
    "heterogeneous-repeats": [(1.0, 0.25, 4), (1.2, 0.1, 10), (1.0, 0.25, 4)],
}


def _opacus(accountant_cls: type, history: list[tuple[float, float, int]]) -> float:
    accountant = accountant_cls()
    accountant.history = list(history)
    return float(accountant.get_epsilon(delta=DELTA))


def _dp_accounting_pld(history: list[tuple[float, float, int]]) -> float:
    accountant = PLDAccountant(dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE)  # 1e-4 grid
    for sigma, q, steps in history:
        accountant.compose(
            dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
        )
    return float(accountant.get_epsilon(DELTA))


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_compute_epsilon_rdp_equals_opacus_exactly(name: str) -> None:
    history = HISTORIES[name]

    assert compute_epsilon(history, delta=DELTA, accountant="rdp") == _opacus(
        RDPAccountant, history
    )


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_compute_epsilon_prv_matches_opacus_prv(name: str) -> None:
    history = HISTORIES[name]

    ours = compute_epsilon(history, delta=DELTA, accountant="prv")

    assert ours == pytest.approx(_opacus(PRVAccountant, history), abs=0.02)


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_compute_epsilon_pld_within_002_of_dp_accounting(name: str) -> None:
    history = HISTORIES[name]

    ours = compute_epsilon(history, delta=DELTA, accountant="pld")

    assert abs(ours - _dp_accounting_pld(history)) <= 0.02


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_compute_epsilon_rdp_is_the_loosest(name: str) -> None:
    history = HISTORIES[name]
    eps = {a: compute_epsilon(history, delta=DELTA, accountant=a) for a in ("prv", "rdp", "pld")}

    assert eps["rdp"] >= eps["prv"] >= eps["pld"] - 0.02


@pytest.mark.parametrize(
    ("sigma", "epochs", "expected"),
    [(1.3, 15, 0.87), (0.7, 45, 5.65)],  # TF-Privacy MNIST runs, q = 256/60000 (dp.md §2.1)
)
def test_compute_epsilon_prv_reference_vectors(sigma: float, epochs: int, expected: float) -> None:
    q = 256 / 60000

    eps = compute_epsilon([(sigma, q, int(epochs / q))], delta=DELTA, accountant="prv")

    assert eps == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("accountant", ["prv", "rdp", "pld"])
def test_compute_epsilon_empty_or_zero_steps_is_zero(accountant: str) -> None:
    assert compute_epsilon([], delta=DELTA, accountant=accountant) == 0.0  # type: ignore[arg-type]
    assert compute_epsilon([(1.0, 0.1, 0)], delta=DELTA, accountant=accountant) == 0.0  # type: ignore[arg-type]


@pytest.mark.parametrize("accountant", ["prv", "rdp", "pld"])
def test_compute_epsilon_zero_noise_is_infinite(accountant: str) -> None:
    history = [(1.0, 0.1, 10), (0.0, 0.1, 1)]

    assert math.isinf(compute_epsilon(history, delta=DELTA, accountant=accountant))  # type: ignore[arg-type]


def test_compute_epsilon_more_steps_more_epsilon() -> None:
    one = compute_epsilon([(1.0, 0.25, 4)], delta=DELTA, accountant="prv")
    two = compute_epsilon([(1.0, 0.25, 4)] * 2, delta=DELTA, accountant="prv")

    assert two > one > 0


@pytest.mark.parametrize(
    ("history", "delta", "accountant", "message"),
    [
        ([(1.0, 0.1, 1)], 0.0, "prv", "delta"),
        ([(1.0, 0.1, 1)], 1.0, "prv", "delta"),
        ([(1.0, 0.1, 1)], DELTA, "gdp", "unknown accountant"),
        ([(-1.0, 0.1, 1)], DELTA, "rdp", "noise multiplier"),
        ([(math.nan, 0.1, 1)], DELTA, "rdp", "noise multiplier"),
        ([(1.0, 0.0, 1)], DELTA, "rdp", "sample rate"),
        ([(1.0, 1.5, 1)], DELTA, "rdp", "sample rate"),
        ([(1.0, 0.1, -1)], DELTA, "rdp", "steps"),
        ([(1.0, 0.1, 1.5)], DELTA, "rdp", "steps"),
    ],
)
def test_compute_epsilon_invalid_input_raises(
    history: list[tuple[float, float, float]], delta: float, accountant: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compute_epsilon(history, delta=delta, accountant=accountant)  # type: ignore[arg-type]


def test_merge_history_adds_steps_of_equal_entries_and_drops_empty() -> None:
    merged = merge_history([(1.0, 0.1, 3), (2.0, 0.1, 0), (1.0, 0.1, 4), (1.0, 0.2, 1)])

    assert merged == [(1.0, 0.1, 7), (1.0, 0.2, 1)]


def test_prv_or_rdp_falls_back_to_rdp_when_prv_fails() -> None:
    history = [(1.0, 0.25, 4)]

    eps = _prv_or_rdp(history, history, DELTA, prv=lambda _h, _d: math.inf)

    assert eps == _opacus(RDPAccountant, history)


@pytest.mark.filterwarnings("ignore:Optimal order is the")
def test_prv_or_rdp_huge_epsilon_skips_prv() -> None:
    history = [(0.3, 0.5, 1000)]  # RDP ε ≈ 3000: PRV would take about a minute

    def boom(_h: object, _d: float) -> float:
        raise AssertionError("PRV must not run beyond its range")

    assert _prv_or_rdp(history, history, DELTA, prv=boom) > 1000
