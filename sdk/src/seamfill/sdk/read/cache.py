"""A small in-process cache of settled, fully covered reads, bounded in bytes.

Only a range that storage covers completely and that lies wholly before the settled edge may be
stored: such rows no longer change, so a hit is as good as a read. A hit is an entry whose range
contains the requested one, for the same execution context (world, domain, as-of); the answer is
the slice of its rows. Least recently used entries go first when the byte budget is exceeded; an
entry older than the TTL (when one is set) answers nothing and is dropped. Hits, misses and the
resident bytes are counted (``seamless_cache_*``) and kept on the cache (:attr:`ReadCache.stats`).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seamfill.core.types import Series, TimeRange
from seamfill.sdk.metrics import CACHE_BYTES, CACHE_HITS, CACHE_MISSES

_Key = tuple[Series, TimeRange, Hashable]


@dataclass(frozen=True, slots=True)
class _Entry:
    range: TimeRange
    frame: pd.DataFrame
    nbytes: int
    stored: float


@dataclass(slots=True)
class CacheStats:
    """What the cache has done since it was made."""

    hits: int = 0
    misses: int = 0
    expired: int = 0


def frame_bytes(frame: pd.DataFrame) -> int:
    """Bytes a frame holds, without walking object columns value by value."""
    return int(frame.memory_usage(index=True, deep=False).sum())


class ReadCache:
    """LRU by bytes of settled, fully covered frames, keyed by series and range."""

    def __init__(
        self,
        max_bytes: int,
        *,
        ttl_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.stats = CacheStats()
        self._clock = clock
        self._entries: OrderedDict[_Key, _Entry] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def put(
        self,
        series: Series,
        rng: TimeRange,
        frame: pd.DataFrame,
        *,
        complete: bool,
        settled_until_us: int,
        context: Hashable = None,
    ) -> bool:
        """Keep ``frame`` if its range is complete, settled and fits; whether it was kept."""
        if not complete or rng.end_us > settled_until_us or self.max_bytes <= 0:
            return False
        size = frame_bytes(frame)
        if size > self.max_bytes:
            return False
        with self._lock:
            old = self._entries.pop((series, rng, context), None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[(series, rng, context)] = _Entry(rng, frame, size, self._clock())
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes
            CACHE_BYTES.set(self._bytes)
        return True

    def get(self, series: Series, rng: TimeRange, context: Hashable = None) -> pd.DataFrame | None:
        """The rows of ``rng`` if one live entry of the same context holds all of it."""
        now = self._clock()
        with self._lock:
            for key, entry in reversed(list(self._entries.items())):
                if key[0] != series or key[2] != context:
                    continue
                if self.ttl_s is not None and now - entry.stored > self.ttl_s:
                    del self._entries[key]
                    self._bytes -= entry.nbytes
                    self.stats.expired += 1
                    continue
                if entry.range.start_us <= rng.start_us and rng.end_us <= entry.range.end_us:
                    self._entries.move_to_end(key)
                    self.stats.hits += 1
                    CACHE_HITS.inc()
                    return _slice(entry.frame, entry.range, rng)
            CACHE_BYTES.set(self._bytes)
            self.stats.misses += 1
        CACHE_MISSES.inc()
        return None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            CACHE_BYTES.set(0)


def _slice(frame: pd.DataFrame, have: TimeRange, want: TimeRange) -> pd.DataFrame:
    if have == want:
        return frame.copy()
    ts = np.asarray(frame["ts"].astype("int64"))
    lo, hi = np.searchsorted(ts, [want.start_us, want.end_us], side="left")
    return frame.iloc[int(lo) : int(hi)].reset_index(drop=True)
