"""Weighted sampling with replacement, epoch by epoch, as a grain MapDataset.

Used for class-balanced training ("weighted sampling" of unbalanced corpora): each epoch is
``len(positions)`` draws with replacement, position i with probability proportional to
``weights[i]``. Epoch e's draws come from a numpy Generator seeded by ``(seed, e)``, so the
stream is a function of (seed, dataset) only — not of the process count or of where a run was
resumed (grain checkpoints the index; the draws are recomputed from it).
"""

from __future__ import annotations

from collections.abc import Sequence

import grain
import numpy as np


def inverse_frequency_weights(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    """Per-example weight 1 / (count of its class): every present class is drawn equally often
    in expectation."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return np.zeros(0, np.float64)
    if labels.min() < 0:
        raise ValueError("labels must be non-negative class indices")
    counts = np.bincount(labels)
    return 1.0 / counts[labels].astype(np.float64)


class WeightedEpochs(grain.MapDataset):
    """``num_epochs`` epochs (None: unbounded) of weighted draws of `positions`."""

    def __init__(self, positions: Sequence[int] | np.ndarray, weights: Sequence[float] |
                 np.ndarray, *, seed: int, num_epochs: int | None):
        super().__init__()
        self._positions = np.asarray(positions, dtype=np.int64)
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != self._positions.shape:
            raise ValueError(f"{weights.size} weights for {self._positions.size} examples")
        if self._positions.size == 0:
            raise ValueError("no examples to sample")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError("sampling weights must be finite, non-negative and not all zero")
        self._p = weights / weights.sum()
        self._seed, self._num_epochs = int(seed), num_epochs
        self._cache: tuple[int, np.ndarray] | None = None

    def epoch_draws(self, epoch: int) -> np.ndarray:
        """The positions drawn in `epoch` (in order)."""
        if self._cache is None or self._cache[0] != epoch:
            rng = np.random.default_rng([self._seed, epoch])
            draws = rng.choice(self._positions.size, size=self._positions.size, p=self._p)
            self._cache = (epoch, self._positions[draws])
        return self._cache[1]

    def __len__(self) -> int:
        n = int(self._positions.size)
        return n * self._num_epochs if self._num_epochs is not None else np.iinfo(np.int64).max

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        epoch, i = divmod(int(index), int(self._positions.size))
        return int(self.epoch_draws(epoch)[i])

    def __str__(self) -> str:
        return f"WeightedEpochs(n={self._positions.size}, seed={self._seed})"
