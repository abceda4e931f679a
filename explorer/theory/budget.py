"""Work grown in stages within a time budget: the Theory page's computations on a model size
themselves to the machine they run on by timing their own first stages, not a separate probe.

A pool of draws (importance weights, per-draw gradients) is computed in increasing stages; the
next stage is begun only while its projected time, at the rate per draw of the stage before it,
fits in what is left of the budget. The draws themselves are made before any stage, so what is
computed does not depend on where it stopped: a larger budget only adds stages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def in_stages(
    compute: Callable[[int, int], T],
    sizes: Sequence[int],
    budget: float | None,
    start: float,
    rate: float | None = None,
) -> tuple[list[T], int]:
    """``compute(done, size)`` for each of the increasing ``sizes`` (items done so far, items
    wanted after this stage), each stage begun only while ``(size - done)`` items at the previous
    stage's seconds per item fit in what is left of ``budget`` seconds since ``start``
    (``time.perf_counter``); the first stage always runs, and without a budget every one. ``rate``:
    seconds per item measured just before on like work (larger batches), used where it is the
    smaller: a small stage's own rate is mostly its overhead. Returns (each stage's result, the
    size reached)."""
    parts: list[T] = []
    done, last = 0, 0.0
    for size in sizes:
        now = time.perf_counter()
        per_item = last if rate is None else min(last, rate)
        if done and budget is not None and now - start + (size - done) * per_item > budget:
            break
        parts.append(compute(done, size))
        done, last = size, (time.perf_counter() - now) / (size - done)
    return parts, done
