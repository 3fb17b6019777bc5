"""Errors raised by the privacy room.

Hierarchy::

    PrivacyError
    ├── KeyFileError            a key file is missing, malformed or too widely readable
    ├── IdentifierError         an identifier cannot be normalised (no value is echoed)
    ├── BudgetExhaustedError    a release would exceed the configured privacy budget
    ├── LedgerStateError        a ledger state dict is of the wrong mechanism or version
    └── DecryptionError         opaque: any failure to decrypt or verify

No message carries raw text, identifiers or key material: only types, paths and counts.
"""

from __future__ import annotations


class PrivacyError(Exception):
    """Base class of every privacy-room error."""


class KeyFileError(PrivacyError):
    """A key file cannot be used; the message says what to do."""


class IdentifierError(PrivacyError):
    """An identifier of the given kind could not be normalised.

    Parameters
    ----------
    kind : str
        Identifier kind (``phone``, ``email``, ...); the value itself is never included.
    reason : str
        What is wrong, without the value.
    """

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        super().__init__(f"cannot normalise {kind}: {reason}")


class BudgetExhaustedError(PrivacyError):
    """A training release would take ε over the configured budget.

    Parameters
    ----------
    model : str
        Model whose ledger is exhausted.
    spent : float
        Cumulative ε already spent (before the refused release).
    would_be : float
        Cumulative ε had the release gone ahead.
    budget : float
        The configured budget.
    """

    def __init__(self, *, model: str, spent: float, would_be: float, budget: float) -> None:
        self.model = model
        self.spent = spent
        self.would_be = would_be
        self.budget = budget
        super().__init__(
            f"privacy budget for model {model!r} would be exceeded: spent ε={spent:.3f}, "
            f"next release would reach ε={would_be:.3f} > budget {budget:.3f}; training stopped"
        )


class LedgerStateError(PrivacyError):
    """A ledger state was produced by another mechanism or an unknown version."""


class DecryptionError(PrivacyError):
    """Decryption or verification failed. Deliberately opaque about the cause."""
