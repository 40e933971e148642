"""Deterministic sampling: a stateless hash of (seed, index) and weighted choices from it."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Generic, TypeVar

T = TypeVar("T")
_MASK = (1 << 64) - 1


def mix(seed: int, index: int, salt: int = 0) -> int:
    """SplitMix64 of (seed, index, salt): 64 well-spread bits, the same on every machine."""
    z = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + salt * 0x94D049BB133111EB) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


class Weighted(Generic[T]):
    """Pick items in proportion to their weights, from a float in [0, 1) or from 32 hash bits."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]):
        if len(items) != len(weights) or not items:
            raise ValueError("one positive weight per item")
        total = float(sum(weights))
        self.items = list(items)
        self.cumulative = [w / total for w in accumulate(weights)]
        self.cumulative[-1] = 1.0

    def pick(self, unit: float) -> T:
        return self.items[bisect_right(self.cumulative, unit)]

    def pick_bits(self, bits32: int) -> T:
        return self.pick(bits32 / 4294967296.0)
