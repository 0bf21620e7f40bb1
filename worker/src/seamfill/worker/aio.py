"""Small asyncio helpers of the worker: backoff with jitter, wait for the first of several."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

__all__ = ["Backoff", "first"]


class Backoff:
    """Exponential backoff from ``base_s`` up to ``max_s``; each wait is jittered between half
    and all of its step, so a fleet that lost its coordinator does not come back in lockstep."""

    def __init__(self, base_s: float = 0.1, max_s: float = 10.0) -> None:
        self.base_s, self.max_s, self.attempt = base_s, max_s, 0

    def next(self) -> float:
        ceiling = min(self.max_s, self.base_s * (2**self.attempt))
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0


async def first(*aws: Any) -> None:
    """Wait until the first of ``aws`` finishes. Coroutines are wrapped and the unfinished ones
    cancelled; tasks passed in belong to the caller and keep running."""
    tasks = [a if isinstance(a, asyncio.Task) else asyncio.ensure_future(a) for a in aws]
    owned = [t for t, a in zip(tasks, aws, strict=True) if not isinstance(a, asyncio.Task)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in owned:
            if not t.done():
                t.cancel()
        for t in owned:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
