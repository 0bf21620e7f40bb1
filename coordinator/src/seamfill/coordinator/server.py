"""The coordinator replica: grpc.aio server with the three services, health, reflection, the
reaper and the metrics loop. Stateless: everything it knows is in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from seamfill.coordinator import metrics, views
from seamfill.coordinator.config import CoordinatorConfig
from seamfill.coordinator.console import Console
from seamfill.coordinator.limits import DecodeGuard
from seamfill.coordinator.notify import Hub
from seamfill.coordinator.service import Runtime
from seamfill.coordinator.service_admin import AdminService
from seamfill.coordinator.service_coverage import CoverageService
from seamfill.coordinator.service_leases import LeasesService
from seamfill.coordinator.store import Store, now_us
from seamfill.core.errors import SeamfillError
from seamfill.core.logs import log_event
from seamfill.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    coverage_pb2,
    coverage_pb2_grpc,
    leases_pb2,
    leases_pb2_grpc,
)

log = logging.getLogger("seamfill.coordinator")

SERVICE_NAMES = (
    coverage_pb2.DESCRIPTOR.services_by_name["Coverage"].full_name,
    leases_pb2.DESCRIPTOR.services_by_name["Leases"].full_name,
    admin_pb2.DESCRIPTOR.services_by_name["Admin"].full_name,
)
# Longest the reaper sleeps (capped at half the lease TTL); it wakes sooner for the next lease
# deadline or retry time it knows of. Acquire reclaims expired leases too, so this only bounds
# how late long-polling workers hear of an expiry.
_REAP_MAX_SLEEP_S = 5.0
_FLUSH_EVERY_S = 1.0
_STATS_EVERY_S = 5.0


def _stop_if_cancelled() -> None:
    """Raise CancelledError when this task was asked to stop: the Redis client may report a
    cancellation that lands mid-call as a connection error, which must not keep a loop going."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Coordinator:
    """One replica. ``await start()`` binds and returns the port; ``await stop()`` drains."""

    def __init__(
        self,
        config: CoordinatorConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 50051,
        metrics_port: int = 0,
        ui_port: int | None = None,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.config = config
        self.host = host
        self.port = port
        self.metrics_port = metrics_port
        self.store = Store(config, clock=clock)
        self.hub = Hub(self.store.redis, self.store.keys)
        self.runtime = Runtime(config, self.store, self.hub)
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self.server: grpc.aio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._serving: bool | None = None
        self._leases: LeasesService | None = None
        self.ui_port = ui_port
        self.console: Console | None = None

    async def start(self) -> int:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0)], interceptors=[DecodeGuard()])
        coverage_pb2_grpc.add_CoverageServicer_to_server(CoverageService(self.runtime), server)
        self._leases = LeasesService(self.runtime)
        leases_pb2_grpc.add_LeasesServicer_to_server(self._leases, server)
        admin_pb2_grpc.add_AdminServicer_to_server(AdminService(self.runtime), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        address = f"{self.host}:{self.port}"
        try:
            if self.config.tls.enabled:
                creds = grpc.ssl_server_credentials(
                    [
                        (
                            Path(self.config.tls.key).read_bytes(),
                            Path(self.config.tls.cert).read_bytes(),
                        )
                    ]
                )
                self.port = server.add_secure_port(address, creds)
            else:
                self.port = server.add_insecure_port(address)
        except RuntimeError as e:
            self.port = 0
            cause: Exception | None = e
        else:
            cause = None
        if self.port == 0:
            await server.stop(None)
            raise SeamfillError(
                f"cannot listen on {address}: the port is taken or the address is not local; "
                "pick another --host/--port"
            ) from cause
        if self.ui_port is not None:
            # Bound before the gRPC server starts: a taken port leaves nothing running.
            console = Console(self.runtime, self.host, self.ui_port)
            try:
                self.ui_port = await console.start()
            except SeamfillError:
                await server.stop(None)
                raise
            self.console = console
        await server.start()
        self.server = server
        await self._set_serving(True)
        await self.hub.start()
        self._tasks.append(asyncio.create_task(self._reaper(), name="seamfill-reaper"))
        self._tasks.append(asyncio.create_task(self._flusher(), name="seamfill-flush"))
        if self.metrics_port:
            self._tasks.append(asyncio.create_task(self._gauges(), name="seamfill-gauges"))
        return self.port

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, let running ones finish within ``grace``, close Redis."""
        await self._set_serving(False)
        if self.console is not None:
            await self.console.stop()
        self.hub.close_waiters()
        if self._leases is not None:
            self._leases.close_sessions()
        if self.server is not None:
            await self.server.stop(grace)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        with contextlib.suppress(SeamfillError):
            await self.runtime.workers.flush()
        await self.hub.stop()
        await self.store.close()

    async def wait(self) -> None:
        if self.server is not None:
            await self.server.wait_for_termination()

    async def _set_serving(self, ok: bool) -> None:
        if ok == self._serving:
            return
        self._serving = ok
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if ok
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)

    async def _reaper(self) -> None:
        """Expired leases and due retries back to the queue. Every replica runs one; the
        scripts make concurrent runs safe. Also tracks whether Redis answers (health)."""
        longest = min(_REAP_MAX_SLEEP_S, self.config.lease_ttl_ms / 2000)
        while True:
            sleep = longest
            try:
                for name in sorted(self.config.datasets):
                    r = await self.runtime.leasing.reap(name)
                    await self.store.resume_planning(name)
                    if r.expired:
                        metrics.LEASE_EXPIRIES.labels(name).inc(r.expired)
                        log_event(
                            log,
                            "seamless.lease.expired",
                            logging.WARNING,
                            dataset=name,
                            leases=r.expired,
                        )
                    if r.dead:
                        metrics.DEAD_LETTERED.labels(name).inc(r.dead)
                    if r.due_in_us >= 0:
                        sleep = min(sleep, r.due_in_us / 1e6 + 0.01)
                if not self.config.datasets:
                    await self.store.ping()
                await self._set_serving(True)
            except SeamfillError as e:
                _stop_if_cancelled()
                log_event(log, "seamless.coordinator.unavailable", logging.WARNING, error=e.message)
                await self._set_serving(False)
                sleep = 1.0
            await asyncio.sleep(max(0.02, sleep))

    async def _flusher(self) -> None:
        """Batch the per-worker row counters into Redis once a second."""
        while True:
            await asyncio.sleep(_FLUSH_EVERY_S)
            try:
                await self.runtime.workers.flush()
            except SeamfillError:
                _stop_if_cancelled()

    async def _gauges(self) -> None:
        """Refresh the shared-state gauges from Redis (every replica reports the fleet's)."""
        while True:
            with contextlib.suppress(SeamfillError):
                st = await views.stats(self.store)
                for d in st.datasets:
                    metrics.QUEUE_DEPTH.labels(d.dataset).set(d.queued)
                    metrics.BACKOFF_DEPTH.labels(d.dataset).set(d.backoff)
                    metrics.LEASES_IN_FLIGHT.labels(d.dataset).set(d.leased)
                    metrics.DEAD_LETTERS.labels(d.dataset).set(d.dead)
                metrics.JOBS_RUNNING.set(st.jobs_running)
                metrics.WORKERS.set(st.workers)
                await self._completion_ratio()
            await asyncio.sleep(_STATS_EVERY_S)

    async def _completion_ratio(self) -> None:
        totals: dict[str, list[int]] = {}
        for job in await self.store.jobs(limit=1_000):
            if job.state.value != "running":
                continue
            t = totals.setdefault(job.series.dataset, [0, 0])
            t[0] += job.progress.chunks_done
            t[1] += job.progress.chunks_total
        for name in self.config.datasets:
            done, total = totals.get(name, [0, 0])
            metrics.COMPLETION_RATIO.labels(name).set(done / total if total else 1.0)


async def serve(
    config: CoordinatorConfig,
    *,
    host: str,
    port: int,
    metrics_port: int = 0,
    ready: Callable[[str, int], None] | None = None,
    stop: asyncio.Event | None = None,
    ui_port: int | None = None,
    ui_ready: Callable[[str], None] | None = None,
) -> None:
    """Run a replica until ``stop`` is set (or the server terminates)."""
    if metrics_port:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=host)
    if not config.auth.enabled and host not in ("127.0.0.1", "localhost", "::1"):
        log.warning(
            "no auth tokens are configured and the coordinator listens on %s: anyone who can "
            "reach it may call it; configure auth.reader/worker/admin tokens",
            host,
        )
    coord = Coordinator(config, host=host, port=port, metrics_port=metrics_port, ui_port=ui_port)
    bound = await coord.start()
    log_event(
        log,
        "seamless.coordinator.started",
        address=f"{host}:{bound}",
        datasets=sorted(config.datasets),
    )
    if ready is not None:
        ready(host, bound)
    if ui_ready is not None and coord.console is not None:
        ui_ready(coord.console.url)
    try:
        if stop is None:
            await coord.wait()
        else:
            await stop.wait()
    finally:
        t0 = time.monotonic()
        await coord.stop()
        log_event(log, "seamless.coordinator.stopped", seconds=round(time.monotonic() - t0, 3))
