"""The ``Admin`` calls of :class:`seamfill.sdk.client._coordinator.CoordinatorClient` (a mixin)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seamfill.core import wire as cv
from seamfill.core.types import Chunk, Dataset, Job, JobState, Lease, Series, TimeRange
from seamfill.sdk.client._types import DatasetStats, ReconcileResult, Stats, WorkerInfo
from seamfill.v1 import admin_pb2


class AdminCalls:
    """Jobs, leases, workers, dead letters, datasets, stats and reconcile."""

    _admin: Any

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        raise NotImplementedError

    async def list_jobs(self, states: Sequence[JobState] = (), limit: int = 100) -> list[Job]:
        m = await self._call(
            self._admin.ListJobs,
            admin_pb2.ListJobsRequest(states=[cv.job_state_to_pb(s) for s in states], limit=limit),
        )
        return [cv.job_from_pb(j) for j in m.jobs]

    async def _job_call(self, method: Any, job_id: str) -> Job:
        return cv.job_from_pb(await self._call(method, admin_pb2.JobRequest(job_id=job_id)))

    async def get_job(self, job_id: str) -> Job:
        return await self._job_call(self._admin.GetJob, job_id)

    async def pause_job(self, job_id: str) -> Job:
        return await self._job_call(self._admin.PauseJob, job_id)

    async def resume_job(self, job_id: str) -> Job:
        return await self._job_call(self._admin.ResumeJob, job_id)

    async def cancel_job(self, job_id: str) -> Job:
        return await self._job_call(self._admin.CancelJob, job_id)

    async def list_leases(self, dataset: str = "", limit: int = 100) -> list[Lease]:
        m = await self._call(
            self._admin.ListLeases, admin_pb2.ListLeasesRequest(dataset=dataset, limit=limit)
        )
        return [cv.lease_from_pb(x) for x in m.leases]

    async def list_workers(self) -> list[WorkerInfo]:
        m = await self._call(self._admin.ListWorkers, admin_pb2.ListWorkersRequest())
        return [_worker(w) for w in m.workers]

    async def drain_worker(self, worker_id: str, undo: bool = False) -> WorkerInfo:
        """Drain a worker (it exits), or with ``undo`` let its id lease again."""
        return _worker(
            await self._call(
                self._admin.DrainWorker,
                admin_pb2.DrainWorkerRequest(worker_id=worker_id, undo=undo),
            )
        )

    async def list_dead_letters(self, dataset: str = "", limit: int = 100) -> list[Chunk]:
        m = await self._call(
            self._admin.ListDeadLetters,
            admin_pb2.ListDeadLettersRequest(dataset=dataset, limit=limit),
        )
        return [cv.chunk_from_pb(c) for c in m.chunks]

    async def requeue_dead_letters(self, chunk_ids: Sequence[str] = (), all: bool = False) -> int:
        m = await self._call(
            self._admin.RequeueDeadLetters,
            admin_pb2.RequeueDeadLettersRequest(chunk_ids=list(chunk_ids), all=all),
        )
        return int(m.requeued)

    async def list_datasets(self) -> list[Dataset]:
        m = await self._call(self._admin.ListDatasets, admin_pb2.ListDatasetsRequest())
        return [cv.dataset_from_pb(d) for d in m.datasets]

    async def get_stats(self) -> Stats:
        m = await self._call(self._admin.GetStats, admin_pb2.GetStatsRequest())
        return Stats(
            tuple(
                DatasetStats(
                    d.dataset,
                    d.queued,
                    d.leased,
                    d.backoff,
                    d.dead,
                    d.rows_done,
                    d.rows_per_second,
                    d.chunks_done,
                    d.lease_expiries,
                )
                for d in m.datasets
            ),
            m.jobs_running,
            m.workers,
            m.as_of_us,
        )

    async def list_series(self, dataset: str, range: TimeRange) -> list[str]:
        """Symbols of ``dataset`` that storage holds rows of in ``range`` or that have coverage."""
        m = await self._call(
            self._admin.ListSeries,
            admin_pb2.ListSeriesRequest(dataset=dataset, range=cv.range_to_pb(range)),
            timeout=120.0,
        )
        return list(m.symbols)

    async def reconcile(self, series: Series, range: TimeRange) -> ReconcileResult:
        m = await self._call(
            self._admin.Reconcile,
            admin_pb2.ReconcileRequest(series=cv.series_to_pb(series), range=cv.range_to_pb(range)),
            timeout=120.0,
        )
        return ReconcileResult(
            cv.ranges_from_pb(m.covered),
            cv.ranges_from_pb(m.removed),
            cv.ranges_from_pb(m.added),
            m.rows,
        )


def _worker(w: admin_pb2.Worker) -> WorkerInfo:
    return WorkerInfo(w.worker_id, tuple(w.sources), w.last_seen_us, w.leases, w.draining, w.rows)
