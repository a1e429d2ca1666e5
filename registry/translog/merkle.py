"""RFC 6962 (section 2.1) Merkle tree hashing, audit paths and consistency proofs.

The proof builders take `subtree(lo, hi)`, which returns MTH(D[lo:hi]) for a perfect,
aligned subtree (hi - lo a power of two, lo a multiple of it): the store answers that
from precomputed nodes, so that a proof at a million leaves reads a few dozen rows. The
verifiers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 (the same trees as RFC 6962).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()

Subtree = Callable[[int, int], bytes]


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def fold_perfect(hashes: Sequence[bytes]) -> bytes:
    """The root of a perfect subtree given its 2**k hashes at one level, left to right."""
    level = list(hashes)
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def _is_perfect(lo: int, hi: int) -> bool:
    size = hi - lo
    return size & (size - 1) == 0 and lo % size == 0


def range_hash(subtree: Subtree, lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) for the ranges RFC 6962 recursion produces (lo aligned to the split)."""
    if hi - lo == 0:
        return EMPTY_ROOT
    if _is_perfect(lo, hi):
        return subtree(lo, hi)
    k = split_point(hi - lo)
    return node_hash(subtree(lo, lo + k), range_hash(subtree, lo + k, hi))


def inclusion_path(subtree: Subtree, index: int, size: int) -> list[bytes]:
    """PATH(m, D[n]), leaf first."""
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            path.append(range_hash(subtree, lo + k, hi))
            hi = lo + k
        else:
            path.append(range_hash(subtree, lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_proof(subtree: Subtree, first: int, second: int) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true), 0 < m <= n."""
    proof: list[bytes] = []
    lo, hi, complete = 0, second, True
    while first != hi:
        k = split_point(hi - lo)
        if first - lo <= k:
            proof.append(range_hash(subtree, lo + k, hi))
            hi = lo + k
        else:
            proof.append(range_hash(subtree, lo, lo + k))
            lo += k
            complete = False
    if not complete:
        proof.append(range_hash(subtree, lo, hi))
    proof.reverse()
    return proof


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 2.1.4.2."""
    if first == second:
        return not proof and first_root == second_root
    if first == 0 or first > second or not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the first root is itself the first node
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0
