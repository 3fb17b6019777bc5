from __future__ import annotations

import pytest

from privacy import EncodedRecord, LinkageEncoder, LinkageField
from simulations.linkage_data import FIELDS, LinkageSet, chinese_linkage_set

KEY = bytes(range(32))


def encode_rows(rows: list[dict[str, str]], key: bytes = KEY) -> list[EncodedRecord]:
    encoder = LinkageEncoder(key, [LinkageField.parse(name) for name in FIELDS])
    return [encoder.encode(row["id"], row) for row in rows]


@pytest.fixture(scope="session")
def chinese_set() -> LinkageSet:
    return chinese_linkage_set(1500, seed=3)


@pytest.fixture(scope="session")
def chinese_encoded(chinese_set: LinkageSet) -> tuple[list[EncodedRecord], list[EncodedRecord]]:
    return encode_rows(chinese_set.a), encode_rows(chinese_set.b)
