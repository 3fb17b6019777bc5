"""The privacy ledger: every DP training release of one model on one edge, composed.

Each federated round's local DP-SGD is one ``Release`` (σ, q, steps plus what the guarantee
means: neighbouring relation, sampling scheme, user- or example-level). The ledger composes
*all* releases, across rounds and runs, into one cumulative (ε, δ) and refuses a release
**before** recording it when it would take ε over the configured budget. Its state is a
plain JSON-able dict (``state_dict`` / ``load_state_dict``) that the edge persists.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from .accounting import ACCOUNTANTS, AccountantName, compute_epsilon
from .errors import BudgetExhaustedError, LedgerStateError

logger = logging.getLogger(__name__)

#: ``mechanism`` tag of ledger state dicts, checked on load.
LEDGER_MECHANISM = "fedprofile.privacy_ledger"
#: Version of the ledger state layout, checked on load.
LEDGER_VERSION = 1


class Release(BaseModel):
    """One accounted training release (one round of local DP-SGD on one edge).

    Parameters
    ----------
    model : str
        Name of the trained model (the ledger's model).
    run_id : str
        Federated run the release belongs to.
    round : int
        Server round of the release.
    accountant : {"prv", "rdp", "pld"}
        Accountant the edge reports ε with.
    noise_multiplier : float
        σ: Gaussian noise std divided by the clipping norm, per step.
    sample_rate : float
        q: Poisson sampling probability of each example (one example per subject).
    steps : int
        Optimizer steps taken with (σ, q), empty Poisson batches included.
    delta : float
        δ configured when the release was made.
    neighbouring : {"add_remove_one"}
        Neighbouring relation the accounting assumes.
    sampling : {"poisson"}
        Sampling scheme the accounting assumes.
    level : {"user", "example"}
        What one example is: a whole subject (user-level DP) or a single record.
    recorded_at : datetime
        When the release was made (timezone-aware).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, max_length=40)
    run_id: str = Field(max_length=64)
    round: int = Field(ge=0)
    accountant: AccountantName = "prv"
    noise_multiplier: float = Field(ge=0.0, allow_inf_nan=False)
    sample_rate: float = Field(gt=0.0, le=1.0)
    steps: int = Field(ge=0)
    delta: float = Field(gt=0.0, lt=1.0)
    neighbouring: Literal["add_remove_one"] = "add_remove_one"
    sampling: Literal["poisson"] = "poisson"
    level: Literal["user", "example"] = "user"
    recorded_at: AwareDatetime

    @property
    def entry(self) -> tuple[float, float, int]:
        """The release as an accountant history entry ``(σ, q, steps)``."""
        return (self.noise_multiplier, self.sample_rate, self.steps)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A recorded release and the cumulative ε right after it (ledger accountant, δ)."""

    release: Release
    epsilon_after: float


class PrivacyLedger:
    """Cumulative privacy accounting of one model on one edge.

    Parameters
    ----------
    model : str
        Model the ledger accounts for.
    delta : float
        δ of the cumulative guarantee reported for the whole history.
    accountant : {"prv", "rdp", "pld"}
        Accountant used for ``epsilon()`` and the budget check.
    budget : float or None
        Maximum cumulative ε (over every release, every round and run); ``None`` means
        no budget. A release that would exceed it is refused before it is recorded.
    """

    def __init__(
        self,
        *,
        model: str,
        delta: float,
        accountant: AccountantName = "prv",
        budget: float | None = None,
    ) -> None:
        _check_config(delta=delta, accountant=accountant, budget=budget)
        if not model:
            raise ValueError("model must be a non-empty name")
        self.model = model
        self.delta = delta
        self.accountant: AccountantName = accountant
        self.budget = budget
        self._entries: list[LedgerEntry] = []
        self._exhausted = False
        self._cache: dict[tuple[AccountantName, float, int], float] = {}
        self._last_would_be: tuple[tuple[Any, ...], float] | None = None

    # ------------------------------------------------------------------ reading
    @property
    def releases(self) -> tuple[Release, ...]:
        """Every recorded release, oldest first."""
        return tuple(e.release for e in self._entries)

    @property
    def entries(self) -> tuple[LedgerEntry, ...]:
        """Every recorded release with the cumulative ε after it."""
        return tuple(self._entries)

    @property
    def history(self) -> list[tuple[float, float, int]]:
        """The releases as an accountant history of ``(σ, q, steps)`` entries."""
        return [e.release.entry for e in self._entries]

    @property
    def exhausted(self) -> bool:
        """Whether a release has been refused because it would exceed the budget."""
        return self._exhausted

    def epsilon(self, *, accountant: AccountantName | None = None) -> float:
        """Return the cumulative ε over every recorded release at the ledger's δ.

        Parameters
        ----------
        accountant : {"prv", "rdp", "pld"} or None
            Accountant to use; the ledger's own when ``None``.

        Returns
        -------
        float
            0 with no releases; ``inf`` if any release had no noise.
        """
        name = accountant or self.accountant
        key = (name, self.delta, len(self._entries))
        if key not in self._cache:
            self._cache[key] = compute_epsilon(self.history, delta=self.delta, accountant=name)
        return self._cache[key]

    def epsilon_with(self, release: Release) -> float:
        """Return the cumulative ε the ledger would show after ``release``.

        Never below the current ε (numerical accountants such as PRV may otherwise
        wobble by their error margin when a tiny release is added).
        """
        self._check_release(release)
        history = [*self.history, release.entry]
        key = (self.accountant, self.delta, tuple(history))
        if self._last_would_be is not None and self._last_would_be[0] == key:
            return self._last_would_be[1]  # check-then-charge of the same release
        would_be = compute_epsilon(history, delta=self.delta, accountant=self.accountant)
        if self._entries:
            would_be = max(would_be, self.epsilon())
        self._last_would_be = (key, would_be)
        return would_be

    def would_exceed(self, release: Release) -> bool:
        """Whether recording ``release`` would take ε over the budget (no side effects)."""
        return self.budget is not None and self.epsilon_with(release) > self.budget

    # ------------------------------------------------------------------ writing
    def require_budget(self, release: Release) -> float:
        """Check that ``release`` fits the budget, without recording it.

        Returns
        -------
        float
            The cumulative ε the release would lead to.

        Raises
        ------
        BudgetExhaustedError
            If it would exceed the budget; the ledger is then marked exhausted.
        """
        would_be = self.epsilon_with(release)
        if self.budget is not None and would_be > self.budget:
            self._exhausted = True
            logger.warning(
                "privacy budget of model %s exhausted: release of round %d refused",
                self.model,
                release.round,
            )
            raise BudgetExhaustedError(
                model=self.model, spent=self.epsilon(), would_be=would_be, budget=self.budget
            )
        return would_be

    def charge(self, release: Release) -> float:
        """Record a release if it fits the budget.

        Parameters
        ----------
        release : Release
            The release to account; its model must be the ledger's.

        Returns
        -------
        float
            The cumulative ε after recording it.

        Raises
        ------
        BudgetExhaustedError
            If the release would exceed the budget; nothing is recorded.
        ValueError
            If the release is for another model.
        """
        would_be = self.require_budget(release)
        self._entries.append(LedgerEntry(release=release, epsilon_after=would_be))
        self._cache[(self.accountant, self.delta, len(self._entries))] = would_be
        logger.info(
            "charged model %s round %d: %d steps at sigma=%.3f q=%.4f, cumulative epsilon=%.3f",
            self.model,
            release.round,
            release.steps,
            release.noise_multiplier,
            release.sample_rate,
            would_be,
        )
        return would_be

    def _check_release(self, release: Release) -> None:
        if release.model != self.model:
            raise ValueError(
                f"release is for model {release.model!r}, ledger is for {self.model!r}"
            )

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Return the ledger as a JSON-able dict tagged with mechanism and version."""
        return {
            "mechanism": LEDGER_MECHANISM,
            "version": LEDGER_VERSION,
            "model": self.model,
            "delta": self.delta,
            "accountant": self.accountant,
            "budget": self.budget,
            "exhausted": self._exhausted,
            "entries": [
                {"release": e.release.model_dump(mode="json"), "epsilon_after": e.epsilon_after}
                for e in self._entries
            ],
        }

    def load_state_dict(self, state: dict[str, Any], *, keep_config: bool = False) -> None:
        """Replace the ledger's contents with a saved state.

        Parameters
        ----------
        state : dict
            A dict produced by ``state_dict`` for the same model.
        keep_config : bool
            Keep this ledger's δ, accountant and budget (the current configuration) and
            take only the releases from ``state``; the exhausted flag is kept only if the
            budget is unchanged, else it is re-derived from the current ε.

        Raises
        ------
        LedgerStateError
            If the state has another mechanism, version or model, or is malformed.
        """
        if state.get("mechanism") != LEDGER_MECHANISM:
            raise LedgerStateError(
                f"state of mechanism {state.get('mechanism')!r} cannot be loaded into a "
                f"{LEDGER_MECHANISM!r} ledger"
            )
        if state.get("version") != LEDGER_VERSION:
            raise LedgerStateError(
                f"ledger state version {state.get('version')!r} is not supported "
                f"(expected {LEDGER_VERSION})"
            )
        if state.get("model") != self.model:
            raise LedgerStateError(
                f"ledger state is for model {state.get('model')!r}, not {self.model!r}"
            )
        try:
            entries = [
                LedgerEntry(Release.model_validate(e["release"]), float(e["epsilon_after"]))
                for e in state["entries"]
            ]
            saved = (float(state["delta"]), state["accountant"], state["budget"])
            _check_config(delta=saved[0], accountant=saved[1], budget=saved[2])
            exhausted = bool(state["exhausted"])
        except (KeyError, TypeError, ValueError) as exc:
            raise LedgerStateError("ledger state is malformed") from exc
        self._entries = entries
        self._cache = {}
        self._last_would_be = None
        if not keep_config:
            self.delta, self.accountant, self.budget = saved
        if entries and (self.delta, self.accountant) == saved[:2]:
            # ε after the last release was computed with this δ and accountant: reuse it.
            self._cache[(self.accountant, self.delta, len(entries))] = entries[-1].epsilon_after
        if not keep_config or saved[2] == self.budget:
            self._exhausted = exhausted
        else:
            self._exhausted = self.budget is not None and self.epsilon() >= self.budget


def _check_config(*, delta: float, accountant: str, budget: float | None) -> None:
    """Validate a ledger's δ, accountant and budget (``ValueError`` naming the parameter)."""
    if not 0.0 < delta < 1.0:
        raise ValueError("delta must be in (0, 1)")
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"accountant must be one of {', '.join(ACCOUNTANTS)}")
    if budget is not None and not (budget > 0.0 and math.isfinite(budget)):
        raise ValueError("budget must be a positive finite ε or None")
