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
    """

    role: Role
    edge_id: str | None = None
    channel: str | None = None

    def __post_init__(self) -> None:
        if self.role is Role.EDGE and self.edge_id is None:
            raise ValueError("edge_id is required when role is 'edge'")

    @property
    def actor(self) -> str:
        """The audit log's name for the caller: ``edge:<id>``, ``agent`` or ``admin``."""
        if self.edge_id is not None:
            return f"edge:{self.edge_id}"
        return self.role.value

    def require_edge_id(self) -> str:
        """Return the edge id, or raise ``ValueError`` if the caller is not an edge."""
        if self.edge_id is None:
            raise ValueError("this operation needs an edge principal")
        return self.edge_id
