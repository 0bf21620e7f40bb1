"""This replica's memory of worker records, so an idle fleet costs Redis almost nothing.

Every Acquire and Heartbeat refreshes the caller's worker record; doing it in Redis on every call
would make an idle worker (one Acquire long-poll every few seconds) cost a few commands each
time. The registry writes a worker's record at most once per :data:`WORKER_REFRESH_US` (and when
its sources change) and learns of drains at once from the drain channel. Redis stays the truth:
the cache only skips refreshes, and is forgotten whenever the notification channel drops.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from seamfill.coordinator.leasing import Leasing
from seamfill.coordinator.notify import Hub

WORKER_REFRESH_US = 45_000_000
_MAX_ENTRIES = 100_000


@dataclass(slots=True)
class _Seen:
    at: float
    generation: int
    sources: tuple[str, ...]
    draining: bool


class WorkerRegistry:
    """Refreshes worker records in Redis at most once per interval per worker."""

    def __init__(
        self, leasing: Leasing, hub: Hub, refresh_s: float = WORKER_REFRESH_US / 1e6
    ) -> None:
        self._leasing = leasing
        self._hub = hub
        self._refresh_s = refresh_s
        self._seen: dict[str, _Seen] = {}
        self._rows: dict[str, int] = {}

    async def seen(self, worker_id: str, sources: Sequence[str] | None) -> bool:
        """Note that ``worker_id`` called (``sources`` None: keep the recorded ones); returns
        whether it was asked to drain."""
        now = time.monotonic()
        entry = self._seen.get(worker_id)
        fresh = (
            entry is not None
            and self._hub.connected.is_set()
            and entry.generation == self._hub.generation
            and now - entry.at < self._refresh_s
            and (sources is None or tuple(sources) == entry.sources)
        )
        if entry is not None and fresh:
            return entry.draining or worker_id in self._hub.draining
        generation = self._hub.generation
        draining = await self._leasing.worker_seen(worker_id, sources)
        if len(self._seen) >= _MAX_ENTRIES:
            self._seen.clear()
        known = tuple(sources) if sources is not None else (entry.sources if entry else ())
        self._seen[worker_id] = _Seen(now, generation, known, draining)
        return draining

    def add_rows(self, worker_id: str, rows: int) -> None:
        """Count rows a worker completed; written to Redis in batches by :meth:`flush`."""
        if worker_id and rows > 0:
            self._rows[worker_id] = self._rows.get(worker_id, 0) + rows

    async def flush(self) -> None:
        """Write the counted rows (one pipeline for every worker); kept for a retry on failure."""
        if not self._rows:
            return
        rows, self._rows = self._rows, {}
        try:
            await self._leasing.add_worker_rows(rows)
        except Exception:
            for w, n in rows.items():
                self._rows[w] = self._rows.get(w, 0) + n
            raise
