"""Classical baselines for the simulations: the BG/NBD repeat-purchase model."""

from .bgnbd import (
    BGNBDParams,
    expected_purchases,
    fit_bgnbd,
    probability_alive,
    probability_of_purchase,
)

__all__ = [
    "BGNBDParams",
    "expected_purchases",
    "fit_bgnbd",
    "probability_alive",
    "probability_of_purchase",
]
