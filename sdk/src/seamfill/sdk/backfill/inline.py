"""Inline backfill: one machine, no coordinator.

The provider's own fetcher fills gaps in-process, writing over ILP exactly as a worker does (the
shared :func:`~seamfill.sdk.backfill.chunk.run_chunk`: fetch, write, wait until visible). Chunks are
single-flight within the process: two reads waiting on the same gap share one task per chunk.
Without a coordinator, coverage is what storage shows — runs of consecutive bars — plus the
chunks this process has already checked (so a source's holes are asked about once, not on every
read). The ``questdb`` client is imported only when a chunk is first written (the ``ilp`` extra).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from seamfill.core import ranges
from seamfill.core.logs import log_event
from seamfill.core.types import Dataset, Series, TimeRange
from seamfill.sdk.metrics import BACKFILL_WAIT_MS

logger = logging.getLogger("seamfill.sdk.backfill.inline")

ChunkRunner = Callable[[Series, TimeRange, Dataset], Awaitable[int]]


class InlineBackfill:
    """Fills gaps with a fetcher in this process; one task per chunk, shared by every waiter."""

    def __init__(self, fetcher: Any, questdb_url: str, *, run: ChunkRunner | None = None) -> None:
        self.fetcher = fetcher
        self.questdb_url = questdb_url
        self._run = run
        self._sink: Any = None
        self._tasks: dict[tuple[Series, int], asyncio.Task[int]] = {}
        self._checked: dict[Series, list[TimeRange]] = {}
        self._announced = False
        self.worker_id = f"inline-{socket.gethostname()}-{os.getpid()}"
        """Who fills, as the ``worker`` field of this process's backfill logs."""

    def checked(self, series: Series) -> list[TimeRange]:
        """Ranges this process has backfilled (rows written, or the source had none)."""
        return list(self._checked.get(series, ()))

    def start(
        self, series: Series, gaps: list[TimeRange], dataset: Dataset
    ) -> list[asyncio.Task[int]]:
        """Start (or join) a task per chunk of ``gaps``; the tasks a caller may wait on."""
        if not self._announced:
            self._announced = True
            log_event(
                logger,
                "seamless.backfill.inline",
                dataset=dataset.name,
                table=dataset.table,
                message="no coordinator configured: gaps are filled "
                "in this process with the provider's fetcher, written over ILP",
            )
        tasks = []
        for cell, part in ranges.chunk_cells(gaps, dataset.chunk_span_us):
            key = (series, cell)
            task = self._tasks.get(key)
            if task is None or (task.done() and (task.cancelled() or task.exception())):
                task = asyncio.ensure_future(self._chunk(series, part, dataset))
                self._tasks[key] = task
                task.add_done_callback(functools.partial(self._forget, key))
            tasks.append(task)
        return tasks

    def _forget(self, key: tuple[Series, int], task: asyncio.Task[int]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not reported as lost

    async def _chunk(self, series: Series, part: TimeRange, dataset: Dataset) -> int:
        log_event(
            logger,
            "seamless.backfill.attempt",
            dataset=dataset.name,
            start_us=part.start_us,
            end_us=part.end_us,
            inline=True,
        )
        try:
            rows = await (self._run or self._run_chunk)(series, part, dataset)
        except Exception as e:
            from seamfill.sdk.backfill.chunk import is_retryable

            # The same event and fields as a fleet chunk's failure, so one alert covers both.
            log_event(
                logger,
                "seamless.backfill.failed",
                logging.WARNING,
                lease="",
                worker=self.worker_id,
                reason=f"{type(e).__name__}: {e}",
                dataset=dataset.name,
                start_us=part.start_us,
                end_us=part.end_us,
                retryable=is_retryable(e),
                inline=True,
            )
            raise
        self._checked[series] = ranges.merge([*self._checked.get(series, []), part])
        log_event(
            logger, "seamless.backfill.succeeded", dataset=dataset.name, rows=rows, inline=True
        )
        return rows

    async def _run_chunk(self, series: Series, part: TimeRange, dataset: Dataset) -> int:
        from seamfill.sdk.backfill.adapters import as_fetcher
        from seamfill.sdk.backfill.chunk import run_chunk

        if self._sink is None:
            from seamfill.sdk.backfill.sink import QuestDBSink

            self._sink = QuestDBSink(self.questdb_url)
        return await run_chunk(as_fetcher(self.fetcher), self._sink, series, part, dataset)

    async def wait(
        self, tasks: list[asyncio.Task[int]], timeout: float | None, dataset: Dataset
    ) -> bool:
        """Wait for ``tasks`` up to ``timeout`` seconds; whether all finished (raises the first
        failure). The tasks keep running after a timeout: the next read finds them done."""
        if not tasks:
            return True
        started = time.monotonic()
        try:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
        finally:
            BACKFILL_WAIT_MS.labels(dataset.name).observe((time.monotonic() - started) * 1000)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return not pending

    async def aclose(self) -> None:
        """Cancel chunks still running and close the ILP senders."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._sink is not None:
            await self._sink.aclose()
            self._sink = None
