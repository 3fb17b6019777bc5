"""Multi-key files: one hex-encoded 32-byte key per line, mode 0600, rewritten atomically.

Shared by the master key ring files (``privacy.master_keys``) and the tenant key chain files
(``privacy.rekey``). ``#`` comment lines and blank lines are ignored. Reads refuse files that
group or others can access, malformed lines, repeated keys and placeholder keys (fewer than
8 distinct byte values, e.g. ``00…00``). Messages name the file and line, never key bytes.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from .errors import KeyFileError
from .hazmat.aead import KEY_BYTES

#: Fewest distinct byte values a key must have (refuses ``00…00``-style placeholders).
MIN_DISTINCT_BYTES = 8


def read_key_lines(path: Path, *, what: str) -> list[bytes]:
    """Return the keys of a multi-key file, in file order, after every check.

    Parameters
    ----------
    path : Path
        The file.
    what : str
        What the file is, for messages (``"master key file"``).

    Returns
    -------
    list[bytes]
        The 32-byte keys.

    Raises
    ------
    KeyFileError
        If the file is missing, unreadable, accessible by group or others, holds no key, a
        malformed line, a placeholder key or a key twice.
    """
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise KeyFileError(f"{what} {path} does not exist; create it first") from None
    except (OSError, UnicodeDecodeError):
        raise KeyFileError(f"{what} {path} cannot be read") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{what} {path} is accessible by group or others; run chmod 600")
    keys: list[bytes] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = bytes.fromhex(line)
        except ValueError:
            raise KeyFileError(f"{what} {path}: line {number} is not hex") from None
        if len(key) != KEY_BYTES:
            raise KeyFileError(f"{what} {path}: line {number} must hold {KEY_BYTES} bytes")
        if len(set(key)) < MIN_DISTINCT_BYTES:
            raise KeyFileError(f"{what} {path}: line {number} is a placeholder, not a random key")
        if key in keys:
            raise KeyFileError(f"{what} {path}: line {number} repeats a key")
        keys.append(key)
    if not keys:
        raise KeyFileError(f"{what} {path} holds no key")
    return keys


def create_key_lines(path: Path, keys: Sequence[bytes], *, what: str, header: str) -> None:
    """Write a new multi-key file (mode 0600), refusing to overwrite one.

    Parameters
    ----------
    path : Path
        Where to write; its folder is created.
    keys : Sequence[bytes]
        The keys, in file order.
    what : str
        What the file is, for messages.
    header : str
        A comment line (without ``#``) written first.

    Raises
    ------
    KeyFileError
        If the file exists or cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"{what} {path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create {what} {path}: {exc.strerror}") from None
    _write(fd, keys, header)


def replace_key_lines(path: Path, keys: Sequence[bytes], *, what: str, header: str) -> None:
    """Rewrite a multi-key file atomically (temporary file 0600, ``fsync``, ``os.replace``).

    Parameters
    ----------
    path : Path
        The file.
    keys : Sequence[bytes]
        The new keys, in file order.
    what : str
        What the file is, for messages.
    header : str
        A comment line (without ``#``) written first.

    Raises
    ------
    KeyFileError
        If the file cannot be rewritten.
    """
    temporary = path.with_name(path.name + ".tmp")
    try:
        temporary.unlink(missing_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        _write(fd, keys, header)
        os.replace(temporary, path)
    except OSError as exc:
        raise KeyFileError(f"cannot rewrite {what} {path}: {exc.strerror}") from None


def _write(fd: int, keys: Sequence[bytes], header: str) -> None:
    """Write the header and one hex key per line to ``fd``, flushed to disk; closes it."""
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(f"# {header}\n" + "".join(key.hex() + "\n" for key in keys))
        handle.flush()
        os.fsync(handle.fileno())
