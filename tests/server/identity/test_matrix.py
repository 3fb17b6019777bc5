from __future__ import annotations

import pytest

from privacy import EncodedRecord, EncodingMismatchError
from server.identity.linkage import aligned_matrices, encoding_matrix


def _record(rid: str, key: bytes = b"k" * 8, **clks: bytes | None) -> EncodedRecord:
    return EncodedRecord(id=rid, key_id=key, clks=clks)


def test_aligned_keeps_common_fields_in_a_order() -> None:
    a = encoding_matrix([_record("a", x=bytes(8), y=bytes(8), z=bytes(8))])
    b = encoding_matrix([_record("b", z=bytes(8), x=bytes(8))])

    left, right = aligned_matrices(a, b)

    assert left.fields == right.fields == ("x", "z")


def test_different_keys_are_refused() -> None:
    a = encoding_matrix([_record("a", x=bytes(8))])
    b = encoding_matrix([_record("b", key=b"j" * 8, x=bytes(8))])

    with pytest.raises(EncodingMismatchError, match="different keys"):
        aligned_matrices(a, b)


def test_mixed_keys_in_one_side_are_refused() -> None:
    with pytest.raises(EncodingMismatchError):
        encoding_matrix([_record("a", x=bytes(8)), _record("b", key=b"j" * 8, x=bytes(8))])
