"""The provider's side of the coordinator: coverage, jobs, deadline-bounded waits, and — when
the provider has a fetcher of its own — taking leases like any worker while it waits
(:mod:`seamfill.sdk.backfill._lease_helper`, which also stops a chunk as a worker does).

Every call is bounded by the deadline of the stage it serves (``asyncio.wait_for`` around the
RPC or the WatchJob stream), so a slow or absent coordinator costs at most that deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Any, cast

from seamfill.core import ranges
from seamfill.core.errors import FetchError, InvalidArgument, SeamfillError
from seamfill.core.timeconv import interval_to_us
from seamfill.core.tracing import current_traceparent
from seamfill.core.types import (
    Coverage,
    Dataset,
    Fingerprint,
    Job,
    JobState,
    Priority,
    Series,
    TimeRange,
)
from seamfill.sdk.client._coordinator import CoordinatorClient
from seamfill.sdk.settings import SeamlessSettings

# After the wait ends, the lease helper may finish its poll or chunk for this long; then it is
# cancelled (and releases what it holds).
_HELPER_GRACE_S = 0.5


class FleetBackend:
    """Coverage and backfill through the coordinator."""

    def __init__(self, settings: SeamlessSettings) -> None:
        addr = settings.coordinator
        if addr is None:
            raise InvalidArgument("coordinator_url is not set")
        self.settings = settings
        self.client = CoordinatorClient(
            addr.target,
            token=settings.coordinator_token,
            tls=addr.tls,
            allow_plaintext_token=settings.allow_plaintext_token,
        )
        self.worker_id = f"sdk-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._datasets: dict[str, Dataset] = {}
        self._sink: Any = None

    async def coverage(
        self, series: Series, rng: TimeRange, interval: Any, timeout: float | None
    ) -> tuple[Coverage, Dataset]:
        """Coverage of ``rng`` widened to the dataset's grid, and the dataset."""
        return await asyncio.wait_for(self._coverage(series, rng, interval), timeout)

    async def _coverage(
        self, series: Series, rng: TimeRange, interval: Any
    ) -> tuple[Coverage, Dataset]:
        ds = self._datasets.get(series.dataset)
        if ds is None:
            ds = await self.client.get_dataset(series, rng)
            self._datasets[series.dataset] = ds
        if interval is not None and interval_to_us(interval) != ds.interval_us:
            raise InvalidArgument(
                f"interval {interval!r} does not match dataset {ds.name!r}, whose bars are "
                f"{ds.interval_us // 1_000_000} s: pass interval={ds.interval_us // 1_000_000} "
                "or read another dataset"
            )
        cov = await self.client.get_coverage(series, ranges.align_outward(rng, ds.interval_us))
        return cov, ds

    async def ensure(self, series: Series, hist: TimeRange, timeout: float | None) -> str:
        """A job filling the gaps of ``hist`` (interactive priority); ``""`` if none was needed."""
        job = await asyncio.wait_for(
            self.client.ensure_range(
                series,
                hist,
                Priority.INTERACTIVE,
                requested_by=self.settings.requested_by,
                traceparent=current_traceparent(),
            ),
            timeout,
        )
        return job.job_id if job is not None else ""

    async def wait(self, job_id: str, st: Any, timeout: float | None, fetcher: Any) -> bool:
        """Wait for the job to end, at most ``timeout`` seconds; whether it finished done."""
        helper = None
        stop = asyncio.Event()
        if fetcher is not None and self.settings.take_leases:
            helper = asyncio.ensure_future(self._take_leases(st.dataset, fetcher, stop))
        try:
            job = await asyncio.wait_for(self._watch(job_id), timeout)
        except TimeoutError:
            return False
        finally:
            if helper is not None:
                stop.set()
                done, _ = await asyncio.wait([helper], timeout=_HELPER_GRACE_S)
                if not done:
                    helper.cancel()
                await asyncio.gather(helper, return_exceptions=True)
        if job.state is not JobState.DONE:
            raise FetchError(
                f"backfill job {job_id} ended {job.state.value}: "
                f"{job.error or 'see seamfill admin jobs / dead-letters'}",
                retryable=job.state is JobState.CANCELLED,
            )
        return True

    async def _watch(self, job_id: str) -> Job:
        last = None
        stream = cast(AsyncGenerator[Job, None], self.client.watch_job(job_id))
        async with contextlib.aclosing(stream):
            async for job in stream:
                last = job
                if job.finished:
                    return job
        if last is None:
            raise SeamfillError(f"job {job_id} ended without a state")
        return last

    async def _take_leases(self, dataset: Dataset, fetcher: Any, stop: asyncio.Event) -> None:
        """Work chunks of ``dataset``'s source like a worker until ``stop`` is set."""
        from seamfill.sdk.backfill._lease_helper import LeaseHelper
        from seamfill.sdk.backfill.adapters import as_fetcher
        from seamfill.sdk.backfill.sink import QuestDBSink

        if self._sink is None:
            self._sink = QuestDBSink(self.settings.storage_url)
        helper = LeaseHelper(self.client, self._sink, self.worker_id)
        await helper.run(dataset, as_fetcher(fetcher), stop)

    async def publish(self, fp: Fingerprint) -> Fingerprint:
        out: Fingerprint = await self.client.publish_fingerprint(
            replace(fp, published_by=self.settings.requested_by)
        )
        return out

    async def aclose(self) -> None:
        if self._sink is not None:
            await self._sink.aclose()
        await self.client.close()
