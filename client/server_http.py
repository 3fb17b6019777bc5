"""The edge's HTTP client to the server: one place for base URL, time-outs and TLS set-up.

Every edge command that talks to the server (sync, the subject-event feed, model fetches,
re-keying) opens its connection pool here, so they share the API prefix, the time-out
setting, the user agent and the actionable error for a broken CA bundle.
"""

from __future__ import annotations

import httpx

from models import API_PREFIX

from .config import ClientSettings
from .errors import EdgeConfigError

#: User agent of every edge request (no host or version details beyond the product).
USER_AGENT = "fedprofile-edge/0.1"


def server_client(
    settings: ClientSettings,
    *,
    transport: httpx.BaseTransport | None = None,
    token: str | None = None,
) -> httpx.Client:
    """Return an HTTP client for the server's ``/api/v1`` (with ``token`` as bearer, if given).

    Parameters
    ----------
    settings : ClientSettings
        Server URL and time-out.
    transport : httpx.BaseTransport or None
        Transport (tests bind one to the app); ``None`` for the network.
    token : str or None
        Bearer token sent with every request.

    Raises
    ------
    EdgeConfigError
        If HTTPS cannot be set up (e.g. ``SSL_CERT_FILE`` names a missing CA bundle).
    """
    headers = {"User-Agent": USER_AGENT}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        return httpx.Client(
            base_url=settings.server_url + API_PREFIX,
            transport=transport,
            timeout=settings.http_timeout,
            headers=headers,
        )
    except (OSError, ValueError) as exc:
        raise EdgeConfigError(
            f"cannot set up HTTPS to the server ({type(exc).__name__}): check SSL_CERT_FILE "
            "/ SSL_CERT_DIR point at a readable CA bundle"
        ) from None
