"""RFC 9162 Merkle hashing: frontier roots, range proofs, and their failures."""

from __future__ import annotations

import hashlib

import pytest

from server.audit.merkle import (
    EMPTY_ROOT,
    MerkleFrontier,
    leaf_hash,
    node_hash,
    range_proof,
    root_from_range,
    tree_root,
)

LEAVES = [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(70)]


def test_tree_root_small_trees_follow_rfc_9162() -> None:
    a, b, c = LEAVES[:3]
    assert tree_root([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert tree_root([a]) == a
    assert tree_root([a, b, c]) == node_hash(node_hash(a, b), c)
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()


@pytest.mark.parametrize("size", range(0, 70))
def test_frontier_root_equals_recursive_root(size: int) -> None:
    frontier = MerkleFrontier()
    frontier.extend(LEAVES[:size])
    rebuilt = MerkleFrontier.from_hex(size, frontier.to_hex())
    assert frontier.root() == rebuilt.root() == tree_root(LEAVES[:size])
    assert [end - start for start, end, _ in frontier.subtrees()] == [
        1 << bit for bit in reversed(range(size.bit_length())) if size >> bit & 1
    ]


def test_frontier_rejects_hash_count_not_matching_size() -> None:
    with pytest.raises(ValueError):
        MerkleFrontier(3, [LEAVES[0]])


def _subtree(lo: int, hi: int) -> bytes:
    return tree_root(LEAVES[lo:hi])


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13, 17])
def test_range_proof_every_range_rebuilds_the_root(size: int) -> None:
    root = tree_root(LEAVES[:size])
    for start in range(size):
        for end in range(start + 1, size + 1):
            proof = range_proof(size=size, start=start, end=end, subtree=_subtree)
            assert len(proof) <= 2 * size.bit_length()
            leaves = LEAVES[start:end]
            assert root_from_range(size=size, start=start, leaves=leaves, proof=proof) == root


def test_range_proof_with_a_changed_leaf_or_hash_gives_another_root() -> None:
    size, start, end = 17, 5, 9
    root = tree_root(LEAVES[:size])
    proof = range_proof(size=size, start=start, end=end, subtree=_subtree)
    leaves = list(LEAVES[start:end])
    leaves[1] = LEAVES[40]
    assert root_from_range(size=size, start=start, leaves=leaves, proof=proof) != root
    bad_proof = [LEAVES[41], *proof[1:]]
    good = LEAVES[start:end]
    assert root_from_range(size=size, start=start, leaves=good, proof=bad_proof) != root


def test_root_from_range_wrong_proof_length_raises() -> None:
    proof = range_proof(size=8, start=2, end=4, subtree=_subtree)
    with pytest.raises(ValueError, match="shorter"):
        root_from_range(size=8, start=2, leaves=LEAVES[2:4], proof=proof[:-1])
    with pytest.raises(ValueError, match="longer"):
        root_from_range(size=8, start=2, leaves=LEAVES[2:4], proof=[*proof, LEAVES[0]])
    with pytest.raises(ValueError):
        range_proof(size=8, start=3, end=3, subtree=_subtree)
