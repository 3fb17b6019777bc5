"""The edge's privacy ledgers: persisted in the edge store, reported to the server.

One ``privacy.PrivacyLedger`` per model composes every training release of that model on
this edge, across rounds and runs. It lives in the store's ``ledger`` table as the
ledger's ``state_dict``; the server receives a ``models.LedgerReport`` of it.
"""

from __future__ import annotations

import logging
import math
import sys

from models import LedgerEntryWire, LedgerReport
from privacy import DPConfig, PrivacyLedger

from .store import EdgeStore

logger = logging.getLogger(__name__)


def load_ledger(store: EdgeStore, *, model: str, dp: DPConfig) -> PrivacyLedger:
    """Return the model's ledger with the current DP configuration applied.

    Saved releases are kept; δ, accountant and budget come from ``dp`` (the budget may
    have been changed by the operator since the last round).

    Parameters
    ----------
    store : EdgeStore
        The edge's store.
    model : str
        Model name.
    dp : DPConfig
        Current settings: ``delta``, ``accountant`` and ``max_epsilon`` (the budget).

    Returns
    -------
    PrivacyLedger
        The ledger, empty if the model has never been trained on this edge.

    Raises
    ------
    privacy.LedgerStateError
        If the saved state is of another mechanism, version or model.
    """
    ledger = PrivacyLedger(
        model=model, delta=dp.delta, accountant=dp.accountant, budget=dp.max_epsilon
    )
    state = store.load_ledger_state(model)
    if state is not None:
        ledger.load_state_dict(state, keep_config=True)
    return ledger


def read_ledger(store: EdgeStore, model: str) -> PrivacyLedger | None:
    """Return the model's ledger exactly as saved (its own δ, accountant and budget).

    Returns
    -------
    PrivacyLedger or None
        ``None`` if no ledger was saved for ``model``.

    Raises
    ------
    privacy.LedgerStateError
        If the saved state is unusable.
    """
    state = store.load_ledger_state(model)
    if state is None:
        return None
    ledger = PrivacyLedger(model=model, delta=1e-5)  # δ, accountant, budget come from state
    ledger.load_state_dict(state)
    return ledger


def save_ledger(store: EdgeStore, ledger: PrivacyLedger) -> None:
    """Persist a ledger's state in the edge store (atomic replace)."""
    store.save_ledger_state(ledger.model, ledger.state_dict())


def _finite(value: float) -> float:
    """Wire records carry finite numbers: ε = ∞ (a release without noise) becomes max float."""
    return value if math.isfinite(value) else sys.float_info.max


def ledger_report(store: EdgeStore, model: str) -> LedgerReport | None:
    """Build the report of one model's ledger for ``PUT /api/v1/edges/me/ledger``.

    Parameters
    ----------
    store : EdgeStore
        The edge's store.
    model : str
        Model name.

    Returns
    -------
    LedgerReport or None
        Cumulative ε with δ, accountant, budget, the exhausted flag and every release;
        ``None`` if the model has no ledger on this edge.
    """
    ledger = read_ledger(store, model)
    if ledger is None:
        return None
    entries = [
        LedgerEntryWire(
            run_id=e.release.run_id,
            round=e.release.round,
            model=e.release.model,
            accountant=e.release.accountant,
            noise_multiplier=e.release.noise_multiplier,
            sample_rate=e.release.sample_rate,
            steps=e.release.steps,
            delta=e.release.delta,
            epsilon_after=_finite(e.epsilon_after),
            neighbouring=e.release.neighbouring,
            sampling=e.release.sampling,
            level=e.release.level,
            recorded_at=e.release.recorded_at,
        )
        for e in ledger.entries
    ]
    return LedgerReport(
        model=model,
        epsilon=_finite(ledger.epsilon()),
        delta=ledger.delta,
        accountant=ledger.accountant,
        budget=ledger.budget,
        exhausted=ledger.exhausted,
        entries=entries,
    )
