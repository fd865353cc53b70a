"""Seed-independent split selection by a hash of each example's id (one implementation).

Model selection must not move with the training seed, and a carve must not depend on how a
release names its clips; so every carve that is "chosen by the id" orders examples by the
SHA-256 of their id: `id_hash` for ordering, `hash_fraction` for a threshold test, and
`stratified_hash_pick` for a per-class choice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np


def id_hash(example_id: str) -> str:
    """SHA-256 hex digest of the id (sorting by it orders ids pseudo-randomly, reproducibly)."""
    return hashlib.sha256(str(example_id).encode("utf-8")).hexdigest()


def hash_fraction(example_id: str) -> float:
    """A number in [0, 1) fixed by the id: the first 8 bytes of its SHA-256 over 2^64 (the same
    order as `id_hash`)."""
    digest = hashlib.sha256(str(example_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def in_hash_fraction(example_id: str, fraction: float) -> bool:
    """Whether the id falls in the first `fraction` of the hash range."""
    return hash_fraction(example_id) < fraction


def stratified_hash_pick(ids: Sequence[str], labels: Sequence[int] | np.ndarray,
                         count: Callable[[int], int]) -> set[str]:
    """In every class, the `count(n_class)` ids with the smallest `id_hash` (clipped to
    [0, n_class])."""
    labels = np.asarray(labels)
    chosen: set[str] = set()
    for c in np.unique(labels):
        members = [ids[i] for i in np.flatnonzero(labels == c)]
        k = max(0, min(int(count(len(members))), len(members)))
        chosen.update(sorted(members, key=id_hash)[:k])
    return chosen


def validation_count(fraction: float) -> Callable[[int], int]:
    """round(fraction * n) per class (halves up), at most n - 1 so every class keeps a
    training example."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction}")
    return lambda n: min(int(np.floor(fraction * n + 0.5)), max(n - 1, 0))
