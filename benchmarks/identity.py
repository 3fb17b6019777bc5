"""Linkage on keyed encodings: time, comparisons/s and blocking recall, beside all-pairs Dice.

Run from the repository root::

    python benchmarks/identity.py            # 5,000 x 5,000 and 100,000 x 100,000
    python benchmarks/identity.py --sizes 5000

For each size: generate a Chinese set (simulations/linkage_data.py: Faker zh_CN with
homophone / traditional / typo names, date spellings and swaps, shortened addresses,
missing values), encode both sides (reported separately), then time the linkage
(blocking, comparison, EM, decisions). Reports candidate pairs, comparisons/s, blocking
recall (pairs completeness: true pairs among the candidates), precision / recall / F1 at the
default threshold, and the baseline: plain numpy all-pairs popcount Dice on record-level
filters, measured on a sample of A rows against all of B in the same run and extrapolated
to |A| x |B|.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from privacy import LinkageEncoder, LinkageField  # noqa: E402
from server.identity.linkage import (  # noqa: E402
    aligned_matrices,
    candidate_pairs,
    encoding_matrix,
    record_dice_rows,
    run_linkage,
)
from simulations.linkage_data import FIELDS, chinese_linkage_set  # noqa: E402

BASELINE_ROWS = 200


def _baseline(a_words: np.ndarray, b_words: np.ndarray) -> float:
    """All-pairs record-level Dice on a sample of A rows: comparisons per second."""
    rows = np.arange(min(BASELINE_ROWS, len(a_words)))
    start = time.perf_counter()
    record_dice_rows(a_words, b_words, rows)
    return len(rows) * len(b_words) / (time.perf_counter() - start)


def run(size: int) -> None:
    print(f"\n== {size:,} x {size:,} generated Chinese records (80% of B are copies of A)")
    clock = time.perf_counter()
    data = chinese_linkage_set(size, seed=7)
    print(f"generate: {time.perf_counter() - clock:.1f} s")
    encoder = LinkageEncoder(secrets.token_bytes(32), [LinkageField.parse(f) for f in FIELDS])
    clock = time.perf_counter()
    a_records = [encoder.encode(row["id"], row) for row in data.a]
    b_records = [encoder.encode(row["id"], row) for row in data.b]
    encode_seconds = time.perf_counter() - clock
    print(
        f"encode (edge side, not in linkage time): {encode_seconds:.1f} s "
        f"({2 * size / encode_seconds:,.0f} records/s)"
    )
    clock = time.perf_counter()
    a, b = encoding_matrix(a_records, side="A"), encoding_matrix(b_records, side="B")
    result = run_linkage(a, b)
    link_seconds = time.perf_counter() - clock
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    print(f"linkage: {link_seconds:.1f} s (packing included; {steps})")
    print(
        f"candidate pairs: {result.candidates:,} of {size * size:,} "
        f"({result.candidates / (size * size):.2e}); "
        f"{result.candidates / link_seconds:,.0f} candidate comparisons/s end to end"
    )
    # blocking recall on the generated truth
    left, right = aligned_matrices(a, b)
    ia, ib = candidate_pairs(left, right)
    index_a = {rid: i for i, rid in enumerate(left.ids)}
    index_b = {rid: j for j, rid in enumerate(right.ids)}
    truth = {index_a[x] * len(right) + index_b[y] for x, y in data.truth}
    found = len(truth & set((ia * len(right) + ib).tolist()))
    print(f"blocking recall (pairs completeness): {found / len(truth):.4f} ({found}/{len(truth)})")
    matches = {(link.a_id, link.b_id) for link in result.links if link.decision == "match"}
    tp = len(matches & data.truth)
    precision, recall = tp / max(len(matches), 1), tp / len(data.truth)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    print(f"default threshold 0.5: precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f}")
    # baseline
    a_words = left.words.reshape(len(left), -1)
    b_words = right.words.reshape(len(right), -1)
    rate = _baseline(a_words, b_words)
    print(
        f"BASELINE all-pairs numpy popcount Dice (record-level, no blocking): "
        f"{rate:,.0f} comparisons/s measured on {min(BASELINE_ROWS, size)} x {size:,}; "
        f"extrapolated to {size:,} x {size:,}: {size * size / rate:,.0f} s"
    )
    print(
        f"effective rate of the linkage: {size * size / link_seconds:,.0f} pairs covered/s "
        f"({size * size / rate / link_seconds:,.1f}x the baseline's wall time)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 100_000])
    args = parser.parse_args()
    for size in args.sizes:
        run(size)


if __name__ == "__main__":
    main()
