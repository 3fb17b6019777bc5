r"""Refuse text no database column can hold: NUL characters and unpaired UTF-16 surrogates.

PostgreSQL refuses a NUL in any text value and psycopg cannot encode a lone surrogate, so
such a request used to reach the database and come back as a 5xx (and SQLite stored it).
This dependency of every API route looks once at the raw path, query and JSON body — the
only ways a character reaches an id, a name or a value — and answers 422
``invalid_request`` naming where, never the text. JSON can carry these characters only as
``\u0000`` / ``\udXXX`` escapes, so the body is scanned as bytes, not parsed twice.
"""

from __future__ import annotations

import re

from fastapi import Request
from fastapi.exceptions import RequestValidationError

#: A ``\\u`` escape of NUL or of a surrogate, with the backslashes that precede it.
_ESCAPE = re.compile(rb"(\\+)u(0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_PERCENT_NUL = re.compile(rb"%00")


def _is_high(code: bytes) -> bool:
    return code[1:2] in b"89abAB"


def unsafe_json_text(raw: bytes) -> str | None:
    """Return what is wrong with the strings of a JSON document, or ``None``.

    Parameters
    ----------
    raw : bytes
        The JSON document as sent.

    Returns
    -------
    str or None
        ``"NUL character"`` or ``"unpaired surrogate"``; ``None`` when every escape is fine.
    """
    if b"\\u" not in raw and b"\x00" not in raw:
        return None
    if b"\x00" in raw:
        return "NUL character"
    pending_high_end = -1  # end offset of a high surrogate still waiting for its low half
    for match in _ESCAPE.finditer(raw):
        if len(match.group(1)) % 2 == 0:  # "\\u0000" is a backslash then text, not an escape
            if pending_high_end >= 0:
                return "unpaired surrogate"
            continue
        code = match.group(2)
        if code == b"0000":
            return "NUL character"
        start = match.start(1) + len(match.group(1)) - 1
        if _is_high(code):
            if pending_high_end >= 0:
                return "unpaired surrogate"
            pending_high_end = match.end()
            continue
        if pending_high_end != start:  # a low surrogate not right after a high one
            return "unpaired surrogate"
        pending_high_end = -1
    if pending_high_end >= 0:
        return "unpaired surrogate"
    return None


def _refuse(location: str, problem: str) -> RequestValidationError:
    return RequestValidationError(
        [
            {
                "loc": (location,),
                "msg": f"{problem} in the {location}: such text cannot be stored",
                "type": "unsafe_text",
            }
        ]
    )


async def refuse_unsafe_text(request: Request) -> None:
    """Refuse a request whose path, query or JSON body holds a NUL or a lone surrogate.

    Raises
    ------
    RequestValidationError
        422 ``invalid_request`` naming the part (path, query, body), without its content.
    """
    scope = request.scope
    raw_path: bytes = scope.get("raw_path") or scope.get("path", "").encode("utf-8", "replace")
    if _PERCENT_NUL.search(raw_path) or "\x00" in scope.get("path", ""):
        raise _refuse("path", "NUL character")
    if _PERCENT_NUL.search(scope.get("query_string", b"")):
        raise _refuse("query", "NUL character")
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        content_type = request.headers.get("content-type", "")
        if "json" in content_type:
            problem = unsafe_json_text(await request.body())
            if problem is not None:
                raise _refuse("body", problem)
