"""BG/NBD "buy till you die" repeat-purchase model, fitted by maximum likelihood.

The beta-geometric / negative-binomial distribution model of Fader, Hardie & Lee (2005),
"Counting your customers the easy way: An alternative to the Pareto/NBD model",
*Marketing Science* 24(2), 275-284. It is the classical baseline for "will this customer
purchase again in the next N days": while alive, a customer purchases as a Poisson process
with rate ``lambda ~ Gamma(r, alpha)`` (shape ``r``, rate ``alpha``); after each *repeat*
purchase the customer drops out for good with probability ``p ~ Beta(a, b)``.

Inputs follow the paper (and the ``lifetimes`` package): ``frequency`` ``x`` is the number of
repeat purchase occasions (purchase days after the first), ``recency`` ``t_x`` the time of
the last purchase minus the time of the first (0 when ``x`` is 0) and ``T`` the time from the
first purchase to the end of the calibration period, all in one time unit (``alpha`` is in
that unit too).

Why hand-written: ``lifetimes`` (0.11.3, last released 2020) fails on pandas 3 and imports
``pkg_resources``; ``pymc-marketing`` pulls in PyMC and fits Bayesian models, far too heavy
for a baseline. The model needs only NumPy and SciPy.

Numerics
--------
* The log-likelihood (paper eq. 6) is evaluated in log space with ``logaddexp``; rows with
  ``x = 0`` never form ``log(b - 1)``. The fit maximises it over log-parameters with
  L-BFGS-B and an analytic gradient from two start points, falling back to Nelder-Mead
  when neither run converges, on time rescaled so that ``max(T) = 1`` (as ``lifetimes``
  does); ``alpha`` is reported back in the caller's time unit.
* The conditional expectation (paper eq. 10) is ``P(alive) * E[g(p)]`` with
  ``g(p) = (1 - (1 + k p)^-(r+x)) / p``, ``p ~ Beta(a, b + x)`` and ``k = t / (alpha + T)``.
  The paper's closed form in ``2F1`` splits that bounded integrand into two parts whose
  means diverge when ``a <= 1``, but the closed form is analytic in ``a`` and stays valid
  for ``0 < a < 1`` by analytic continuation; only ``a = 1`` is a removable 0/0
  singularity, near which the closed form loses digits. Within ``|a - 1| < 5e-3`` the
  expectation is interpolated (cubic, through ``a = 1 -/+ 5e-3`` and ``1 -/+ 1e-2``;
  relative error below 1e-7). The ``2F1`` is evaluated after Euler's transformation (more
  robust for many repeat purchases), then in the paper's form; a row where neither gives a
  finite value inside the integrand's bounds ``[g(1), g(0)]`` is integrated by Gauss-Jacobi
  quadrature against the Beta weight, and as a last resort clipped into those bounds
  (logged).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Optimiser bounds on each log-parameter (time rescaled so that ``max(T) = 1``).
_LOG_PARAM_BOUND: Final = 15.0
#: Half-width of the band around ``a = 1`` where the expectation is interpolated in ``a``.
_A_NEAR_ONE: Final = 5e-3
#: Relative slack when checking a closed-form value against the integrand's bounds.
_BOUNDS_SLACK: Final = 1e-6
#: Gauss-Jacobi nodes of the quadrature fallback.
_JACOBI_NODES: Final = 128
_PARAM_NAMES: Final = ("r", "alpha", "a", "b")


@dataclass(frozen=True, slots=True)
class BGNBDParams:
    """Fitted BG/NBD parameters.

    Parameters
    ----------
    r : float
        Shape of the Gamma distribution of the purchase rate ``lambda`` (> 0).
    alpha : float
        Rate (inverse scale) of that Gamma distribution, in the time unit of ``recency``
        and ``T`` (> 0).
    a : float
        First shape of the Beta distribution of the dropout probability ``p`` (> 0).
    b : float
        Second shape of that Beta distribution (> 0).
    log_likelihood : float
        Total (weighted) log-likelihood at the optimum, without the penalty term, in the
        caller's time unit.
    converged : bool
        Whether the optimiser that produced these parameters reported success.

    Raises
    ------
    ValueError
        If ``r``, ``alpha``, ``a`` or ``b`` is not a finite number > 0.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    converged: bool

    def __post_init__(self) -> None:
        for name in _PARAM_NAMES:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"BGNBDParams.{name} must be a finite number > 0")


# ---------------------------------------------------------------- input validation


def _as_vector(name: str, values: npt.ArrayLike) -> FloatArray:
    """Return ``values`` as a finite, non-empty 1-D float array or raise ``ValueError``."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array-like") from exc
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (got {array.ndim} dimensions)")
    if array.size == 0:
        raise ValueError(f"{name} is empty; at least one row is required")
    not_finite = int(np.count_nonzero(~np.isfinite(array)))
    if not_finite:
        raise ValueError(f"{name}: {not_finite} row(s) are not finite (NaN or infinite)")
    return array


def _validate_history(
    *, frequency: npt.ArrayLike, recency: npt.ArrayLike, T: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate the calibration summary of each customer.

    Parameters
    ----------
    frequency, recency, T : array-like
        Repeat purchases ``x``, recency ``t_x`` and age ``T`` of each customer.

    Returns
    -------
    tuple[FloatArray, FloatArray, FloatArray]
        ``x``, ``t_x`` and ``T`` as float arrays of equal length.

    Raises
    ------
    ValueError
        If an argument is not numeric, not 1-D, empty or not finite, the lengths differ,
        a value is negative, ``frequency`` is not whole, ``recency > T``, or
        ``recency > 0`` where ``frequency`` is 0.
    """
    x = _as_vector("frequency", frequency)
    tx = _as_vector("recency", recency)
    age = _as_vector("T", T)
    if not x.size == tx.size == age.size:
        raise ValueError(
            "frequency, recency and T must have the same length "
            f"(got {x.size}, {tx.size} and {age.size})"
        )
    for name, array in (("frequency", x), ("recency", tx), ("T", age)):
        negative = int(np.count_nonzero(array < 0))
        if negative:
            raise ValueError(f"{name}: {negative} row(s) are negative (must be >= 0)")
    fractional = int(np.count_nonzero(x != np.floor(x)))
    if fractional:
        raise ValueError(
            f"frequency: {fractional} row(s) are not whole numbers "
            "(frequency counts repeat purchase occasions)"
        )
    after_end = int(np.count_nonzero(tx > age))
    if after_end:
        raise ValueError(f"recency: {after_end} row(s) exceed T (recency must be <= T)")
    no_repeat = int(np.count_nonzero((x == 0) & (tx > 0)))
    if no_repeat:
        raise ValueError(
            f"recency: {no_repeat} row(s) have frequency 0 but recency > 0 "
            "(recency must be 0 when frequency is 0)"
        )
    return x, tx, age


def _validate_horizon(t: float) -> float:
    """Return the prediction horizon ``t`` as a float, or raise ``ValueError``."""
    try:
        horizon = float(t)
    except (TypeError, ValueError) as exc:
        raise ValueError("t must be a finite number > 0") from exc
    if not (math.isfinite(horizon) and horizon > 0):
        raise ValueError("t must be a finite number > 0")
    return horizon


def _validate_weights(weights: npt.ArrayLike | None, rows: int) -> FloatArray:
    """Return row weights (ones when ``None``), or raise ``ValueError``."""
    if weights is None:
        return np.ones(rows, dtype=np.float64)
    w = _as_vector("weights", weights)
    if w.size != rows:
        raise ValueError(
            f"weights must have the same length as frequency (got {w.size} and {rows})"
        )
    negative = int(np.count_nonzero(w < 0))
    if negative:
        raise ValueError(f"weights: {negative} row(s) are negative (must be >= 0)")
    if not np.any(w > 0):
        raise ValueError("weights: all rows are 0 (at least one must be positive)")
    return w


# ---------------------------------------------------------------- likelihood


@dataclass(frozen=True, slots=True)
class _Rows:
    """Calibration rows (``x``, ``t_x``, ``T``), their weights and the distinct ``x`` values.

    The Gamma-function terms depend on a row only through ``x``, which takes few distinct
    values; they are evaluated once per value (``counts``) and gathered by ``count_index``.
    """

    x: FloatArray
    tx: FloatArray
    T: FloatArray
    weight: FloatArray
    counts: FloatArray
    count_index: npt.NDArray[np.intp]


def _make_rows(*, x: FloatArray, tx: FloatArray, age: FloatArray, weight: FloatArray) -> _Rows:
    """Bundle validated calibration rows with their distinct ``x`` values."""
    counts, count_index = np.unique(x, return_inverse=True)
    return _Rows(
        x=x,
        tx=tx,
        T=age,
        weight=weight,
        counts=np.asarray(counts, dtype=np.float64),
        count_index=np.asarray(count_index, dtype=np.intp).ravel(),
    )


def _log_likelihood_rows(params: FloatArray, rows: _Rows) -> tuple[FloatArray, FloatArray]:
    """Per-row log-likelihood (paper eq. 6) and its gradient in the natural parameters.

    Parameters
    ----------
    params : FloatArray
        ``(r, alpha, a, b)``, all > 0.
    rows : _Rows
        Calibration rows.

    Returns
    -------
    tuple[FloatArray, FloatArray]
        ``(rows,)`` log-likelihoods and ``(rows, 4)`` partial derivatives with respect to
        ``r``, ``alpha``, ``a`` and ``b``.
    """
    r, alpha, a, b = (float(v) for v in params)
    x, tx, age = rows.x, rows.tx, rows.T
    repeat = x > 0
    rx = r + x
    log_alpha_age = np.log(alpha + age)
    log_alpha_tx = np.log(alpha + tx)
    # b + x - 1 only enters rows with x > 0, where it is >= b > 0.
    bx1 = np.where(repeat, b + x - 1.0, 1.0)
    xs = rows.counts
    per_count = np.stack(
        (
            special.gammaln(r + xs) + special.betaln(a, b + xs),
            special.digamma(r + xs),
            special.digamma(b + xs) - special.digamma(a + b + xs),
            special.digamma(a + b + xs),
        )
    )[:, rows.count_index]
    log_gammas, psi_rx, psi_bx_abx, psi_abx = per_count

    a12 = log_gammas - special.gammaln(r) + r * math.log(alpha) - special.betaln(a, b)
    a3 = -rx * log_alpha_age
    a4 = np.where(repeat, math.log(a) - np.log(bx1) - rx * log_alpha_tx, -np.inf)
    a34 = np.logaddexp(a3, a4)
    loglik: FloatArray = np.asarray(a12 + a34, dtype=np.float64)

    w3 = np.exp(a3 - a34)
    w4 = np.exp(a4 - a34)  # 0 where x == 0
    psi_ab = float(special.digamma(a + b))
    grad = np.empty((x.size, 4), dtype=np.float64)
    grad[:, 0] = (
        psi_rx - special.digamma(r) + math.log(alpha) - w3 * log_alpha_age - w4 * log_alpha_tx
    )
    grad[:, 1] = r / alpha - rx * (w3 / (alpha + age) + w4 / (alpha + tx))
    grad[:, 2] = psi_ab - psi_abx + w4 / a
    grad[:, 3] = psi_bx_abx - special.digamma(b) + psi_ab - w4 / bx1
    return loglik, grad


def _objective(
    log_params: FloatArray, rows: _Rows, total_weight: float, penalizer: float
) -> tuple[float, FloatArray]:
    """Penalised mean negative log-likelihood and its gradient in the log-parameters."""
    params = np.exp(log_params)
    loglik, grad = _log_likelihood_rows(params, rows)
    # Plain reductions rather than ``@``: a BLAS call per evaluation is slow when the
    # threaded BLAS competes with other processes for the cores.
    value = -float(np.sum(rows.weight * loglik)) / total_weight + penalizer * float(
        np.sum(params**2)
    )
    gradient = (
        -np.sum(rows.weight[:, None] * grad, axis=0) * params / total_weight
        + 2.0 * penalizer * params**2
    )
    if not (math.isfinite(value) and np.all(np.isfinite(gradient))):
        return math.inf, np.zeros(4, dtype=np.float64)
    return value, np.asarray(gradient, dtype=np.float64)


def _objective_value(
    log_params: FloatArray, rows: _Rows, total_weight: float, penalizer: float
) -> float:
    """Objective value only (for Nelder-Mead)."""
    return _objective(log_params, rows, total_weight, penalizer)[0]


def fit_bgnbd(
    *,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
    penalizer: float = 0.0,
    weights: npt.ArrayLike | None = None,
) -> BGNBDParams:
    """Fit the BG/NBD model by maximum likelihood.

    Parameters
    ----------
    frequency : array-like
        Number of repeat purchase occasions ``x`` of each customer (whole numbers >= 0).
    recency : array-like
        Time of the last purchase minus time of the first purchase ``t_x`` (0 when
        ``frequency`` is 0).
    T : array-like
        Time from the first purchase to the end of the calibration period (>= recency).
    penalizer : float, default 0.0
        L2 penalty ``penalizer * (r^2 + alpha'^2 + a^2 + b^2)`` added to the mean negative
        log-likelihood, as in ``lifetimes``; ``alpha'`` is ``alpha`` in internal time units
        where ``max(T) = 1``. Helps when the maximum is at infinity (e.g. no sign of
        dropout).
    weights : array-like, optional
        Number of customers sharing each row; each row's log-likelihood is multiplied by
        its weight. Defaults to one customer per row.

    Returns
    -------
    BGNBDParams
        The fitted parameters (``alpha`` in the time unit of ``recency`` and ``T``), the
        total log-likelihood at the optimum and whether the optimiser converged.

    Raises
    ------
    ValueError
        If the inputs break the rules of ``frequency``, ``recency`` and ``T`` (see the
        module docstring), ``T`` is 0 for every row, ``weights`` are negative, all 0 or of
        another length, ``penalizer`` is negative or not finite, or the likelihood cannot
        be evaluated at any start point.
    """
    x, tx, age = _validate_history(frequency=frequency, recency=recency, T=T)
    w = _validate_weights(weights, x.size)
    if not (math.isfinite(penalizer) and penalizer >= 0):
        raise ValueError("penalizer must be a finite number >= 0")
    keep = w > 0
    max_age = float(age[keep].max())
    if max_age <= 0:
        raise ValueError(
            "T: every row (with positive weight) is 0 (at least one customer must have T > 0)"
        )

    scale = 1.0 / max_age
    distinct, inverse = np.unique(
        np.column_stack((x[keep], tx[keep] * scale, age[keep] * scale)),
        axis=0,
        return_inverse=True,
    )
    rows = _make_rows(
        x=distinct[:, 0],
        tx=distinct[:, 1],
        age=distinct[:, 2],
        weight=np.asarray(
            np.bincount(inverse.ravel(), weights=w[keep], minlength=distinct.shape[0]),
            dtype=np.float64,
        ),
    )
    total_weight = float(rows.weight.sum())
    args = (rows, total_weight, penalizer)
    bounds = [(-_LOG_PARAM_BOUND, _LOG_PARAM_BOUND)] * 4

    # Two starts: all parameters 1 (time scaled to max(T) = 1), and a data-driven one whose
    # prior mean purchase rate r / alpha matches the observed repeat rate.
    rate = max(float(w @ x) / float(w @ (age * scale)), 1e-3)
    starts = [np.zeros(4), np.log([0.5, 0.5 / rate, 0.5, 2.0])]
    results = [
        optimize.minimize(
            _objective,
            start,
            args=args,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-8},
        )
        for start in starts
    ]
    if not any(res.success and math.isfinite(res.fun) for res in results):
        best_so_far = min(results, key=lambda res: float(res.fun))
        logger.debug("L-BFGS-B did not converge; falling back to Nelder-Mead")
        results.extend(
            optimize.minimize(
                _objective_value,
                start,
                args=args,
                method="Nelder-Mead",
                bounds=bounds,
                options={"maxiter": 8000, "xatol": 1e-9, "fatol": 1e-13, "adaptive": True},
            )
            for start in (np.asarray(best_so_far.x, dtype=np.float64), starts[1])
        )
    finite = [res for res in results if math.isfinite(float(res.fun))]
    if not finite:
        raise ValueError("the BG/NBD likelihood is not finite at any start point")
    best = min(finite, key=lambda res: float(res.fun))

    log_params = np.asarray(best.x, dtype=np.float64)
    at_bound = [
        name
        for name, value in zip(_PARAM_NAMES, log_params, strict=True)
        if abs(value) >= _LOG_PARAM_BOUND - 1e-6
    ]
    if at_bound:
        logger.warning(
            "BG/NBD fit: %s reached the optimiser bound (the maximum may be at infinity); "
            "consider penalizer > 0",
            ", ".join(at_bound),
        )
    r, alpha_scaled, a, b = (float(v) for v in np.exp(log_params))
    alpha = alpha_scaled / scale
    original = _make_rows(x=x, tx=tx, age=age, weight=w)
    loglik, _ = _log_likelihood_rows(np.array([r, alpha, a, b]), original)
    converged = bool(best.success)
    if not converged:
        logger.warning("BG/NBD fit did not converge: %s", best.message)
    return BGNBDParams(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        log_likelihood=float(w @ loglik),
        converged=converged,
    )


# ---------------------------------------------------------------- predictions


def _log_odds_dead(
    params: BGNBDParams, *, x: FloatArray, tx: FloatArray, age: FloatArray
) -> FloatArray:
    """Log of ``a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x)``; -inf for x = 0."""
    repeat = x > 0
    bx1 = np.where(repeat, params.b + x - 1.0, 1.0)
    log_ratio = np.log1p((age - tx) / (params.alpha + tx))
    value = math.log(params.a) - np.log(bx1) + (params.r + x) * log_ratio
    return np.where(repeat, value, -np.inf)


def _alive(params: BGNBDParams, *, x: FloatArray, tx: FloatArray, age: FloatArray) -> FloatArray:
    """P(alive at T | history), as a float array."""
    odds = _log_odds_dead(params, x=x, tx=tx, age=age)
    return np.asarray(special.expit(-odds), dtype=np.float64)


def probability_alive(
    params: BGNBDParams,
    *,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """Return the probability that each customer is alive at the end of calibration.

    ``P(alive) = 1 / (1 + [x > 0] * a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x))``;
    a customer without repeat purchases cannot have dropped out (probability 1).

    Parameters
    ----------
    params : BGNBDParams
        Fitted model parameters.
    frequency, recency, T : array-like
        Calibration summary of each customer (see ``fit_bgnbd``).

    Returns
    -------
    FloatArray
        ``(customers,)`` probabilities in ``(0, 1]``.

    Raises
    ------
    ValueError
        If the inputs break the rules of ``frequency``, ``recency`` and ``T``.
    """
    x, tx, age = _validate_history(frequency=frequency, recency=recency, T=T)
    return _alive(params, x=x, tx=tx, age=age)


def probability_of_purchase(
    params: BGNBDParams,
    *,
    t: float,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """Return the probability of at least one purchase in ``(T, T + t]`` given the history.

    A customer dead at ``T`` never purchases again. One alive at ``T`` has posterior
    ``lambda ~ Gamma(r + x, alpha + T)`` and can only drop out *after* a purchase, so the
    first purchase of the period arrives at rate ``lambda``: ``P(none | alive, lambda) =
    exp(-lambda t)``, whose posterior mean is ``((alpha + T) / (alpha + T + t))^(r + x)``.
    Hence ``P(at least one) = P(alive) * (1 - ((alpha + T) / (alpha + T + t))^(r + x))``.

    Parameters
    ----------
    params : BGNBDParams
        Fitted model parameters.
    t : float
        Length of the prediction period (> 0), in the time unit of ``T``.
    frequency, recency, T : array-like
        Calibration summary of each customer (see ``fit_bgnbd``).

    Returns
    -------
    FloatArray
        ``(customers,)`` probabilities in ``[0, 1]``.

    Raises
    ------
    ValueError
        If ``t`` is not a finite number > 0 or the inputs break the rules of
        ``frequency``, ``recency`` and ``T``.
    """
    horizon = _validate_horizon(t)
    x, tx, age = _validate_history(frequency=frequency, recency=recency, T=T)
    alive = _alive(params, x=x, tx=tx, age=age)
    some = -np.expm1(-(params.r + x) * np.log1p(horizon / (params.alpha + age)))
    return np.asarray(alive * some, dtype=np.float64)


def _jacobi_mean(*, a: float, shape_b: FloatArray, n: FloatArray, k: FloatArray) -> FloatArray:
    """``E[(1 - (1 + k p)^-n) / p]`` for ``p ~ Beta(a, shape_b)`` by Gauss-Jacobi quadrature.

    Nodes and weights are exact for the Beta weight ``p^(a-1) (1-p)^(B-1)`` (one rule per
    distinct ``B``); the remaining integrand is smooth and bounded on ``[0, 1]``.
    """
    out = np.full(n.shape, np.nan, dtype=np.float64)
    for value in np.unique(shape_b):
        rows = shape_b == value
        with np.errstate(all="ignore"):
            nodes, weights = special.roots_jacobi(_JACOBI_NODES, value - 1.0, a - 1.0)
            p = (1.0 + np.asarray(nodes, dtype=np.float64)) / 2.0
            w = np.asarray(weights, dtype=np.float64)
            integrand = -np.expm1(-n[rows, None] * np.log1p(k[rows, None] * p[None, :])) / p
            out[rows] = integrand @ w / w.sum()
    return out


def _beta_mean_raw(*, a: float, shape_b: FloatArray, n: FloatArray, k: FloatArray) -> FloatArray:
    """``E[(1 - (1 + k p)^-n) / p]``, ``p ~ Beta(a, B)``, for ``a`` away from 1 (see module)."""
    upper = n * k  # the integrand at p = 0 (its maximum)
    lower = -np.expm1(-n * np.log1p(k))  # the integrand at p = 1 (its minimum)
    c = a + shape_b - 1.0
    z = k / (1.0 + k)

    def usable(values: FloatArray) -> npt.NDArray[np.bool_]:
        return np.asarray(
            np.isfinite(values)
            & (values >= lower * (1.0 - _BOUNDS_SLACK))
            & (values <= upper * (1.0 + _BOUNDS_SLACK)),
            dtype=np.bool_,
        )

    with np.errstate(all="ignore"):
        # Euler: (1-z)^n 2F1(n, B; c; z) = (1-z)^(a-1) 2F1(c-n, a-1; c; z).
        tail = np.exp(-(a - 1.0) * np.log1p(k)) * special.hyp2f1(c - n, a - 1.0, c, z)
        out = np.asarray(c / (a - 1.0) * (1.0 - tail), dtype=np.float64)
        bad = ~usable(out)
        if np.any(bad):
            # The paper's form of eq. 10.
            tail = np.exp(-n[bad] * np.log1p(k[bad])) * special.hyp2f1(
                n[bad], shape_b[bad], c[bad], z[bad]
            )
            out[bad] = c[bad] / (a - 1.0) * (1.0 - tail)
            bad = ~usable(out)
    if np.any(bad):
        out[bad] = _jacobi_mean(a=a, shape_b=shape_b[bad], n=n[bad], k=k[bad])
        bad = ~usable(out)
    if np.any(bad):
        logger.warning(
            "expected_purchases: %d row(s) could not be evaluated accurately; "
            "clipped into the integrand's bounds",
            int(np.count_nonzero(bad)),
        )
        out[bad] = np.where(np.isfinite(out[bad]), out[bad], (lower[bad] + upper[bad]) / 2)
    return np.asarray(np.clip(out, lower, upper), dtype=np.float64)


def _beta_mean(*, a: float, shape_b: FloatArray, n: FloatArray, k: FloatArray) -> FloatArray:
    """``E[(1 - (1 + k p)^-n) / p]`` for ``p ~ Beta(a, B)``, any ``a > 0``."""
    if abs(a - 1.0) >= _A_NEAR_ONE:
        return _beta_mean_raw(a=a, shape_b=shape_b, n=n, k=k)
    # a = 1 is a removable 0/0 singularity of the closed form, which loses digits near it:
    # interpolate (cubic Lagrange) through a = 1 -/+ h and 1 -/+ 2h, where it is accurate.
    offsets = (-2.0, -1.0, 1.0, 2.0)
    s = (a - 1.0) / _A_NEAR_ONE
    out = np.zeros(n.shape, dtype=np.float64)
    for node in offsets:
        weight = math.prod((s - other) / (node - other) for other in offsets if other != node)
        value = _beta_mean_raw(a=1.0 + node * _A_NEAR_ONE, shape_b=shape_b, n=n, k=k)
        out += weight * value
    lower = -np.expm1(-n * np.log1p(k))
    return np.asarray(np.clip(out, lower, n * k), dtype=np.float64)


def expected_purchases(
    params: BGNBDParams,
    *,
    t: float,
    frequency: npt.ArrayLike,
    recency: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """Return the expected number of purchases in ``(T, T + t]`` given the history.

    Paper eq. 10: ``E[Y(t) | x, t_x, T] = (a + b + x - 1) / (a - 1) * [1 - ((alpha + T) /
    (alpha + T + t))^(r + x) * 2F1(r + x, b + x; a + b + x - 1; t / (alpha + T + t))] /
    [1 + [x > 0] * a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x)]``, evaluated
    so that it stays finite and accurate for every ``a > 0`` (see the module docstring).

    Parameters
    ----------
    params : BGNBDParams
        Fitted model parameters.
    t : float
        Length of the prediction period (> 0), in the time unit of ``T``.
    frequency, recency, T : array-like
        Calibration summary of each customer (see ``fit_bgnbd``).

    Returns
    -------
    FloatArray
        ``(customers,)`` expected purchase counts (>= 0).

    Raises
    ------
    ValueError
        If ``t`` is not a finite number > 0 or the inputs break the rules of
        ``frequency``, ``recency`` and ``T``.
    """
    horizon = _validate_horizon(t)
    x, tx, age = _validate_history(frequency=frequency, recency=recency, T=T)
    alive = _alive(params, x=x, tx=tx, age=age)
    per_alive = _beta_mean(
        a=params.a,
        shape_b=params.b + x,
        n=params.r + x,
        k=horizon / (params.alpha + age),
    )
    return np.asarray(alive * per_alive, dtype=np.float64)
