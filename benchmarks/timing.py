"""Wall-clock timing for the benchmark scripts (figures to print, never test thresholds)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` once; return its result and the seconds it took."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def best_of(fn: Callable[[], T], repeats: int = 3) -> tuple[T, float]:
    """Run ``fn`` ``repeats`` times; the last result and the fastest time (least disturbed by
    other work on a shared machine)."""
    runs = [timed(fn) for _ in range(repeats)]
    return runs[-1][0], min(seconds for _, seconds in runs)
