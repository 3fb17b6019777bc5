"""Sending an edge's re-keying batches to the server: ``POST /api/v1/edges/me/rekey``.

``client.rekey`` drives the rotation through the ``RekeyTransport`` protocol, so tests pass
fakes (failing, slow) without inheritance. The HTTP transport carries the edge's bearer token
and maps answers to client-room errors whose messages hold status codes, error codes, counts
and pseudonyms only.
"""

from __future__ import annotations

from typing import Protocol

import httpx
from pydantic import ValidationError

from models import RekeyBatch, RekeyBatchResult

from .config import ClientSettings
from .credentials import load_credentials
from .errors import ServerUnavailableError, UploadRefusedError
from .server_http import server_client


class RekeyTransport(Protocol):
    """Sends one batch of pairs to the server and returns its answer."""

    def send(self, batch: RekeyBatch) -> RekeyBatchResult:
        """Apply ``batch`` on the server (raise on anything but a 2xx answer)."""
        ...


class HttpRekeyTransport:
    """``POST /api/v1/edges/me/rekey`` with the edge's bearer token.

    Parameters
    ----------
    settings : ClientSettings
        Server URL and timeout.
    token : str
        The edge's bearer token (never logged).
    transport : httpx.BaseTransport or None
        HTTP transport; tests pass one bound to an app.
    """

    def __init__(
        self, *, settings: ClientSettings, token: str, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._url = settings.server_url
        self._http = server_client(settings, transport=transport, token=token)

    def __repr__(self) -> str:
        return f"HttpRekeyTransport(server={self._url!r})"

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def send(self, batch: RekeyBatch) -> RekeyBatchResult:
        """Send one batch.

        Parameters
        ----------
        batch : RekeyBatch
            Key ids and pairs.

        Returns
        -------
        RekeyBatchResult
            The server's counts.

        Raises
        ------
        ServerUnavailableError
            If the server cannot be reached or answers 5xx (re-run later: nothing is lost).
        UploadRefusedError
            If the server refuses the credentials (401/403) or the batch (409 conflict, 422).
        """
        try:
            response = self._http.post("/edges/me/rekey", json=batch.model_dump(mode="json"))
        except httpx.TransportError:
            raise ServerUnavailableError(self._url) from None
        if response.status_code >= 500:
            raise ServerUnavailableError(self._url)
        if not response.is_success:
            raise UploadRefusedError(_refusal(response), status=response.status_code)
        try:
            return RekeyBatchResult.model_validate_json(response.content)
        except ValidationError:
            raise UploadRefusedError("the server's answer is not a rekey result") from None


def _refusal(response: httpx.Response) -> str:
    """Return the server's error code and message (they hold pseudonyms and counts only)."""
    try:
        body = response.json()
        return f"HTTP {response.status_code} {body.get('error')}: {body.get('message')}"
    except (ValueError, AttributeError):
        return f"HTTP {response.status_code}"


def rekey_transport(
    settings: ClientSettings, *, transport: httpx.BaseTransport | None = None
) -> HttpRekeyTransport | None:
    """Return the HTTP transport for a registered edge, or None for an unregistered one.

    Parameters
    ----------
    settings : ClientSettings
        Server URL, timeout and the credentials path.
    transport : httpx.BaseTransport or None
        HTTP transport (tests).

    Returns
    -------
    HttpRekeyTransport or None
        The transport; None when the edge holds no credentials.

    Raises
    ------
    EdgeConfigError
        If the credentials file is unreadable.
    """
    credential = load_credentials(settings.credentials_path)
    if credential is None:
        return None
    return HttpRekeyTransport(settings=settings, token=credential.token, transport=transport)
