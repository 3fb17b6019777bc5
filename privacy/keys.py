"""Tenant key files: created with owner-only permissions and refused when exposed.

The pseudonymisation key is held by edges (or a key-custody process), never by the server
(privacy invariant 4). Key files hold 32 random bytes, hex-encoded, mode 0600.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from .errors import KeyFileError

KEY_BYTES = 32


def create_key_file(path: Path) -> bytes:
    """Create a new random key file with mode 0600 and return the key.

    Parameters
    ----------
    path : Path
        Where to write; must not exist.

    Returns
    -------
    bytes
        The new 32-byte key.

    Raises
    ------
    KeyFileError
        If the file already exists (keys are never overwritten) or cannot be written.
    """
    key = secrets.token_bytes(KEY_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(f"key file {path} already exists; refusing to overwrite it") from None
    except OSError as exc:
        raise KeyFileError(f"cannot create key file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key.hex() + "\n")
    return key


def load_key_file(path: Path) -> bytes:
    """Read a key file, refusing files that group or others can read.

    Parameters
    ----------
    path : Path
        The key file.

    Returns
    -------
    bytes
        The key.

    Raises
    ------
    KeyFileError
        If the file is missing, malformed, or readable by group/others (fix with
        ``chmod 600``).
    """
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} does not exist; create it first") from None
    except (OSError, UnicodeDecodeError):
        raise KeyFileError(f"key file {path} cannot be read") from None
    _check_mode(path, mode)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(f"key file {path} is not hex-encoded") from None
    if len(key) != KEY_BYTES:
        raise KeyFileError(f"key file {path} must hold {KEY_BYTES} bytes")
    return key


def _check_mode(path: Path, mode: int) -> None:
    """Refuse a key file that group or others may access (POSIX only)."""
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"key file {path} is accessible by group or others; run chmod 600")


def check_private_mode(path: Path) -> None:
    """Raise ``KeyFileError`` unless ``path`` is readable by its owner only.

    Raises
    ------
    KeyFileError
        If the file is missing or group/others may access it.
    """
    try:
        mode = path.stat().st_mode
    except OSError:
        raise KeyFileError(f"key file {path} cannot be read") from None
    _check_mode(path, mode)


def load_or_create_key_file(path: Path) -> bytes:
    """Load the key at ``path``, creating it first if it does not exist."""
    if not path.exists():
        return create_key_file(path)
    return load_key_file(path)
