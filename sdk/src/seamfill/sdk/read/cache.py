"""A small in-process cache of settled, fully covered reads, bounded in bytes.

Only a range that storage covers completely and that lies wholly before the settled edge may be
stored: such rows no longer change, so a hit is as good as a read. A hit is an entry whose range
contains the requested one; the answer is the slice of its rows. Least recently used entries go
first when the byte budget is exceeded.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seamfill.core.types import Series, TimeRange


@dataclass(frozen=True, slots=True)
class _Entry:
    range: TimeRange
    frame: pd.DataFrame
    nbytes: int


def frame_bytes(frame: pd.DataFrame) -> int:
    """Bytes a frame holds, without walking object columns value by value."""
    return int(frame.memory_usage(index=True, deep=False).sum())


class ReadCache:
    """LRU by bytes of settled, fully covered frames, keyed by series and range."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[Series, TimeRange], _Entry] = OrderedDict()
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
    ) -> bool:
        """Keep ``frame`` if its range is complete, settled and fits; whether it was kept."""
        if not complete or rng.end_us > settled_until_us or self.max_bytes <= 0:
            return False
        size = frame_bytes(frame)
        if size > self.max_bytes:
            return False
        with self._lock:
            old = self._entries.pop((series, rng), None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[(series, rng)] = _Entry(rng, frame, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes
        return True

    def get(self, series: Series, rng: TimeRange) -> pd.DataFrame | None:
        """The rows of ``rng`` if one entry holds all of it, else ``None``."""
        with self._lock:
            for key, entry in reversed(self._entries.items()):
                if key[0] != series:
                    continue
                if entry.range.start_us <= rng.start_us and rng.end_us <= entry.range.end_us:
                    self._entries.move_to_end(key)
                    return _slice(entry.frame, entry.range, rng)
        return None

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0


def _slice(frame: pd.DataFrame, have: TimeRange, want: TimeRange) -> pd.DataFrame:
    if have == want:
        return frame.copy()
    ts = np.asarray(frame["ts"].astype("int64"))
    lo, hi = np.searchsorted(ts, [want.start_us, want.end_us], side="left")
    return frame.iloc[int(lo) : int(hi)].reset_index(drop=True)
