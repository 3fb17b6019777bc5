"""Errors raised by the server room.

Hierarchy::

    ServerError
    ├── SettingsError               the environment holds invalid settings
    ├── DatabaseError               the database is unreachable or not migrated
    ├── AuthError
    │   ├── UnauthenticatedError    missing, unknown or revoked bearer token (401, opaque)
    │   ├── ForbiddenError          a valid principal without the required role (403)
    │   └── EnrollmentDisabledError registration without a configured enrollment token (403)
    ├── NotFoundError               an edge or subject the server does not know (404)
    ├── ConflictError               a write that collides with stored state (409)
    │   ├── EdgeNameTakenError      an edge name that is already registered
    │   ├── IdempotencyConflictError  an idempotency key reused with a different body
    │   └── RequestStateError       a data-subject request transition the rules refuse
    ├── RequestInvalidError         a data-subject request that cannot be carried out (422)
    ├── IdentityDecisionError       an identity merge / detach / undo that cannot apply (422)
    ├── InvalidCursorError          a subject-event feed cursor this server did not issue (422)
    └── ConsentRefusedError         an upload with refused fields; nothing stored (403)

Messages carry ids, field names, reason codes and counts only: never profile values, raw
identifiers or secrets. ``server.api.errors`` maps each class to an HTTP status and a stable
error code; the CLI maps ``ServerError`` to an exit code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class ServerError(Exception):
    """Base class of every server-room error."""

    #: Stable machine-readable code (the ``error`` member of HTTP error bodies).
    code = "server_error"


class SettingsError(ServerError):
    """The environment holds invalid settings.

    Parameters
    ----------
    problems : Sequence[str]
        One line per problem (setting name and rule, no values).
    """

    code = "invalid_settings"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid FEDPROFILE_* settings: " + "; ".join(self.problems))


class DatabaseError(ServerError):
    """The database cannot be used (unreachable, or its schema is not migrated)."""

    code = "database_unavailable"


class ServerBusyError(ServerError):
    """Every database slot of this worker is taken and the request waited its limit.

    Parameters
    ----------
    retry_after : int
        Seconds the client should wait before retrying (sent as ``Retry-After``).
    """

    code = "server_busy"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"the server is at its concurrency limit; retry after {retry_after} s "
            "(see docs/deploy.md, 'Capacity')"
        )


class AuthError(ServerError):
    """Base class of authentication and authorisation failures."""

    code = "unauthorized"


class UnauthenticatedError(AuthError):
    """No usable bearer token: missing, unknown, revoked or disabled; one opaque message."""

    code = "unauthorized"

    def __init__(self, message: str = "missing or invalid bearer token") -> None:
        super().__init__(message)


class TooManyFailedLoginsError(AuthError):
    """The client sent too many wrong tokens recently and is locked out for a while.

    Parameters
    ----------
    retry_after : int
        Seconds until the lockout ends (sent as ``Retry-After``).
    """

    code = "too_many_failed_logins"

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"too many failed authentications from this client; retry after {retry_after} s"
        )


class ForbiddenError(AuthError):
    """The caller is authenticated but its role may not use this route.

    Parameters
    ----------
    role : str
        The caller's role.
    allowed : Sequence[str]
        Roles the route accepts.
    """

    code = "forbidden"

    def __init__(self, *, role: str, allowed: Sequence[str]) -> None:
        self.role = role
        self.allowed = list(allowed)
        super().__init__(f"role {role!r} may not use this route; allowed: {', '.join(allowed)}")


class EnrollmentDisabledError(AuthError):
    """An enrollment token was presented but the server has none configured."""

    code = "enrollment_disabled"

    def __init__(self) -> None:
        super().__init__(
            "edge enrollment by token is disabled: set FEDPROFILE_ENROLLMENT_TOKEN "
            "or register the edge with an admin bearer token"
        )


class NotFoundError(ServerError):
    """A resource the server does not hold.

    Parameters
    ----------
    kind : str
        What was looked for (``"edge"``, ``"subject"``).
    ref : str
        Its id or pseudonym, kept for the server's own use: the message never repeats it,
        because a caller may have put a phone number or a name where an id belongs.
    """

    code = "not_found"

    def __init__(self, *, kind: str, ref: str) -> None:
        self.kind = kind
        self.ref = ref
        super().__init__(f"{kind} not found")


class ConflictError(ServerError):
    """A write that collides with stored state."""

    code = "conflict"


class EdgeNameTakenError(ConflictError):
    """An edge name that is already registered.

    Parameters
    ----------
    name : str
        The edge name.
    """

    code = "edge_name_taken"

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__("this edge name is already registered; choose another name")


class IdempotencyConflictError(ConflictError):
    """An idempotency key reused for a different request body."""

    code = "idempotency_conflict"

    def __init__(self) -> None:
        super().__init__(
            "this Idempotency-Key was already used with a different request; use a new key"
        )


@dataclass(frozen=True)
class Refusal:
    """One refused field of an upload.

    Parameters
    ----------
    field : str
        Field name.
    reason : str
        Stable reason code (``consent.DecisionReason`` values, ``invalid_value``,
        ``duplicate_field``).
    message : str
        One line naming the field and rule, never the value.
    """

    field: str
    reason: str
    message: str


class ConsentRefusedError(ServerError):
    """An upload in which at least one field was refused; nothing was stored.

    Parameters
    ----------
    refused : Sequence[Refusal]
        Every refused field (all problems are reported at once).
    total : int
        Number of fields in the upload.
    """

    code = "consent_refused"

    def __init__(self, *, refused: Sequence[Refusal], total: int) -> None:
        self.refused = list(refused)
        self.total = total
        super().__init__(f"{len(self.refused)} of {total} field(s) refused; nothing was stored")


class FieldValueRefusedError(ConsentRefusedError):
    """An upload with a malformed field; nothing was stored (422).

    Wrong type or range, an uncatalogued explanation, an identifier-shaped text, or a
    ``computed_at`` in the future.
    """

    code = "invalid_field_value"


class RequestStateError(ConflictError):
    """A data-subject request transition the workflow refuses (409).

    Parameters
    ----------
    message : str
        One line naming the rule (states, action, counts; never personal data).
    reason : str
        ``consent.DSRTransitionError`` code: ``invalid_transition``, ``duplicate_approval`` or
        ``reason_required``.
    """

    code = "dsr_state"

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class RequestInvalidError(ServerError):
    """A data-subject request that is malformed or cannot be carried out (422).

    Parameters
    ----------
    message : str
        One line saying what to fix (field names and rules, never values).
    """

    code = "dsr_invalid"


class IdentityDecisionError(ServerError):
    """An officer's identity decision that cannot apply (422).

    For example a merge of a pseudonym with itself, or an undo of an undone decision.

    Parameters
    ----------
    message : str
        One line saying what to fix (ids and rules, never identifiers).
    """

    code = "identity_decision_invalid"


class InvalidCursorError(ServerError):
    """A subject-event feed cursor this server did not issue (422)."""

    code = "invalid_cursor"
