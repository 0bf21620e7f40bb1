"""The fetchers a worker uses: one instance per (source, options), fleet-wide rate limit wired in.

A fetcher that has ``use_rate_limiter(limiter)`` (the ccxt fetcher does) gets
:meth:`Fetchers.take_tokens`, which waits on the coordinator's ``TakeTokens`` for the source.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping

from seamfill.core.errors import CoordinatorUnavailable
from seamfill.core.types import Dataset
from seamfill.sdk.backfill.fetchers import Fetcher, load_fetcher, source_name
from seamfill.worker import metrics
from seamfill.worker.aio import Backoff
from seamfill.worker.leases import LeaseService

__all__ = ["Fetchers"]


class Fetchers:
    """Fetcher instances by dataset source and options; ``extra`` factories win over plugins."""

    def __init__(
        self,
        leases: LeaseService,
        worker_id: str,
        extra: Mapping[str, Callable[..., Fetcher]] | None = None,
        reconnect_max_s: float = 10.0,
    ) -> None:
        self.leases = leases
        self.worker_id = worker_id
        self.reconnect_max_s = reconnect_max_s
        self._extra = dict(extra or {})
        self._made: dict[tuple[str, tuple[tuple[str, str], ...]], Fetcher] = {}

    def get(self, ds: Dataset) -> Fetcher:
        """The fetcher for ``ds`` (made on first use)."""
        key = (ds.source, tuple(sorted(ds.options.items())))
        fetcher = self._made.get(key)
        if fetcher is None:
            factory = self._extra.get(source_name(ds.source))
            fetcher = factory(**ds.options) if factory else load_fetcher(ds.source, **ds.options)
            use = getattr(fetcher, "use_rate_limiter", None)
            if callable(use):
                use(self.take_tokens)
            self._made[key] = fetcher
        return fetcher

    async def take_tokens(self, source: str, tokens: int) -> None:
        """Wait for ``tokens`` of the fleet-wide rate limit of ``source``."""
        backoff = Backoff(0.05, self.reconnect_max_s)
        while True:
            try:
                granted, retry_ms = await self.leases.take_tokens(self.worker_id, source, tokens)
            except CoordinatorUnavailable:
                await asyncio.sleep(backoff.next())
                continue
            if granted:
                return
            metrics.RATE_LIMIT_WAITS.labels(source_name(source)).inc()
            await asyncio.sleep(max(retry_ms, 5) / 1000)

    async def aclose(self) -> None:
        """Close fetchers that hold connections (``aclose``)."""
        made, self._made = self._made, {}
        for fetcher in made.values():
            close = getattr(fetcher, "aclose", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    await close()
