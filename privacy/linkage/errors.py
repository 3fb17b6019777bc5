"""Errors of keyed linkage encodings.

Hierarchy (below ``privacy.PrivacyError``)::

    PrivacyError
    ├── EncodingFormatError     an encoded-record line is not in the fedprofile CLK format
    └── EncodingMismatchError   two encodings were made under different keys or schemes

Messages carry paths, line numbers and field names only: never a value or an encoding.
"""

from __future__ import annotations

from ..errors import PrivacyError


class EncodingFormatError(PrivacyError):
    """An encoded-record line cannot be read.

    Parameters
    ----------
    source : str
        Where the line came from (a file name, or ``<memory>``).
    line : int
        1-based line number.
    reason : str
        What is wrong, without the line's content.
    """

    def __init__(self, source: str, line: int, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        super().__init__(f"{source} line {line}: {reason}")


class EncodingMismatchError(PrivacyError):
    """Two sets of encodings cannot be compared (different key, scheme or filter length)."""
