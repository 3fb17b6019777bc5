"""``fedprofile identity encode``: a CSV of customers -> keyed Bloom-filter encodings (JSONL).

The encode step lives with the edge because it needs the tenant key, which the server never
holds (privacy invariant 4), and it reads edge exports the way ingestion does: UTF-8 with or
without a byte-order mark, or GB18030 (``client.encodings``). Each output line holds the
record id and one keyed filter per field (``privacy.LinkageEncoder``); no raw value and
nothing reversible without the key is written. Missing values are ``null``.
"""

from __future__ import annotations

import csv
import itertools
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from privacy import LinkageEncoder, LinkageField, LinkageScheme, encoded_json_line, load_key_file

from .encodings import decode_line, detect_encoding
from .errors import InputFileError

logger = logging.getLogger(__name__)


def _parse_fields(fields: str) -> list[LinkageField]:
    """Parse ``--fields`` (``NAME[:KIND],...``)."""
    try:
        specs = [LinkageField.parse(part) for part in fields.split(",") if part.strip()]
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fields") from None
    if not specs:
        raise typer.BadParameter("name at least one column", param_hint="--fields")
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise typer.BadParameter("a column is named twice", param_hint="--fields")
    return specs


def _count_rows(path: Path) -> int:
    """Return the number of lines after the header (for the progress bar)."""
    with path.open("rb") as handle:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return max(lines - 1, 0)


def _rows(
    path: Path, id_field: str, specs: list[LinkageField], salt_field: str | None
) -> Iterator[tuple[str, dict[str, str | None]]]:
    """Yield ``(id, values)`` per CSV row, checking the header first (names only in errors)."""
    encoding = detect_encoding(path)
    with path.open("rb") as handle:
        # Line by line, as ingestion reads: in a file mixing UTF-8 and GBK lines each line is
        # decoded in its own encoding, so one GBK row cannot turn the others into mojibake.
        lines = (decode_line(raw, encoding) for raw in handle)
        first = next(lines, "").removeprefix("\ufeff")  # a BOM before a later GBK line
        reader = csv.DictReader(itertools.chain([first], lines))
        header = [name.strip() for name in reader.fieldnames or []]
        reader.fieldnames = header
        wanted = [id_field, *(spec.name for spec in specs)]
        wanted += [salt_field] if salt_field else []
        for name in wanted:
            if name not in header:
                raise InputFileError(
                    path, f"column {name!r} is not in the header ({', '.join(header)})"
                )
        for number, row in enumerate(reader, start=2):
            record_id = (row.get(id_field) or "").strip()
            if not record_id:
                raise InputFileError(path, f"row {number} has an empty {id_field!r}")
            values = {spec.name: row.get(spec.name) for spec in specs}
            if salt_field:
                values[salt_field] = row.get(salt_field)
            yield record_id, values


def encode_command(
    file: Annotated[Path, typer.Argument(help="CSV file (UTF-8, UTF-8 with BOM, or GB18030).")],
    key: Annotated[
        Path, typer.Option("--key", help="Tenant key file (32 random bytes, hex, mode 0600).")
    ],
    id_field: Annotated[str, typer.Option("--id-field", help="Column holding the record id.")],
    fields: Annotated[
        str,
        typer.Option(
            "--fields",
            help="Columns to encode, comma-separated; NAME or NAME:KIND with KIND text, date "
            "or digits (default inferred from the name: date/dob/birth/出生 -> date, "
            "postcode/zip/phone/邮编 -> digits, else text).",
        ),
    ],
    salt_field: Annotated[
        str | None,
        typer.Option(
            "--salt-field",
            help="Hardening: mix this column's value into every field key of the record "
            "(records whose values differ can then never link).",
        ),
    ] = None,
    xor_fold: Annotated[
        bool, typer.Option("--xor-fold", help="Hardening: XOR-fold each filter to half length.")
    ] = False,
) -> None:
    """Encode customers' quasi-identifiers as keyed Bloom filters (JSON lines on stdout).

    One line per CSV row: the id and one keyed filter per field. Nothing written can be
    reversed without the key; link the output of two edges with `fedprofile identity link`.
    """
    specs = _parse_fields(fields)
    if not file.is_file():
        raise InputFileError(file, "the file does not exist")
    encoder = LinkageEncoder(
        load_key_file(key), specs, scheme=LinkageScheme(xor_fold=xor_fold), salt_field=salt_field
    )
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("encoding"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    out = sys.stdout
    count = 0
    with progress:
        task = progress.add_task("encode", total=_count_rows(file))
        for record_id, values in _rows(file, id_field, specs, salt_field):
            out.write(encoded_json_line(encoder.encode(record_id, values)) + "\n")
            count += 1
            if count % 1000 == 0:
                progress.update(task, completed=count)
    out.flush()
    logger.info("encoded %d records, %d fields", count, len(specs))
