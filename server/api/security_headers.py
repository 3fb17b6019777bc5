"""Security headers on every response: the console's CSP, no framing, no sniffing, no referrer.

The console serves only its own stylesheet and script (no inline script or style, no
third-party origin), so its policy admits ``'self'`` alone; API answers are JSON and get a
policy that admits nothing. A response that already set a header keeps its own value.
Hand-written as a few lines of ASGI rather than a dependency: the headers are fixed.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Policy of console pages: own scripts, styles and images only; forms post back to us.
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
#: Policy of API answers (JSON): nothing may load.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"

_COMMON = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class SecurityHeadersMiddleware:
    """Add the security headers to each HTTP response.

    Parameters
    ----------
    app : ASGIApp
        The wrapped application.
    console_prefix : str
        Path prefix of the console (its pages get :data:`CONSOLE_CSP`).
    """

    def __init__(self, app: ASGIApp, *, console_prefix: str) -> None:
        self.app = app
        self.console_prefix = console_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through; add the headers to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        csp = CONSOLE_CSP if path.startswith(self.console_prefix) else API_CSP
        added = (*_COMMON, (b"content-security-policy", csp.encode()))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in added if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
