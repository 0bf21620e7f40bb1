"""The ``Admin`` service: jobs, leases, workers, dead letters, stats and reconcile."""

from __future__ import annotations

from seamfill.coordinator import views
from seamfill.coordinator.reconcile import reconcile, symbols_of
from seamfill.coordinator.service import Ctx, Role, Servicer, rpc
from seamfill.coordinator.service_coverage import request_range, request_series
from seamfill.core import wire as cv
from seamfill.core.errors import InvalidArgument
from seamfill.core.types import WorkerInfo
from seamfill.v1 import admin_pb2, admin_pb2_grpc, common_pb2

_MAX_LIMIT = 10_000


def _limit(value: int, default: int = 100) -> int:
    if not 0 <= value <= _MAX_LIMIT:
        raise InvalidArgument(f"limit = {value} must be within [0, {_MAX_LIMIT}] (0 = {default})")
    return value or default


def _worker_pb(w: WorkerInfo) -> admin_pb2.Worker:
    return admin_pb2.Worker(
        worker_id=w.worker_id,
        sources=list(w.sources),
        last_seen_us=w.last_seen_us,
        leases=w.leases,
        draining=w.draining,
        rows=w.rows,
    )


class AdminService(Servicer, admin_pb2_grpc.AdminServicer):
    """Operator calls; every one needs the admin role when auth is on."""

    @rpc(Role.ADMIN)
    async def ListJobs(
        self, request: admin_pb2.ListJobsRequest, context: Ctx
    ) -> admin_pb2.ListJobsResponse:
        states = []
        for s in request.states:
            state = cv.job_state_from_pb(s)
            if state is None:
                raise InvalidArgument(f"states: {s} is not a job state")
            states.append(state)
        jobs = await self.rt.store.jobs(states, _limit(request.limit))
        return admin_pb2.ListJobsResponse(jobs=[cv.job_to_pb(j) for j in jobs])

    async def _job_id(self, request: admin_pb2.JobRequest) -> str:
        if not request.job_id:
            raise InvalidArgument("job_id is empty: give a job id (see ListJobs)")
        return request.job_id

    @rpc(Role.ADMIN)
    async def GetJob(self, request: admin_pb2.JobRequest, context: Ctx) -> common_pb2.Job:
        return cv.job_to_pb(await self.rt.store.job(await self._job_id(request)))

    @rpc(Role.ADMIN)
    async def PauseJob(self, request: admin_pb2.JobRequest, context: Ctx) -> common_pb2.Job:
        job = await self.rt.store.control_job(await self._job_id(request), "pause")
        return cv.job_to_pb(job)

    @rpc(Role.ADMIN)
    async def ResumeJob(self, request: admin_pb2.JobRequest, context: Ctx) -> common_pb2.Job:
        job = await self.rt.store.control_job(await self._job_id(request), "resume")
        return cv.job_to_pb(job)

    @rpc(Role.ADMIN)
    async def CancelJob(self, request: admin_pb2.JobRequest, context: Ctx) -> common_pb2.Job:
        job = await self.rt.store.control_job(await self._job_id(request), "cancel")
        return cv.job_to_pb(job)

    @rpc(Role.ADMIN)
    async def ListLeases(
        self, request: admin_pb2.ListLeasesRequest, context: Ctx
    ) -> admin_pb2.ListLeasesResponse:
        leases = await views.leases(self.rt.store, request.dataset, _limit(request.limit))
        return admin_pb2.ListLeasesResponse(leases=[cv.lease_to_pb(x) for x in leases])

    @rpc(Role.ADMIN)
    async def ListWorkers(
        self, request: admin_pb2.ListWorkersRequest, context: Ctx
    ) -> admin_pb2.ListWorkersResponse:
        return admin_pb2.ListWorkersResponse(
            workers=[_worker_pb(w) for w in await views.workers(self.rt.store)]
        )

    @rpc(Role.ADMIN)
    async def DrainWorker(
        self, request: admin_pb2.DrainWorkerRequest, context: Ctx
    ) -> admin_pb2.Worker:
        if not request.worker_id:
            raise InvalidArgument("worker_id is empty: give a worker id (see ListWorkers)")
        worker = await views.drain(self.rt.store, request.worker_id, request.undo)
        if request.undo:
            self.rt.hub.undrained(request.worker_id)  # this replica at once; others by pub/sub
        return _worker_pb(worker)

    @rpc(Role.ADMIN)
    async def ListDeadLetters(
        self, request: admin_pb2.ListDeadLettersRequest, context: Ctx
    ) -> admin_pb2.ListDeadLettersResponse:
        chunks = await views.dead_letters(self.rt.store, request.dataset, _limit(request.limit))
        return admin_pb2.ListDeadLettersResponse(chunks=[cv.chunk_to_pb(c) for c in chunks])

    @rpc(Role.ADMIN)
    async def RequeueDeadLetters(
        self, request: admin_pb2.RequeueDeadLettersRequest, context: Ctx
    ) -> admin_pb2.RequeueDeadLettersResponse:
        if not request.all and not request.chunk_ids:
            raise InvalidArgument(
                "give chunk_ids to requeue, or all=true to requeue every dead letter"
            )
        n = await views.requeue_dead(self.rt.store, list(request.chunk_ids), request.all)
        return admin_pb2.RequeueDeadLettersResponse(requeued=n)

    @rpc(Role.ADMIN)
    async def ListDatasets(
        self, request: admin_pb2.ListDatasetsRequest, context: Ctx
    ) -> admin_pb2.ListDatasetsResponse:
        return admin_pb2.ListDatasetsResponse(
            datasets=[cv.dataset_to_pb(ds) for _, ds in sorted(self.rt.config.datasets.items())]
        )

    @rpc(Role.ADMIN)
    async def GetStats(self, request: admin_pb2.GetStatsRequest, context: Ctx) -> admin_pb2.Stats:
        st = await views.stats(self.rt.store)
        return admin_pb2.Stats(
            datasets=[
                admin_pb2.DatasetStats(
                    dataset=d.dataset,
                    queued=d.queued,
                    leased=d.leased,
                    backoff=d.backoff,
                    dead=d.dead,
                    rows_done=d.rows_done,
                    rows_per_second=d.rows_per_second,
                    chunks_done=d.chunks_done,
                    lease_expiries=d.lease_expiries,
                )
                for d in st.datasets
            ],
            jobs_running=st.jobs_running,
            workers=st.workers,
            as_of_us=st.as_of_us,
        )

    @rpc(Role.ADMIN)
    async def Reconcile(
        self, request: admin_pb2.ReconcileRequest, context: Ctx
    ) -> admin_pb2.ReconcileResponse:
        series, r = request_series(request), request_range(request)
        self.rt.store.dataset(series.dataset, symbol=series.symbol)
        res = await reconcile(self.rt.store, series, r)
        return admin_pb2.ReconcileResponse(
            covered=[cv.range_to_pb(x) for x in res.covered],
            removed=[cv.range_to_pb(x) for x in res.removed],
            added=[cv.range_to_pb(x) for x in res.added],
            rows=res.rows,
        )

    @rpc(Role.ADMIN)
    async def ListSeries(
        self, request: admin_pb2.ListSeriesRequest, context: Ctx
    ) -> admin_pb2.ListSeriesResponse:
        if not request.dataset:
            raise InvalidArgument("dataset is empty: give a dataset name")
        r = request_range(request)
        return admin_pb2.ListSeriesResponse(
            symbols=await symbols_of(self.rt.store, request.dataset, r)
        )
