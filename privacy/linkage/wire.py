"""The JSON-lines form of encoded records: what an edge writes and the server reads.

One JSON object per record::

    {"id":"c-17","v":1,"k":"⠗⠅⢬⡅⠺⠭⠯⡿","c":{"⡠⠂⠃⣿":"⠀⡀⠀⠂...","⢁⠤⠐⡀":null}}

- ``id``: the edge's own record id, copied as is (use a pseudonym, not a raw identifier);
- ``v``: format version (1);
- ``k``: key id, a keyed value naming the linkage key and scheme; files encoded under
  different keys are refused rather than compared;
- ``c``: one filter per field, keyed by the field's *label* (a keyed value of the field's
  name and kind, so the server cannot even tell a name column from an address column);
  ``null`` where the value is missing (neither agreement nor disagreement).

Filters, labels and key ids are Braille patterns (``braille``); every other member name is
at most two characters long. So the only text of an encoded line besides the id is
``{"":,}``, ``v``, ``k``, ``c``, ``1`` and ``null``: no raw value of three or more characters
can occur in it, even by chance.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from .braille import braille_decode, braille_encode
from .encoder import EncodedRecord
from .errors import EncodingFormatError

#: The ``v`` member of every encoded record (format version).
FORMAT_VERSION = 1


def encoded_json_line(record: EncodedRecord) -> str:
    """Return one record as a JSON line (without the newline)."""
    clks = {
        label: None if clk is None else braille_encode(clk) for label, clk in record.clks.items()
    }
    body = {"id": record.id, "v": FORMAT_VERSION, "k": braille_encode(record.key_id), "c": clks}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _record(body: Any, source: str, number: int) -> EncodedRecord:
    """Validate one decoded JSON object (messages never quote its content)."""
    if not isinstance(body, dict) or body.get("v") != FORMAT_VERSION:
        raise EncodingFormatError(
            source, number, f"not an encoded record of format version {FORMAT_VERSION}"
        )
    record_id, kid, clks = body.get("id"), body.get("k"), body.get("c")
    if not isinstance(record_id, str | int) or not isinstance(kid, str):
        raise EncodingFormatError(source, number, "id or key id (k) is missing")
    if not isinstance(clks, dict) or not clks:
        raise EncodingFormatError(source, number, "c must be an object of field encodings")
    decoded: dict[str, bytes | None] = {}
    try:
        key_id = braille_decode(kid)
        for label, clk in clks.items():
            if clk is not None and not isinstance(clk, str):
                raise ValueError(label)
            braille_decode(label)
            decoded[label] = None if clk is None else braille_decode(clk)
    except ValueError:
        raise EncodingFormatError(source, number, "an encoding is not Braille-coded") from None
    return EncodedRecord(id=str(record_id), key_id=key_id, clks=decoded)


def parse_encoded_lines(
    lines: Iterable[str], *, source: str = "<memory>"
) -> Iterator[EncodedRecord]:
    """Parse encoded-record JSON lines (blank lines are skipped).

    Parameters
    ----------
    lines : Iterable[str]
        The lines.
    source : str
        Name used in error messages.

    Yields
    ------
    EncodedRecord
        One per non-blank line.

    Raises
    ------
    EncodingFormatError
        On the first line that is not an encoded record (line number only, no content).
    """
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except json.JSONDecodeError:
            raise EncodingFormatError(source, number, "not valid JSON") from None
        yield _record(body, source, number)


def read_encoded_file(path: Path) -> list[EncodedRecord]:
    """Read a file written by ``fedprofile identity encode``.

    Parameters
    ----------
    path : Path
        A UTF-8 JSON-lines file.

    Returns
    -------
    list of EncodedRecord
        Its records, in file order.

    Raises
    ------
    EncodingFormatError
        If the file is missing, not UTF-8, or holds a line that is not an encoded record.
    """
    try:
        with path.open(encoding="utf-8") as handle:
            return list(parse_encoded_lines(handle, source=path.name))
    except FileNotFoundError:
        raise EncodingFormatError(path.name, 0, "file does not exist") from None
    except UnicodeDecodeError:
        raise EncodingFormatError(path.name, 0, "file is not UTF-8 text") from None
