"""Merkle tree hashing of the audit log (RFC 9162 §2.1), a compact frontier and range proofs.

Leaves are the entries' ``entry_hash`` values (32 bytes each): ``leaf = sha256(0x00 || entry
hash)`` and ``node = sha256(0x01 || left || right)``; the tree over ``n`` leaves splits at the
largest power of two below ``n``, exactly as in Certificate Transparency, so any RFC 9162
verifier can check our roots and proofs.

:class:`MerkleFrontier` keeps the roots of the perfect subtrees that make up the first ``n``
leaves (one per set bit of ``n``), so the root can be extended leaf by leaf in O(1) amortised
hashes and stored with each checkpoint. :func:`range_proof` and :func:`root_from_range` prove
that a contiguous run of leaves belongs to a tree of a given size: the proof holds the hashes
of the subtrees outside the run, at most about ``2 log2(n)`` of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence

#: Root of the empty tree: ``sha256(b"")`` (RFC 9162 §2.1.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash ``sha256(0x00 || data)``.

    Parameters
    ----------
    data : bytes
        The leaf's content (for the audit log: the 32 raw bytes of an ``entry_hash``).

    Returns
    -------
    bytes
        32 bytes.
    """
    return hashlib.sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash ``sha256(0x01 || left || right)``.

    Parameters
    ----------
    left, right : bytes
        The children's hashes.

    Returns
    -------
    bytes
        32 bytes.
    """
    return hashlib.sha256(_NODE + left + right).digest()


def _split(size: int) -> int:
    """Return the largest power of two strictly below ``size`` (``size`` >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def tree_root(leaves: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash of already-hashed ``leaves`` (the recursive definition).

    Parameters
    ----------
    leaves : Sequence[bytes]
        Leaf hashes (:func:`leaf_hash` outputs), in order.

    Returns
    -------
    bytes
        The root; :data:`EMPTY_ROOT` for no leaves.
    """
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(tree_root(leaves[:k]), tree_root(leaves[k:]))


class MerkleFrontier:
    """The perfect-subtree roots covering the first ``size`` leaves, largest first.

    Parameters
    ----------
    size : int
        Number of leaves covered.
    hashes : Sequence[bytes]
        One root per set bit of ``size``, from the most to the least significant bit.

    Raises
    ------
    ValueError
        If the number of hashes does not match the bits of ``size``.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0 or bin(size).count("1") != len(hashes):
            raise ValueError("a frontier holds one hash per set bit of its size")
        self._size = size
        self._hashes = list(hashes)

    @property
    def size(self) -> int:
        """Number of leaves covered."""
        return self._size

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash, merging equal-sized subtrees (amortised one node hash)."""
        hashes = self._hashes
        hashes.append(leaf)
        size = self._size
        while size & 1:
            right = hashes.pop()
            hashes[-1] = hashlib.sha256(_NODE + hashes[-1] + right).digest()
            size >>= 1
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Add several leaf hashes in order."""
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """Return the tree hash of the covered leaves (:data:`EMPTY_ROOT` when empty)."""
        if not self._hashes:
            return EMPTY_ROOT
        acc = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            acc = node_hash(left, acc)
        return acc

    def subtrees(self) -> Iterator[tuple[int, int, bytes]]:
        """Yield ``(start, end, hash)`` of each perfect subtree, left to right."""
        start, bits = 0, self._size
        for h in self._hashes:
            width = 1 << (bits.bit_length() - 1)
            yield start, start + width, h
            start, bits = start + width, bits - width

    def to_hex(self) -> list[str]:
        """Return the hashes as hex strings (what a checkpoint row stores)."""
        return [h.hex() for h in self._hashes]

    @classmethod
    def from_hex(cls, size: int, hashes: Sequence[str]) -> MerkleFrontier:
        """Rebuild a frontier from :meth:`to_hex` output.

        Raises
        ------
        ValueError
            If a hash is not hex or the count does not match ``size``.
        """
        return cls(size, [bytes.fromhex(h) for h in hashes])

    def __eq__(self, other: object) -> bool:
        """Frontiers are equal when they cover the same leaves with the same hashes."""
        if not isinstance(other, MerkleFrontier):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def copy(self) -> MerkleFrontier:
        """Return an independent copy."""
        return MerkleFrontier(self._size, self._hashes)


SubtreeHash = Callable[[int, int], bytes]


def _proof_nodes(lo: int, hi: int, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Yield, left to right, the subtrees ``[lo, hi)`` outside ``[start, end)`` a proof needs."""
    if end <= lo or hi <= start:
        yield lo, hi
        return
    if start <= lo and hi <= end:
        return
    k = _split(hi - lo)
    yield from _proof_nodes(lo, lo + k, start, end)
    yield from _proof_nodes(lo + k, hi, start, end)


def range_proof(*, size: int, start: int, end: int, subtree: SubtreeHash) -> list[bytes]:
    """Return the proof that leaves ``[start, end)`` belong to the tree of ``size`` leaves.

    Parameters
    ----------
    size : int
        Number of leaves of the tree (the checkpoint's size).
    start, end : int
        The run of leaves (0-based, end exclusive); ``0 <= start < end <= size``.
    subtree : Callable[[int, int], bytes]
        Returns the hash of the subtree over leaves ``[lo, hi)``; called only for subtrees
        entirely before ``start`` or entirely at or after ``end``.

    Returns
    -------
    list[bytes]
        The outside subtrees' hashes, left to right.

    Raises
    ------
    ValueError
        If the run is empty or outside the tree.
    """
    if not 0 <= start < end <= size:
        raise ValueError("range_proof needs 0 <= start < end <= size")
    return [subtree(lo, hi) for lo, hi in _proof_nodes(0, size, start, end)]


def root_from_range(
    *, size: int, start: int, leaves: Sequence[bytes], proof: Sequence[bytes]
) -> bytes:
    """Recompute the root of a tree of ``size`` leaves from a run of leaves and its proof.

    Parameters
    ----------
    size : int
        Number of leaves of the tree.
    start : int
        Index of the first leaf of the run (0-based).
    leaves : Sequence[bytes]
        Leaf hashes of the run, in order.
    proof : Sequence[bytes]
        :func:`range_proof` output.

    Returns
    -------
    bytes
        The root the run and proof imply; compare it with a signed root.

    Raises
    ------
    ValueError
        If the run lies outside the tree or the proof has the wrong number of hashes.
    """
    end = start + len(leaves)
    if not 0 <= start < end <= size:
        raise ValueError("the run of leaves lies outside the tree")
    proof_iter, leaf_iter = iter(proof), iter(leaves)

    def build(lo: int, hi: int) -> bytes:
        if end <= lo or hi <= start:
            return next(proof_iter)
        if hi - lo == 1:
            return next(leaf_iter)
        k = _split(hi - lo)
        return node_hash(build(lo, lo + k), build(lo + k, hi))

    try:
        root = build(0, size)
    except StopIteration:
        raise ValueError("the proof is shorter than the tree needs") from None
    if next(proof_iter, None) is not None:
        raise ValueError("the proof is longer than the tree needs")
    return root
