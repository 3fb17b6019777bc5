"""``fedprofile identity link``: two files of keyed encodings -> a CSV of links.

Runs ``server.identity.linkage.run_linkage`` (blocking, Dice, Fellegi–Sunter by EM,
one-to-one decisions) on two files written by ``fedprofile identity encode`` and writes
``a_id,b_id,score,decision`` rows: ``match`` (each record at most once) and ``review``;
pairs that are neither are not written.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from privacy import read_encoded_file

from .linkage.link import DEFAULT_REVIEW_FLOOR, run_linkage

logger = logging.getLogger(__name__)

#: Header of the links CSV.
LINKS_HEADER = ("a_id", "b_id", "score", "decision")


def link_command(
    a_file: Annotated[Path, typer.Argument(metavar="A.jsonl", help="Encodings of side A.")],
    b_file: Annotated[Path, typer.Argument(metavar="B.jsonl", help="Encodings of side B.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the links CSV.")],
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            min=0.0,
            max=1.0,
            help="Match when P(match) under the fitted model is at least this "
            "[default: 0.5, more likely a match than not].",
        ),
    ] = None,
    review_floor: Annotated[
        float,
        typer.Option(
            "--review-floor",
            min=0.0,
            max=1.0,
            help="Pairs with P(match) from here up to the threshold go to review.",
        ),
    ] = DEFAULT_REVIEW_FLOOR,
) -> None:
    """Link two files of keyed encodings (Fellegi–Sunter by EM on Dice similarities).

    Writes a_id,b_id,score,decision: score is P(match); decision is match (one-to-one:
    each record at most once) or review. The files must be encoded under the same key.
    """
    if threshold == 0.0 or review_floor == 0.0:
        raise typer.BadParameter("must be above 0", param_hint="--threshold/--review-floor")
    console = Console(stderr=True)
    with console.status("reading encodings", spinner="dots"):
        a = read_encoded_file(a_file)
        b = read_encoded_file(b_file)
    with console.status(f"linking {len(a)} x {len(b)} records", spinner="dots"):
        result = run_linkage(
            a, b, threshold=threshold, review_floor=min(review_floor, threshold or 0.5)
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LINKS_HEADER)
        for link in result.links:
            writer.writerow([link.a_id, link.b_id, f"{link.score:.6f}", link.decision.value])
    matches = sum(1 for link in result.links if link.decision.value == "match")
    typer.echo(
        f"{matches} matches, {len(result.links) - matches} for review "
        f"({result.candidates} candidate pairs) -> {out}"
    )
