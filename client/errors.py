"""Errors raised by the client room (the edge runtime).

Hierarchy::

    ClientError
    ├── EdgeNotInitialisedError   the edge directory has no initialised store (run ``edge init``)
    ├── EdgeConfigError           settings or edge metadata are inconsistent or unsafe
    ├── LearningDataError         a federated round finds no usable data (says what to set)
    ├── InputFileError            an input file cannot be read as a whole (missing, unsupported)
    ├── ScrubberUnavailableError  the PII detector cannot be built, so messages cannot be masked
    ├── RegistrationError         the server refused (or could not answer) a registration
    ├── ServerUnavailableError    the server did not answer; queued uploads stay pending
    └── UploadRefusedError        the server refused an upload or the edge's credentials

Messages carry paths, counts, field names, reason codes and HTTP statuses only: never raw
input lines, identifiers, message text or profile values (privacy invariant 7).
"""

from __future__ import annotations

from pathlib import Path


class ClientError(Exception):
    """Base class of every client-room error."""


class EdgeNotInitialisedError(ClientError):
    """The edge directory holds no initialised edge.

    Parameters
    ----------
    edge_dir : Path
        The directory that was expected to hold the edge.
    """

    def __init__(self, edge_dir: Path) -> None:
        self.edge_dir = Path(edge_dir)
        super().__init__(
            f"no edge initialised in {self.edge_dir}; run "
            f"'fedprofile edge init --edge-dir {self.edge_dir} --name NAME --channel CH' first"
        )


class EdgeConfigError(ClientError):
    """Settings or stored edge metadata are inconsistent or unsafe; the message says what."""


class LearningDataError(ClientError):
    """A federated round cannot find usable data on this edge; the message says what to set.

    Parameters
    ----------
    reason : str
        What is missing and how to provide it (paths, keys and counts only).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class InputFileError(ClientError):
    """An input file cannot be ingested at all (single bad lines never raise this).

    Parameters
    ----------
    path : Path
        The input file.
    reason : str
        What is wrong and how to fix it (no file content).
    """

    def __init__(self, path: Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot ingest {self.path}: {reason}")


class ScrubberUnavailableError(ClientError):
    """The PII detector could not be built, so customer messages cannot be masked."""


class RegistrationError(ClientError):
    """Registering the edge with the server failed.

    Parameters
    ----------
    reason : str
        What went wrong (HTTP status or error code, never the token).
    status : int or None
        The HTTP status, when the server answered.
    """

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        super().__init__(f"edge registration failed: {reason}")


class ServerUnavailableError(ClientError):
    """The server could not be reached or answered with a server error.

    Parameters
    ----------
    server_url : str
        The server's base URL.
    pending : int
        Uploads that stay queued on the edge for the next sync.
    """

    def __init__(self, server_url: str, *, pending: int = 0) -> None:
        self.server_url = server_url
        self.pending = pending
        super().__init__(
            f"server {server_url} is unavailable; {pending} upload(s) stay queued on the edge, "
            "run 'fedprofile edge sync' again later"
        )


class UploadRefusedError(ClientError):
    """The server refused the edge's credentials or an upload as a whole.

    Parameters
    ----------
    reason : str
        Stable reason code or HTTP status description.
    status : int or None
        The HTTP status, when the server answered.
    """

    def __init__(self, reason: str, *, status: int | None = None) -> None:
        self.reason = reason
        self.status = status
        super().__init__(f"upload refused by the server: {reason}")
