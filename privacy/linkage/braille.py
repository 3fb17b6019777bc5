"""Bytes as Unicode Braille patterns (U+2800 + byte value): one character per byte.

The eight dots of a Braille cell are the eight bits of a byte. Encodings are written in this
alphabet because it shares no character with names, addresses, digits or Hanzi: a scan of an
encoded file for a raw value can never hit by chance (base64 and hex would, for short values
such as "nsw" or "4223"), and the file is visibly not text.
"""

from __future__ import annotations

_BRAILLE_HIGH = 0x28  # U+28xx: the high byte of every Braille pattern in UTF-16-LE


def braille_encode(data: bytes) -> str:
    """Return ``data`` as Braille patterns, one character per byte."""
    buffer = bytearray(2 * len(data))
    buffer[0::2] = data
    buffer[1::2] = bytes([_BRAILLE_HIGH]) * len(data)
    return buffer.decode("utf-16-le")


def braille_decode(text: str) -> bytes:
    """Return the bytes of a Braille-pattern string.

    Raises
    ------
    ValueError
        If a character is not a Braille pattern.
    """
    try:
        raw = text.encode("utf-16-le")
    except UnicodeEncodeError:  # lone surrogates
        raise ValueError("not a Braille-pattern string") from None
    if len(raw) != 2 * len(text) or raw[1::2].count(_BRAILLE_HIGH) != len(text):
        raise ValueError("not a Braille-pattern string")
    return raw[0::2]
