"""Errors raised by the consent room.

Hierarchy::

    ConsentError
    ├── CatalogueError              the field catalogue or purpose list is invalid
    │   └── PurposeListError        the purpose list (purposes.yaml) is invalid
    ├── PurposeNotRegisteredError   a purpose name that is not in the purpose list
    ├── FieldNotCataloguedError     a field name that is not in the field catalogue
    └── NoticeError                 a notice version is malformed or used inconsistently

Messages carry names, purposes and counts only, never profile values or identifiers.
"""

from __future__ import annotations


class ConsentError(Exception):
    """Base class of every consent-room error."""


class CatalogueError(ConsentError):
    """The catalogue data failed validation; ``problems`` lists every problem found.

    Parameters
    ----------
    problems : list[str]
        One human-readable line per problem.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            f"field catalogue is invalid ({len(problems)} problem(s)): " + "; ".join(problems)
        )


class PurposeNotRegisteredError(ConsentError):
    """A purpose that the purpose list does not declare.

    Parameters
    ----------
    purpose : str
        The unknown purpose name.
    known : list[str]
        The registered purposes, listed in the message so the caller can fix the call.
    """

    def __init__(self, purpose: str, *, known: list[str]) -> None:
        self.purpose = purpose
        self.known = list(known)
        super().__init__(
            f"purpose {purpose!r} is not registered; known purposes: {', '.join(known)}"
        )


class FieldNotCataloguedError(ConsentError):
    """A profile field that the field catalogue does not declare.

    Parameters
    ----------
    field : str
        The unknown field name.
    """

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(f"field {field!r} is not in the field catalogue")


class PurposeListError(CatalogueError):
    """The purpose list failed validation; ``problems`` lists every problem found.

    Parameters
    ----------
    problems : list[str]
        One human-readable line per problem.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        self.args = (
            f"purpose list is invalid ({len(problems)} problem(s)): " + "; ".join(problems),
        )


class NoticeError(ConsentError):
    """Notice versions used inconsistently.

    For example one version label published twice, or a grant recorded under a version
    that a material notice has replaced.

    Parameters
    ----------
    message : str
        What is wrong, naming versions and purposes only.
    """
