"""Request body limits, enforced before anything parses the body or checks a token.

An ASGI middleware, so it runs before FastAPI reads the body: a ``Content-Length`` above the
limit is answered 413 at once, without reading a byte, and a body sent without a length
(chunked) is counted as it arrives and refused the moment it passes the limit. Callers
without credentials (no ``Authorization`` header, no console session cookie) get the small
anonymous limit: only enrollment and console sign-in reach the server that way, and their
bodies are a few hundred bytes. Hand-written because Starlette and uvicorn offer no body
limit (uvicorn's ``--limit-max-requests`` counts requests, not bytes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The console's session cookie (``server.console.session.SESSION_COOKIE``); named here so
#: the API room does not import the console.
CONSOLE_COOKIE = b"console_session="


def too_large_message(limit: int) -> str:
    """Return the one-line reason of a 413 (the limit, never the body)."""
    return (
        f"the request body exceeds this server's limit of {limit} bytes for this caller; "
        "send smaller batches (see docs/deploy.md, 'Limits')"
    )


class BodyTooLargeError(HTTPException):
    """The body passed the limit while it was being read.

    An ``HTTPException`` so that FastAPI, which turns other errors raised while it reads a
    body into 400, lets it through to the app's handler (413 ``body_too_large``).
    """

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=too_large_message(limit))


def _credentialed(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the request carries a bearer header or a console session cookie."""
    for name, value in headers:
        if name == b"authorization" and value:
            return True
        if name == b"cookie" and CONSOLE_COOKIE in value:
            return True
    return False


def _header(headers: list[tuple[bytes, bytes]], wanted: bytes) -> bytes | None:
    for name, value in headers:
        if name == wanted:
            return value
    return None


def _error(status: int, code: str, message: str, limit: int) -> tuple[dict[str, Any], bytes]:
    body = json.dumps({"error": code, "message": message, "limit_bytes": limit}).encode()
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, body


class BodyLimitMiddleware:
    """Refuse request bodies above ``limit`` bytes (``anonymous_limit`` without credentials).

    Parameters
    ----------
    app : ASGIApp
        The wrapped application.
    limits : Callable[[], tuple[int, int]]
        Returns the largest body a credentialed caller and a caller without credentials may
        send, read per request (the app's settings are known only once it has started).
    """

    def __init__(self, app: ASGIApp, *, limits: Callable[[], tuple[int, int]]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the bytes as the app reads them."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        credentialed_limit, anonymous_limit = self.limits()
        limit = credentialed_limit if _credentialed(headers) else anonymous_limit
        declared = _header(headers, b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                await self._answer(
                    send,
                    400,
                    "invalid_request",
                    "Content-Length is not a non-negative integer",
                    limit,
                )
                return
            if length > limit:
                await self._answer(send, 413, "body_too_large", too_large_message(limit), limit)
                return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except BodyTooLargeError:
            if started:
                raise
            await self._answer(send, 413, "body_too_large", too_large_message(limit), limit)

    @staticmethod
    async def _answer(send: Send, status: int, code: str, message: str, limit: int) -> None:
        start, body = _error(status, code, message, limit)
        await send(start)
        await send({"type": "http.response.body", "body": body})
