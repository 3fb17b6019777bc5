"""Text encodings of input files: UTF-8 (with or without a byte-order mark), else GB18030.

Chinese office software exports CSV in GBK by default, so an edge must read it, but never as
mojibake without saying so. ``detect_encoding`` decodes the whole file strictly (in chunks):
a UTF-8 byte-order mark wins, else UTF-8 if all of it decodes, else GB18030 (a superset of
GBK) if all of it decodes; anything else is refused. ``encoding_note`` explains the doubtful
outcomes for the ingest report. Results are cached per path, size and modification time, so
ingestion and the reader share one scan.
"""

from __future__ import annotations

import codecs
import functools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import InputFileError

logger = logging.getLogger(__name__)

#: Text encodings an input file may be in.
TextEncoding = Literal["utf-8", "utf-8-sig", "gb18030"]
_CHUNK = 1 << 20
#: Chinese characters and full-width punctuation (CJK symbols, ideographs, full-width forms).
_CJK = re.compile("[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


@dataclass(frozen=True, slots=True)
class _Scan:
    """How a file decodes under one encoding: at all, with non-ASCII text, with Chinese."""

    ok: bool
    non_ascii: bool = False
    chinese: bool = False


def _scan(path: Path, encoding: str) -> _Scan:
    """Decode the whole file strictly in 1 MiB chunks, noting what kind of text it holds."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    non_ascii = chinese = False
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                text = decoder.decode(chunk)
                non_ascii = non_ascii or not text.isascii()
                chinese = chinese or _CJK.search(text) is not None
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return _Scan(ok=False)
    return _Scan(ok=True, non_ascii=non_ascii, chinese=chinese)


def _each_line_decodes(path: Path) -> bool:
    """Whether every line is UTF-8 or GB18030 on its own (a file two systems appended to)."""
    with path.open("rb") as handle:
        for raw in handle:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                try:
                    raw.decode("gb18030")
                except UnicodeDecodeError:
                    return False
    return True


@functools.lru_cache(maxsize=32)
def _detect(path: Path, size: int, mtime_ns: int) -> tuple[TextEncoding, str | None]:  # noqa: ARG001
    """Return the encoding and an operator note (cached per path, size and mtime)."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputFileError(path, "UTF-16/UTF-32 text is not supported; save it as UTF-8")
    utf8 = _scan(path, "utf-8")
    if utf8.ok:
        if utf8.non_ascii and not utf8.chinese and _scan(path, "gb18030").chinese:
            note = "valid UTF-8 without Chinese text, but Chinese as GB18030: read as UTF-8"
            logger.warning("%s: %s", path.name, note)
            return "utf-8", f"{note}; if text looks garbled, convert the file to UTF-8"
        return "utf-8", None
    if _scan(path, "gb18030").ok or _each_line_decodes(path):
        logger.warning("%s is not valid UTF-8; decoding it as GB18030", path.name)
        return "gb18030", (
            "not all UTF-8: lines that are not UTF-8 were read as GB18030 (GBK), the others "
            "as UTF-8; check the text"
        )
    raise InputFileError(path, "the file is neither UTF-8 nor GB18030/GBK text; save it as UTF-8")


def detect_encoding(path: Path) -> TextEncoding:
    """Return the text encoding of an input file.

    A UTF-8 byte-order mark wins; else the file is read as UTF-8 if all of it decodes, else
    as GB18030 (a superset of GBK) if all of it decodes. Nothing is decoded leniently, and
    the two doubtful outcomes (GB18030; or UTF-8 that holds no Chinese although the bytes
    read as Chinese in GB18030, which short GBK files can do) come with an
    ``encoding_note`` that ingestion reports, so mojibake is never silent.

    Raises
    ------
    InputFileError
        If the file is UTF-16/32, or decodes as neither UTF-8 nor GB18030.
    """
    stat = path.stat()
    return _detect(path.resolve(), stat.st_size, stat.st_mtime_ns)[0]


def encoding_note(path: Path) -> str | None:
    """Return what an operator should check about the file's encoding, or ``None``."""
    stat = path.stat()
    return _detect(path.resolve(), stat.st_size, stat.st_mtime_ns)[1]


def decode_line(raw: bytes, encoding: TextEncoding) -> str:
    """Decode one physical line of a file whose encoding ``detect_encoding`` returned.

    A file detected as GB18030 is one where *some* line is not UTF-8: Chinese office exports
    are GBK throughout, but a file appended to by two systems may mix them. Each of its lines
    is therefore read as UTF-8 when it decodes as UTF-8 and as GB18030 otherwise, so one GBK
    line no longer turns the UTF-8 lines into mojibake (names there would escape masking).

    Parameters
    ----------
    raw : bytes
        The line's bytes.
    encoding : TextEncoding
        The file's detected encoding.

    Returns
    -------
    str
        The decoded line.

    Raises
    ------
    UnicodeDecodeError
        If the line decodes in neither (``detect_encoding`` already refused such files).
    """
    if encoding == "gb18030":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw.decode("gb18030")
    return raw.decode(encoding)
