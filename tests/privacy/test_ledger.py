from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opacus.accountants import RDPAccountant

from privacy import (
    BudgetExhaustedError,
    LedgerStateError,
    PrivacyLedger,
    Release,
    compute_epsilon,
)

AT = datetime(2026, 11, 1, tzinfo=UTC)
DELTA = 1e-5


def release(
    round_: int = 1,
    *,
    sigma: float = 1.0,
    q: float = 0.25,
    steps: int = 4,
    model: str = "behaviour",
) -> Release:
    return Release(
        model=model,
        run_id="run-1",
        round=round_,
        accountant="rdp",
        noise_multiplier=sigma,
        sample_rate=q,
        steps=steps,
        delta=DELTA,
        recorded_at=AT,
    )


def ledger(budget: float | None = None, accountant: str = "rdp") -> PrivacyLedger:
    return PrivacyLedger(model="behaviour", delta=DELTA, accountant=accountant, budget=budget)  # type: ignore[arg-type]


releases_st = st.lists(
    st.builds(
        release,
        round_=st.integers(0, 50),
        sigma=st.floats(0.5, 2.0),
        q=st.floats(0.05, 1.0),
        steps=st.integers(0, 50),
    ),
    max_size=5,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(releases=releases_st)
def test_ledger_epsilon_never_decreases_as_releases_are_added(releases: list[Release]) -> None:
    book = ledger()
    previous = book.epsilon()

    for item in releases:
        after = book.charge(item)
        assert after >= previous
        assert book.epsilon() == after
        previous = after


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    releases=st.lists(
        st.builds(release, steps=st.integers(0, 8), q=st.floats(0.1, 1.0)), max_size=3
    )
)
def test_ledger_prv_epsilon_never_decreases(releases: list[Release]) -> None:
    book = ledger(accountant="prv")
    previous = 0.0

    for item in releases:
        after = book.charge(item)
        assert after >= previous
        previous = after


entries_st = st.lists(
    st.fixed_dictionaries(
        {
            "release": releases_st.map(
                lambda r: r[0].model_dump(mode="json") if r else None
            ).filter(lambda r: r is not None),
            "epsilon_after": st.floats(0.0, 1e3),
        }
    ),
    max_size=5,
)


@settings(max_examples=60, deadline=None)
@given(
    entries=entries_st,
    budget=st.one_of(st.none(), st.floats(0.1, 1e6)),
    accountant=st.sampled_from(["prv", "rdp", "pld"]),
    exhausted=st.booleans(),
)
def test_ledger_load_state_dict_of_state_dict_is_identity(
    entries: list[dict[str, Any]], budget: float | None, accountant: str, exhausted: bool
) -> None:
    state = {
        "mechanism": "fedprofile.privacy_ledger",
        "version": 1,
        "model": "behaviour",
        "delta": DELTA,
        "accountant": accountant,
        "budget": budget,
        "exhausted": exhausted,
        "entries": entries,
    }
    book = ledger()
    book.load_state_dict(state)
    persisted = json.loads(json.dumps(book.state_dict()))  # as the edge store keeps it

    copy = ledger(budget=3.0, accountant="pld")
    copy.load_state_dict(persisted)

    assert copy.state_dict() == book.state_dict() == state
    assert copy.releases == book.releases
    assert copy.exhausted is exhausted


def test_ledger_state_after_charges_roundtrips() -> None:
    book = ledger(budget=100.0)
    book.charge(release(1))
    book.charge(release(2, sigma=1.3, q=0.5))

    copy = ledger()
    copy.load_state_dict(json.loads(json.dumps(book.state_dict())))

    assert copy.state_dict() == book.state_dict()
    assert copy.epsilon() == book.epsilon()


def test_ledger_two_rounds_epsilon_larger_and_equal_to_opacus_accountant() -> None:
    book = ledger()
    first = book.charge(release(1))
    second = book.charge(release(2))
    opacus = RDPAccountant()
    opacus.history = [(1.0, 0.25, 4), (1.0, 0.25, 4)]

    assert second > first > 0
    assert second == opacus.get_epsilon(delta=DELTA)
    assert book.history == [(1.0, 0.25, 4), (1.0, 0.25, 4)]


def test_ledger_epsilon_other_accountant_on_same_history() -> None:
    book = ledger()
    book.charge(release(1))

    assert book.epsilon(accountant="pld") == compute_epsilon(
        book.history, delta=DELTA, accountant="pld"
    )
    assert book.epsilon(accountant="pld") < book.epsilon()


def test_ledger_budget_refuses_before_recording_and_never_exceeds() -> None:
    one_round = compute_epsilon([(1.0, 0.25, 4)], delta=DELTA, accountant="rdp")
    two_rounds = compute_epsilon([(1.0, 0.25, 4)] * 2, delta=DELTA, accountant="rdp")
    book = ledger(budget=(one_round + two_rounds) / 2)  # room for one round, not two
    book.charge(release(1))

    with pytest.raises(BudgetExhaustedError) as info:
        book.charge(release(2))

    assert len(book.releases) == 1
    assert book.exhausted
    assert book.epsilon() <= book.budget  # type: ignore[operator]
    assert info.value.budget == book.budget and info.value.would_be > info.value.budget
    assert "budget" in str(info.value)


def test_ledger_would_exceed_has_no_side_effects() -> None:
    book = ledger(budget=0.001)

    assert book.would_exceed(release(1))
    assert not book.exhausted and book.releases == ()
    assert not ledger().would_exceed(release(1))  # no budget, never exceeded


def test_ledger_zero_noise_release_is_infinite_and_refused_under_budget() -> None:
    unbounded = ledger()
    unbounded.charge(release(1, sigma=0.0))
    bounded = ledger(budget=100.0)

    assert math.isinf(unbounded.epsilon())
    with pytest.raises(BudgetExhaustedError):
        bounded.charge(release(1, sigma=0.0))


def test_ledger_release_of_other_model_raises() -> None:
    with pytest.raises(ValueError, match="model"):
        ledger().charge(release(model="text"))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.update(mechanism="opacus.rdp"), "mechanism"),
        (lambda s: s.update(version=99), "version"),
        (lambda s: s.update(model="text"), "model"),
        (lambda s: s.pop("entries"), "malformed"),
        (lambda s: s["entries"][0]["release"].update(steps=-1), "malformed"),
        (lambda s: s.update(delta=2.0), "malformed"),
    ],
)
def test_ledger_load_state_dict_foreign_or_broken_state_raises(mutate: Any, message: str) -> None:
    book = ledger()
    book.charge(release(1))
    state = book.state_dict()
    mutate(state)
    target = ledger()

    with pytest.raises(LedgerStateError, match=message):
        target.load_state_dict(state)

    assert target.releases == ()


def test_ledger_load_keep_config_applies_new_budget_and_rederives_exhausted() -> None:
    old = ledger(budget=0.5)
    with pytest.raises(BudgetExhaustedError):
        old.charge(release(1))
    old_state = old.state_dict()

    same_budget = ledger(budget=0.5)
    same_budget.load_state_dict(old_state, keep_config=True)
    raised = ledger(budget=50.0)
    raised.load_state_dict(old_state, keep_config=True)

    assert same_budget.exhausted
    assert not raised.exhausted and raised.budget == 50.0


@pytest.mark.parametrize(
    "kwargs",
    [{"delta": 0.0}, {"delta": 1.0}, {"accountant": "gdp"}, {"budget": 0.0}, {"budget": math.inf}],
)
def test_ledger_invalid_configuration_raises(kwargs: dict[str, Any]) -> None:
    params: dict[str, Any] = {"model": "behaviour", "delta": DELTA} | kwargs

    with pytest.raises(ValueError):
        PrivacyLedger(**params)


@pytest.mark.parametrize(
    "update",
    [
        {"neighbouring": "replace_one"},
        {"sampling": "shuffle"},
        {"level": "tenant"},
        {"sample_rate": 0.0},
        {"recorded_at": datetime(2026, 1, 1)},
    ],
)
def test_release_unsupported_assumptions_refused(update: dict[str, Any]) -> None:
    fields = release().model_dump() | update

    with pytest.raises(ValueError):
        Release(**fields)
