"""The Merkle tree of a CT log, kept collapsed: only the roots of its complete subtrees.

RFC 6962 §2.1 (RFC 9162 §2.1.1): a leaf hashes as SHA-256(0x00 || leaf), a node as
SHA-256(0x01 || left || right), and a tree of n leaves splits at the largest power of two below
n. The tree of size n is therefore one perfect subtree per set bit of n, largest first; keeping
those roots (at most 64 hashes) is enough to append leaves and to compute the root at any size,
which is how a monitor checks that the entries it downloaded are the ones the signed tree head
commits to (certspotter keeps the same state).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["CollapsedTree", "leaf_hash", "node_hash"]

_EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class CollapsedTree:
    """The subtree roots of a tree of ``size`` leaves, largest (leftmost) first."""

    def __init__(self, size: int = 0, nodes: Sequence[bytes] = ()) -> None:
        if size < 0 or len(nodes) != size.bit_count() or any(len(n) != 32 for n in nodes):
            raise ValueError(f"a collapsed tree of size {size} has {size.bit_count()} hashes")
        self.size, self.nodes = size, list(nodes)

    def append(self, leaf: bytes) -> None:
        """Append one leaf's hash: merge equal-sized subtrees as binary addition carries."""
        nodes, carry = self.nodes, self.size
        nodes.append(leaf)
        while carry & 1:
            right = nodes.pop()
            nodes[-1] = node_hash(nodes[-1], right)
            carry >>= 1
        self.size += 1

    def root(self) -> bytes:
        """The Merkle Tree Hash of the whole tree (RFC 6962 §2.1: MTH({}) = SHA-256())."""
        if not self.nodes:
            return _EMPTY_ROOT
        digest = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            digest = node_hash(node, digest)
        return digest

    def to_json(self) -> list[str]:
        return [node.hex() for node in self.nodes]

    @classmethod
    def from_json(cls, size: int, nodes: Sequence[str]) -> CollapsedTree:
        return cls(size, [bytes.fromhex(node) for node in nodes])

    @classmethod
    def from_right_edge(
        cls, size: int, last_leaf: bytes, audit_path: Sequence[bytes]
    ) -> CollapsedTree:
        """The tree of ``size`` leaves from its last leaf's hash and that leaf's audit path
        (RFC 6962 §2.1.1). The last leaf's path holds only left siblings, each the root of one
        complete subtree, nearest first: exactly the collapsed tree, reversed."""
        if len(audit_path) != (size - 1).bit_count():
            raise ValueError("the audit path does not have the length of the last leaf's path")
        tree = cls.__new__(cls)
        tree.size = size
        # The last leaf is its own subtree only when size is odd; otherwise it is merged upwards.
        nodes = list(reversed(audit_path))
        digest = last_leaf
        trailing = (size - 1) ^ size  # the bits that carried into the last leaf's subtree
        merged = (trailing >> 1).bit_count()
        for sibling in nodes[len(nodes) - merged :][::-1]:
            digest = node_hash(sibling, digest)
        tree.nodes = [*nodes[: len(nodes) - merged], digest]
        return tree
