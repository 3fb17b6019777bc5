"""Who is calling: the ``Principal`` a bearer token resolves to."""

from __future__ import annotations

from dataclasses import dataclass

from .tables.token import Role


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    Parameters
    ----------
    role : Role
        What the caller may do.
    edge_id : str or None
        The edge's id when ``role`` is ``edge``.
    channel : str or None
        The edge's channel when ``role`` is ``edge``.
    name : str or None
        The holder's name for named tokens (officers, analysts, agents issued by an admin);
        two approvals of one erasure must come from two different names.
    subject : str or None
        The pseudonym a ``subject`` token is bound to (self-service acts only on it).
    token_id : str or None
        The id of the stored token the caller presented (``None`` for static tokens).
    """

    role: Role
    edge_id: str | None = None
    channel: str | None = None
    name: str | None = None
    subject: str | None = None
    token_id: str | None = None

    def __post_init__(self) -> None:
        if self.role is Role.EDGE and self.edge_id is None:
            raise ValueError("edge_id is required when role is 'edge'")
        if self.role is Role.SUBJECT and self.subject is None:
            raise ValueError("subject is required when role is 'subject'")

    @property
    def actor(self) -> str:
        """The audit log's name for the caller.

        ``edge:<id>`` for edges, ``subject`` for data subjects (the pseudonym is recorded
        separately, as a salted reference), ``<role>:<name>`` for named tokens and the bare
        role for the static admin / agent tokens.
        """
        if self.edge_id is not None:
            return f"edge:{self.edge_id}"
        if self.role is Role.SUBJECT:
            return "subject"
        if self.name is not None:
            return f"{self.role.value}:{self.name}"
        return self.role.value

    def require_edge_id(self) -> str:
        """Return the edge id, or raise ``ValueError`` if the caller is not an edge."""
        if self.edge_id is None:
            raise ValueError("this operation needs an edge principal")
        return self.edge_id
