"""BG/NBD baseline: recovery, calibration, ranking, numerics and input validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy import integrate, special, stats
from sklearn.metrics import roc_auc_score

from simulations.baselines import (
    BGNBDParams,
    expected_purchases,
    fit_bgnbd,
    probability_alive,
    probability_of_purchase,
)
from simulations.baselines import bgnbd as bgnbd_module

TRUE = (0.25, 4.0, 0.8, 2.5)  # r, alpha (weeks), a, b
CALIBRATION_WEEKS = 39.0
HOLDOUT_WEEKS = 39.0


@dataclass(frozen=True)
class Population:
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    holdout: np.ndarray


def simulate_bgnbd(
    rng: np.random.Generator,
    *,
    customers: int,
    params: tuple[float, float, float, float],
    T: float | np.ndarray,
    holdout: float,
) -> Population:
    """Simulate the BG/NBD process up to ``T + holdout`` for each customer.

    lambda ~ Gamma(shape r, rate alpha) and p ~ Beta(a, b). The first purchase is at time 0
    and is not counted; later purchases form a Poisson process with rate lambda, and after
    each of them the customer drops out with probability p (paper assumption iii: no dropout
    at the trial purchase, which is what the likelihood's (1 - p)^x term encodes).
    Purchases up to T make the calibration summary; those in (T, T + holdout] the holdout.
    """
    r, alpha, a, b = params
    rate = rng.gamma(shape=r, scale=1.0 / alpha, size=customers)
    dropout = rng.beta(a, b, size=customers)
    age = np.broadcast_to(np.asarray(T, dtype=float), (customers,)).copy()
    end = age + holdout
    now = np.zeros(customers)
    frequency = np.zeros(customers)
    recency = np.zeros(customers)
    later = np.zeros(customers)
    active = np.arange(customers)
    while active.size:
        with np.errstate(divide="ignore"):
            now[active] += rng.standard_exponential(active.size) / rate[active]
        when = now[active]
        in_calibration = when <= age[active]
        in_holdout = (when > age[active]) & (when <= end[active])
        frequency[active[in_calibration]] += 1
        recency[active[in_calibration]] = when[in_calibration]
        later[active[in_holdout]] += 1
        survives = rng.random(active.size) >= dropout[active]
        active = active[(when <= end[active]) & survives]
    return Population(frequency=frequency, recency=recency, T=age, holdout=later)


@pytest.fixture(scope="module")
def population() -> Population:
    rng = np.random.default_rng(20240601)
    return simulate_bgnbd(
        rng, customers=20_000, params=TRUE, T=CALIBRATION_WEEKS, holdout=HOLDOUT_WEEKS
    )


@pytest.fixture(scope="module")
def fitted(population: Population) -> BGNBDParams:
    return fit_bgnbd(frequency=population.frequency, recency=population.recency, T=population.T)


def history(pop: Population) -> dict[str, np.ndarray]:
    return {"frequency": pop.frequency, "recency": pop.recency, "T": pop.T}


def params_of(values: tuple[float, float, float, float]) -> BGNBDParams:
    r, alpha, a, b = values
    return BGNBDParams(r=r, alpha=alpha, a=a, b=b, log_likelihood=float("nan"), converged=True)


def total_loglik(values: tuple[float, ...], pop: Population) -> float:
    rows = bgnbd_module._make_rows(
        x=pop.frequency, tx=pop.recency, age=pop.T, weight=np.ones(pop.frequency.size)
    )
    loglik, _ = bgnbd_module._log_likelihood_rows(np.array(values), rows)
    return float(loglik.sum())


# ---------------------------------------------------------------- fitting


def test_fit_recovers_the_generating_parameters(fitted: BGNBDParams) -> None:
    # Spread over 20 seeds at 20,000 customers: sd 1.4 % (r), 2.2 % (alpha), 5 % (a), 7.5 % (b).
    assert fitted.converged
    assert fitted.r == pytest.approx(TRUE[0], rel=0.10)
    assert fitted.alpha == pytest.approx(TRUE[1], rel=0.10)
    assert fitted.a == pytest.approx(TRUE[2], rel=0.25)
    assert fitted.b == pytest.approx(TRUE[3], rel=0.25)


def test_fit_is_the_maximum_and_the_truth_is_within_its_likelihood_ratio_region(
    population: Population, fitted: BGNBDParams
) -> None:
    estimate = (fitted.r, fitted.alpha, fitted.a, fitted.b)
    assert fitted.log_likelihood == pytest.approx(total_loglik(estimate, population), rel=1e-12)
    at_truth = total_loglik(TRUE, population)
    assert fitted.log_likelihood >= at_truth
    # 2 * (LL_hat - LL_true) ~ chi2(4); 30 is beyond its 0.99999 quantile.
    assert 2.0 * (fitted.log_likelihood - at_truth) < 30.0
    for scale in (0.9, 1.1):
        for i in range(4):
            nudged = list(estimate)
            nudged[i] *= scale
            assert total_loglik(tuple(nudged), population) < fitted.log_likelihood


def test_analytic_gradient_matches_finite_differences(population: Population) -> None:
    rows = bgnbd_module._make_rows(
        x=population.frequency[:2000],
        tx=population.recency[:2000] / 39.0,
        age=population.T[:2000] / 39.0,
        weight=np.arange(2000) % 3 + 1.0,
    )
    for point in (np.zeros(4), np.log([0.3, 0.1, 0.7, 3.0]), np.log([2.0, 5.0, 0.2, 0.1])):
        value, grad = bgnbd_module._objective(point, rows, 4000.0, 0.05)
        step = 1e-6
        numeric = [
            (
                bgnbd_module._objective(point + step * e, rows, 4000.0, 0.05)[0]
                - bgnbd_module._objective(point - step * e, rows, 4000.0, 0.05)[0]
            )
            / (2 * step)
            for e in np.eye(4)
        ]
        assert np.isfinite(value)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_weights_equal_repeated_rows(population: Population) -> None:
    # Recency in whole weeks makes rows repeat; fit the distinct rows weighted by their count.
    raw = np.column_stack(
        (population.frequency[:5000], np.round(population.recency[:5000]), population.T[:5000])
    )
    distinct, counts = np.unique(raw, axis=0, return_counts=True)
    assert distinct.shape[0] < raw.shape[0] / 5
    weighted = fit_bgnbd(
        frequency=distinct[:, 0], recency=distinct[:, 1], T=distinct[:, 2], weights=counts
    )
    repeated = fit_bgnbd(frequency=raw[:, 0], recency=raw[:, 1], T=raw[:, 2])
    assert weighted.converged and repeated.converged
    for name in ("r", "alpha", "a", "b"):
        assert getattr(weighted, name) == pytest.approx(getattr(repeated, name), rel=1e-4)
    assert weighted.log_likelihood == pytest.approx(repeated.log_likelihood, rel=1e-9)
    unweighted = fit_bgnbd(frequency=distinct[:, 0], recency=distinct[:, 1], T=distinct[:, 2])
    assert unweighted.r != pytest.approx(weighted.r, rel=0.05)


def test_fit_does_not_depend_on_the_time_unit(population: Population) -> None:
    subset = slice(0, 3000)
    in_weeks = fit_bgnbd(
        frequency=population.frequency[subset],
        recency=population.recency[subset],
        T=population.T[subset],
    )
    in_days = fit_bgnbd(
        frequency=population.frequency[subset],
        recency=population.recency[subset] * 7.0,
        T=population.T[subset] * 7.0,
    )
    assert in_days.alpha == pytest.approx(7.0 * in_weeks.alpha, rel=1e-4)
    for name in ("r", "a", "b"):
        assert getattr(in_days, name) == pytest.approx(getattr(in_weeks, name), rel=1e-4)


def test_penalizer_shrinks_the_parameters(population: Population) -> None:
    subset = slice(0, 3000)
    args = {
        "frequency": population.frequency[subset],
        "recency": population.recency[subset],
        "T": population.T[subset],
    }
    plain = fit_bgnbd(**args)
    penalised = fit_bgnbd(**args, penalizer=0.1)

    def norm(p: BGNBDParams) -> float:  # alpha in the internal unit where max(T) = 1
        return p.r**2 + (p.alpha / CALIBRATION_WEEKS) ** 2 + p.a**2 + p.b**2

    assert penalised.converged
    assert norm(penalised) < norm(plain)
    assert penalised.log_likelihood < plain.log_likelihood


def test_penalizer_keeps_the_fit_finite_when_nobody_drops_out() -> None:
    rng = np.random.default_rng(3)
    rate = rng.gamma(2.0, 1.0 / 10.0, size=2000)
    counts = rng.poisson(rate * 39.0).astype(float)  # Poisson purchases, no dropout at all
    recency = np.where(counts > 0, 39.0 * rng.beta(np.maximum(counts, 1.0), 1.0), 0.0)
    fit = fit_bgnbd(frequency=counts, recency=recency, T=np.full(2000, 39.0), penalizer=0.01)
    assert fit.converged
    assert all(np.isfinite([fit.r, fit.alpha, fit.a, fit.b]))
    alive = probability_alive(fit, frequency=counts, recency=recency, T=np.full(2000, 39.0))
    assert alive.mean() > 0.9


# ---------------------------------------------------------------- predictions


def test_predictions_are_calibrated_on_the_holdout(
    population: Population, fitted: BGNBDParams
) -> None:
    expected = expected_purchases(fitted, t=HOLDOUT_WEEKS, **history(population))
    chance = probability_of_purchase(fitted, t=HOLDOUT_WEEKS, **history(population))
    purchased = (population.holdout > 0).astype(float)
    n = population.holdout.size

    # Standard errors of the holdout means: 2.0 % (counts) and 1.2 % (shares) here.
    count_se = np.std(population.holdout - expected) / np.sqrt(n)
    share_se = np.std(purchased - chance) / np.sqrt(n)
    assert abs(expected.mean() - population.holdout.mean()) < 4 * count_se
    assert abs(chance.mean() - purchased.mean()) < 4 * share_se
    assert expected.mean() == pytest.approx(population.holdout.mean(), rel=0.06)
    assert chance.mean() == pytest.approx(purchased.mean(), rel=0.04)

    # Calibrated within groups too: no-repeat, one, two-three and frequent customers.
    for low, high in ((0, 0), (1, 1), (2, 3), (4, np.inf)):
        group = (population.frequency >= low) & (population.frequency <= high)
        assert chance[group].mean() == pytest.approx(purchased[group].mean(), abs=0.03)
        assert expected[group].mean() == pytest.approx(population.holdout[group].mean(), rel=0.15)


def test_probability_of_purchase_ranks_holdout_buyers(
    population: Population, fitted: BGNBDParams
) -> None:
    chance = probability_of_purchase(fitted, t=HOLDOUT_WEEKS, **history(population))
    auc = roc_auc_score(population.holdout > 0, chance)
    assert auc > 0.7


def test_no_repeat_customers_match_a_generative_monte_carlo() -> None:
    # Customers with x = 0 at T = 39 can be conditioned on exactly in a simulation.
    rng = np.random.default_rng(11)
    pop = simulate_bgnbd(rng, customers=200_000, params=TRUE, T=39.0, holdout=26.0)
    none = pop.frequency == 0
    params = params_of(TRUE)
    one = {"frequency": [0.0], "recency": [0.0], "T": [39.0]}
    share = float(np.mean(pop.holdout[none] > 0))
    mean = float(np.mean(pop.holdout[none]))
    share_se = np.sqrt(share * (1 - share) / none.sum())
    mean_se = np.std(pop.holdout[none]) / np.sqrt(none.sum())
    assert probability_of_purchase(params, t=26.0, **one)[0] == pytest.approx(
        share, abs=4 * share_se
    )
    assert expected_purchases(params, t=26.0, **one)[0] == pytest.approx(mean, abs=4 * mean_se)


@pytest.mark.parametrize(
    ("x", "t_x", "T"), [(1.0, 5.0, 39.0), (2.0, 30.43, 38.86), (3.0, 10.0, 30.0)]
)
def test_conditional_predictions_match_importance_sampling(x: float, t_x: float, T: float) -> None:
    # Prior draws weighted by the paper's two-state likelihood: alive at T with weight
    # (1-p)^x lambda^x e^(-lambda T), dropped out after the x-th purchase with weight
    # p (1-p)^(x-1) lambda^x e^(-lambda t_x). Alive customers buy in (T, T+t] with
    # probability 1 - e^(-lambda t) and (1 - e^(-lambda p t)) / p times on average.
    rng = np.random.default_rng(5)
    r, alpha, a, b = TRUE
    lam = rng.gamma(r, 1.0 / alpha, size=1_000_000)
    p = rng.beta(a, b, size=lam.size)
    log_common = x * np.log(lam) - lam * t_x
    w_alive = np.exp(x * np.log1p(-p) + log_common - lam * (T - t_x))
    w_dead = np.exp(np.log(p) + (x - 1) * np.log1p(-p) + log_common)
    total = w_alive.sum() + w_dead.sum()
    horizon = 20.0
    p_alive = w_alive.sum() / total
    p_buy = float(w_alive @ -np.expm1(-lam * horizon)) / total
    mean_buys = float(w_alive @ (-np.expm1(-lam * p * horizon) / p)) / total

    params = params_of(TRUE)
    one = {"frequency": [x], "recency": [t_x], "T": [T]}
    assert probability_alive(params, **one)[0] == pytest.approx(p_alive, rel=0.02)
    assert probability_of_purchase(params, t=horizon, **one)[0] == pytest.approx(p_buy, rel=0.02)
    assert expected_purchases(params, t=horizon, **one)[0] == pytest.approx(mean_buys, rel=0.02)


def test_published_cdnow_example() -> None:
    # Fader, Hardie & Lee (2005): CDNOW estimates, customer with x=2, t_x=30.43, T=38.86
    # is expected to make 1.226 purchases in the next 39 weeks.
    params = params_of((0.243, 4.414, 0.793, 2.426))
    value = expected_purchases(params, t=39.0, frequency=[2], recency=[30.43], T=[38.86])
    assert value[0] == pytest.approx(1.226, abs=5e-4)


def reference_expectation(
    params: BGNBDParams, *, t: float, x: float, t_x: float, T: float
) -> float:
    """P(alive) * E[(1 - (1 + k p)^-(r+x)) / p], p ~ Beta(a, b+x), by adaptive quadrature."""
    n, k, shape_b = params.r + x, t / (params.alpha + T), params.b + x

    def integrand(p: float) -> float:
        gain = n * k if p == 0 else -np.expm1(-n * np.log1p(k * p)) / p
        return float(gain * stats.beta.pdf(p, params.a, shape_b))

    mean, _ = integrate.quad(integrand, 0.0, 1.0, limit=400, epsabs=0.0, epsrel=1e-11)
    alive = probability_alive(params, frequency=[x], recency=[t_x], T=[T])[0]
    return float(alive * mean)


@pytest.mark.parametrize("a", [0.3, 0.9, 0.9995, 1.0 - 1e-9, 1.0, 1.0002, 1.5, 4.0])
@pytest.mark.parametrize(
    ("x", "t_x", "T", "t"),
    [
        (0.0, 0.0, 39.0, 39.0),
        (3.0, 20.0, 39.0, 10.0),
        (40.0, 300.0, 365.0, 90.0),
        (700.0, 729.0, 730.0, 3650.0),  # the paper's form of 2F1 overflows here
    ],
)
def test_expected_purchases_matches_quadrature_for_any_a(
    a: float, x: float, t_x: float, T: float, t: float
) -> None:
    params = params_of((0.6, 12.0, a, 2.5))
    value = expected_purchases(params, t=t, frequency=[x], recency=[t_x], T=[T])[0]
    assert np.isfinite(value)
    assert value == pytest.approx(reference_expectation(params, t=t, x=x, t_x=t_x, T=T), rel=1e-7)


def test_expected_purchases_is_continuous_where_the_a_near_one_band_starts() -> None:
    band = bgnbd_module._A_NEAR_ONE
    for a_inside, a_outside in (
        (1 - band + 1e-9, 1 - band - 1e-9),
        (1 + band - 1e-9, 1 + band + 1e-9),
    ):
        inside, outside = (
            expected_purchases(
                params_of((0.25, 4.0, a, 2.5)),
                t=39.0,
                frequency=[0, 4],
                recency=[0, 30],
                T=[39] * 2,
            )
            for a in (a_inside, a_outside)
        )
        np.testing.assert_allclose(inside, outside, rtol=1e-7)


def test_closed_form_pole_falls_back_to_quadrature() -> None:
    # x = 0 with a + b = 1 puts 2F1's third parameter a + b + x - 1 exactly on its pole at 0.
    params = params_of((0.5, 3.0, 0.25, 0.75))
    value = expected_purchases(params, t=10.0, frequency=[0], recency=[0], T=[20])[0]
    assert value == pytest.approx(reference_expectation(params, t=10.0, x=0, t_x=0, T=20), rel=1e-6)


def test_fit_and_predictions_stay_finite_when_a_is_below_one() -> None:
    rng = np.random.default_rng(8)
    pop = simulate_bgnbd(rng, customers=4000, params=(0.5, 2.0, 0.3, 0.5), T=39.0, holdout=39.0)
    fit = fit_bgnbd(**history(pop))
    assert fit.converged and fit.a < 1.0
    expected = expected_purchases(fit, t=39.0, **history(pop))
    chance = probability_of_purchase(fit, t=39.0, **history(pop))
    assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
    assert np.all((chance >= 0) & (chance <= 1))
    direct = expected_purchases(
        params_of((0.25, 4.0, 0.9, 2.5)),
        t=39.0,
        frequency=[0, 1, 7],
        recency=[0, 2, 38],
        T=[39] * 3,
    )
    assert np.all(np.isfinite(direct)) and np.all(direct > 0)


def test_extreme_histories_give_bounded_predictions() -> None:
    params = params_of((0.8, 5.0, 2.0, 40.0))
    frequency = np.array([0, 0, 1, 300, 700, 700, 5])
    recency = np.array([0, 0, 1e-3, 364, 729, 100, 5])
    T = np.array([0, 1e4, 1e4, 365, 730, 730, 5])
    for t in (1e-3, 1.0, 365.0, 1e4):
        expected = expected_purchases(params, t=t, frequency=frequency, recency=recency, T=T)
        chance = probability_of_purchase(params, t=t, frequency=frequency, recency=recency, T=T)
        alive = probability_alive(params, frequency=frequency, recency=recency, T=T)
        upper = alive * (params.r + frequency) * t / (params.alpha + T)
        assert np.all(np.isfinite(expected)) and np.all(np.isfinite(chance))
        assert np.all(expected >= 0) and np.all(expected <= upper * (1 + 1e-9))
        assert np.all((chance >= 0) & (chance <= alive))


def test_no_repeat_customers_are_alive_and_new_customers_get_the_prior_mean() -> None:
    params = params_of(TRUE)
    alive = probability_alive(params, frequency=[0, 0, 0], recency=[0, 0, 0], T=[0, 5, 1e6])
    assert alive.tolist() == [1.0, 1.0, 1.0]
    # A customer acquired at the end of calibration (T = 0): paper eq. 9, E[X(t)].
    r, alpha, a, b = TRUE
    t = 39.0
    prior_mean = (
        (a + b - 1)
        / (a - 1)
        * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, t / (alpha + t)))
    )
    new = expected_purchases(params, t=t, frequency=[0], recency=[0], T=[0])
    assert new[0] == pytest.approx(prior_mean, rel=1e-9)
    assert probability_of_purchase(params, t=t, frequency=[0], recency=[0], T=[0])[0] == (
        pytest.approx(1 - (alpha / (alpha + t)) ** r, rel=1e-12)
    )


def test_scalar_and_list_inputs_are_accepted() -> None:
    params = params_of(TRUE)
    from_scalars = expected_purchases(params, t=10, frequency=2, recency=30.0, T=39)
    from_lists = expected_purchases(params, t=10, frequency=[2], recency=[30.0], T=[39])
    assert from_scalars.shape == (1,) and from_scalars[0] == from_lists[0]


# ---------------------------------------------------------------- validation

SECRET = 98765.4321  # a data value that must never appear in an error message

HISTORY_CASES = {
    "negative frequency": ({"frequency": [1, -1], "recency": [2, 0], "T": [5, 5]}, "frequency"),
    "negative recency": ({"frequency": [1, 1], "recency": [2, -3], "T": [5, 5]}, "recency"),
    "negative T": ({"frequency": [0, 0], "recency": [0, 0], "T": [5, -SECRET]}, "T"),
    "recency after T": ({"frequency": [1, 1], "recency": [2, SECRET], "T": [5, 5]}, "recency"),
    "recency without repeats": ({"frequency": [0], "recency": [SECRET], "T": [1e6]}, "recency"),
    "fractional frequency": ({"frequency": [1.5], "recency": [2], "T": [5]}, "frequency"),
    "length mismatch": ({"frequency": [1, 0], "recency": [2], "T": [5, 5]}, "same length"),
    "nan": ({"frequency": [1, 0], "recency": [np.nan, 0], "T": [5, 5]}, "recency"),
    "inf": ({"frequency": [1, 0], "recency": [2, 0], "T": [np.inf, 5]}, "T"),
    "empty": ({"frequency": [], "recency": [], "T": []}, "frequency"),
    "two-dimensional": ({"frequency": [[1]], "recency": [[2]], "T": [[5]]}, "frequency"),
    "not numeric": ({"frequency": ["a"], "recency": [2], "T": [5]}, "frequency"),
}


@pytest.mark.parametrize(("arguments", "named"), HISTORY_CASES.values(), ids=HISTORY_CASES.keys())
@pytest.mark.parametrize("function", ["fit", "alive", "purchase", "expected"])
def test_bad_history_is_rejected_naming_the_argument(
    arguments: dict[str, list[float]], named: str, function: str
) -> None:
    params = params_of(TRUE)
    calls = {
        "fit": lambda: fit_bgnbd(**arguments),
        "alive": lambda: probability_alive(params, **arguments),
        "purchase": lambda: probability_of_purchase(params, t=5.0, **arguments),
        "expected": lambda: expected_purchases(params, t=5.0, **arguments),
    }
    with pytest.raises(ValueError, match=named) as caught:
        calls[function]()
    assert "98765" not in str(caught.value)


@pytest.mark.parametrize("t", [0.0, -1.0, float("nan"), float("inf"), "soon"])
@pytest.mark.parametrize("function", [probability_of_purchase, expected_purchases])
def test_non_positive_horizon_is_rejected(t: object, function: object) -> None:
    with pytest.raises(ValueError, match="^t must be"):
        function(params_of(TRUE), t=t, frequency=[1], recency=[2], T=[5])


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"weights": [1, -SECRET]}, "weights"),
        ({"weights": [1]}, "weights"),
        ({"weights": [0, 0]}, "weights"),
        ({"weights": [1, np.nan]}, "weights"),
        ({"penalizer": -SECRET}, "penalizer"),
        ({"penalizer": np.inf}, "penalizer"),
    ],
)
def test_bad_fit_options_are_rejected(options: dict[str, object], named: str) -> None:
    with pytest.raises(ValueError, match=named) as caught:
        fit_bgnbd(frequency=[1, 0], recency=[2, 0], T=[5, 5], **options)
    assert "98765" not in str(caught.value)


def test_all_zero_ages_are_rejected() -> None:
    with pytest.raises(ValueError, match="T: every row"):
        fit_bgnbd(frequency=[0, 0], recency=[0, 0], T=[0, 0])
    with pytest.raises(ValueError, match="T: every row"):
        fit_bgnbd(frequency=[0, 0], recency=[0, 0], T=[0, 5], weights=[1, 0])


@pytest.mark.parametrize("field", ["r", "alpha", "a", "b"])
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_params_must_be_positive_and_finite(field: str, bad: float) -> None:
    values = dict(zip(("r", "alpha", "a", "b"), TRUE, strict=True)) | {field: bad}
    with pytest.raises(ValueError, match=f"BGNBDParams.{field} must be"):
        BGNBDParams(**values, log_likelihood=0.0, converged=True)
