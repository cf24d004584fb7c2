"""Epoch order and shards: which rows make batch ``slot`` of ``epoch`` on shard ``index``.

The global order of an epoch depends on ``(seed, epoch)`` alone; a shard ``(index, count)``
takes every ``count``-th batch of it, starting at ``index``, so the shards are disjoint and
their union is the epoch. Every random choice elsewhere (crops, augmentation) is seeded from
the same seed through ``rng``.
"""

from __future__ import annotations

import numpy as np


def rng(*key: int) -> np.random.Generator:
    """A generator seeded from integers (each taken modulo 2**32)."""
    return np.random.default_rng([k & 0xFFFFFFFF for k in key])


def global_slots(rows: int, batch_size: int, drop_remainder: bool) -> int:
    """Batches in one epoch of all shards together."""
    return rows // batch_size if drop_remainder else -(-rows // batch_size)


def shard_slots(total: int, shard: tuple[int, int]) -> int:
    """Batches of ``total`` that shard ``(index, count)`` takes."""
    index, count = shard
    return max(0, -(-(total - index) // count))


def epoch_order(rows: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """Row indices of ``epoch`` in the global order, ``int64 [rows]``."""
    if not shuffle:
        return np.arange(rows)
    return rng(seed, epoch).permutation(rows)


def global_batch(slot: int, shard: tuple[int, int]) -> int:
    """The global batch number of shard ``shard``'s batch ``slot``."""
    return slot * shard[1] + shard[0]


def slot_rows(order: np.ndarray, slot: int, batch_size: int, shard: tuple[int, int]) -> np.ndarray:
    """Rows of shard ``shard``'s batch ``slot`` in an epoch whose global order is ``order``."""
    g = global_batch(slot, shard)
    return order[g * batch_size : (g + 1) * batch_size]


def shard_rows(rows: int, batch_size: int, drop_remainder: bool, shard: tuple[int, int]) -> int:
    """Rows that shard ``shard`` reads in one epoch (the rows of its batches)."""
    total = global_slots(rows, batch_size, drop_remainder)
    taken = shard_slots(total, shard)
    if taken == 0:
        return 0
    last = global_batch(taken - 1, shard)  # this shard's last global batch
    return (taken - 1) * batch_size + min(batch_size, rows - last * batch_size)
