"""Errors of the PII sub-package; all are ``PrivacyError``s so entry points map them once.

Hierarchy::

    PrivacyError
    └── PIIConfigError              detector or recognizer configuration cannot be used
        ├── UnknownRecognizerError  no recognizer is registered under a name
        └── RecognizerExistsError   a name is already registered (pass ``force=True``)

Messages carry recognizer names and entity types only, never analysed text.
"""

from __future__ import annotations

from ..errors import PrivacyError


class PIIConfigError(PrivacyError):
    """The PII detector or a recognizer is configured in a way that cannot work.

    Parameters
    ----------
    problems : sequence of str
        Every problem found (reported together, one per item).
    """

    def __init__(self, problems: list[str] | tuple[str, ...]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


class UnknownRecognizerError(PIIConfigError, LookupError):
    """No recognizer is registered under the requested name.

    Parameters
    ----------
    name : str
        The requested name.
    known : sequence of str
        Registered names, listed in the message.
    """

    def __init__(self, name: str, known: list[str] | tuple[str, ...]) -> None:
        self.name = name
        self.known = tuple(sorted(known))
        super().__init__(
            [f"unknown PII recognizer {name!r}; known recognizers: {', '.join(self.known)}"]
        )


class RecognizerExistsError(PIIConfigError, ValueError):
    """A recognizer name is already taken and ``force`` was not given.

    Parameters
    ----------
    name : str
        The name that is already registered.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            [f"PII recognizer {name!r} is already registered; pass force=True to replace it"]
        )
