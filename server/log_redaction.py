"""What server logs must not show: subjects in paths and queries, pseudonyms anywhere.

A misbehaving client may put a raw identifier where a pseudonym belongs; the request is
refused (422) but a log line would still print the path. Pseudonyms are personal data too.
The access-log filter and the error handlers' log lines both pass through :func:`redact`.
"""

from __future__ import annotations

import re

#: A ``/subjects/<x>`` path segment (whatever a client put there), a ``subject=`` query value
#: (audit listing, console lookup), and a pseudonym anywhere else (console receipt paths).
_REDACTIONS = (
    (re.compile(r"/subjects/[^/?\s]+"), "/subjects/<subject>"),
    (re.compile(r"([?&]subject=)[^&\s]*"), r"\1<subject>"),
    (re.compile(r"ps_[0-9a-fA-F]{64}"), "<subject>"),
)


def redact(text: str) -> str:
    """Return ``text`` with subjects and pseudonyms replaced by ``<subject>``.

    Parameters
    ----------
    text : str
        A log message, path or query string.

    Returns
    -------
    str
        The text with every subject position redacted.
    """
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text
