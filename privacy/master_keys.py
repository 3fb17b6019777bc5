"""Master key ring files: created 0600, refused when exposed or a placeholder, rotated in place.

A master key file holds one hex-encoded 32-byte key per line, the **primary** (wrapping) key
first, like ``MultiFernet``'s list (format and checks: ``privacy.key_lines``). Rotation is two
steps so that no data key is ever stranded:

1. :func:`add_master_key` puts a new random primary key in front of the others;
2. after every wrapped data key has been re-wrapped under it (the server's
   ``rotate_master_key``), :func:`retire_master_keys` removes the older keys.

Retiring a key removes it from this file only: copies elsewhere (backups of the file, editor
swap files) must be destroyed by the operator, and a file system may keep the old blocks; a
KMS or HSM gives stronger destruction guarantees (``docs/keys.md``).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .errors import KeyFileError
from .hazmat.aead import KEY_BYTES
from .key_lines import create_key_lines, read_key_lines, replace_key_lines
from .keyring import MasterKey, MasterKeyRing

logger = logging.getLogger(__name__)

_WHAT = "master key file"
_HEADER = "fedprofile master keys, primary first; keep mode 0600 and out of database backups"


def create_master_key_file(path: Path) -> MasterKeyRing:
    """Create a master key file holding one new random key (mode 0600).

    Parameters
    ----------
    path : Path
        Where to write; must not exist (its folder is created).

    Returns
    -------
    MasterKeyRing
        A ring of the new key.

    Raises
    ------
    KeyFileError
        If the file exists (keys are never overwritten) or cannot be written.
    """
    secret = os.urandom(KEY_BYTES)
    create_key_lines(path, [secret], what=_WHAT, header=_HEADER)
    ring = MasterKeyRing([MasterKey(secret)])
    logger.info("created master key file %s (kid %s)", path, ring.primary.kid)
    return ring


def load_master_key_file(path: Path) -> MasterKeyRing:
    """Read a master key file, refusing exposed, malformed and placeholder keys.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    MasterKeyRing
        Its keys, primary first.

    Raises
    ------
    KeyFileError
        If the file is missing, readable by group or others (``chmod 600``), malformed,
        empty, or holds a placeholder key or a key twice.
    """
    return MasterKeyRing([MasterKey(key) for key in read_key_lines(path, what=_WHAT)])


def add_master_key(path: Path) -> MasterKeyRing:
    """Rotation step 1: put a new random primary key in front of the file's keys.

    Parameters
    ----------
    path : Path
        An existing master key file.

    Returns
    -------
    MasterKeyRing
        The new ring (new primary, then the previous keys).

    Raises
    ------
    KeyFileError
        If the file cannot be read or rewritten.
    """
    keys = [os.urandom(KEY_BYTES), *read_key_lines(path, what=_WHAT)]
    replace_key_lines(path, keys, what=_WHAT, header=_HEADER)
    ring = MasterKeyRing([MasterKey(key) for key in keys])
    logger.info("master key file %s: new primary kid %s", path, ring.primary.kid)
    return ring


def retire_master_keys(path: Path, *, keep: str) -> list[str]:
    """Rotation step 2: remove every key but the primary, once nothing is wrapped under them.

    Parameters
    ----------
    path : Path
        The master key file.
    keep : str
        Id of the primary key the caller re-wrapped everything under; nothing is removed
        unless the file's primary key still has this id (guards against a concurrent
        rotation).

    Returns
    -------
    list[str]
        Ids of the retired keys (empty if there was nothing to retire).

    Raises
    ------
    KeyFileError
        If the file cannot be read or rewritten, or its primary key is not ``keep``.
    """
    keys = read_key_lines(path, what=_WHAT)
    ring = MasterKeyRing([MasterKey(key) for key in keys])
    if ring.primary.kid != keep:
        raise KeyFileError(
            f"master key file {path} has primary kid {ring.primary.kid}, not {keep}; "
            "another rotation may be running"
        )
    retired = list(ring.kids[1:])
    if retired:
        replace_key_lines(path, keys[:1], what=_WHAT, header=_HEADER)
        logger.info("master key file %s: retired %d key(s)", path, len(retired))
    return retired
