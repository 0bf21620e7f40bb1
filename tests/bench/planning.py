"""Acquire latency while one EnsureRange plans 100,000 chunks, against the same load without it.

Four simulated workers loop unary Acquire + Complete on one dataset of a real coordinator
process; during the "planning" window another series gets one EnsureRange of 100,000 chunks
(the window lasts until that call returns, i.e. until every chunk is planned). The "quiet"
window is as long, without the EnsureRange. Rounds alternate which window goes first.

- ``acquire_p99_planning_vs_quiet``: Acquire p99 during planning ÷ p99 in the quiet window of
  the same round (median round). Planning in bounded batches keeps this near 1; one script
  planning every chunk would hold Redis for seconds and show as a p99 of seconds.
- ``slowest_redis_call_ms``: the longest call SLOWLOG saw over the whole run.

Usage: ``python -m tests.bench planning``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import redis

from seamfill.v1 import common_pb2, coverage_pb2, coverage_pb2_grpc, leases_pb2, leases_pb2_grpc
from tests.bench.coordinator import _pct, _private_redis
from tests.coordinator_fixtures import start_coordinator_process, write_config

HOUR = 3_600_000_000
LOOPED = "bench.loop"
PLANNED = "bench.plan"
CHUNKS = 100_000
WORKERS = 4
ROUNDS = 3


def _spec(table: str) -> dict[str, Any]:
    return {"table": table, "source": "synthetic", "interval": "1m", "chunk_bars": 60}


async def _ensure(address: str, dataset: str, symbol: str, chunks: int) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        t0 = time.perf_counter()
        await coverage_pb2_grpc.CoverageStub(channel).EnsureRange(
            coverage_pb2.EnsureRangeRequest(
                series=common_pb2.Series(dataset=dataset, symbol=symbol),
                range=common_pb2.TimeRange(start_us=0, end_us=chunks * HOUR),
            ),
            timeout=600,
        )
        return time.perf_counter() - t0


async def _window(address: str, seconds: float | None, plan_symbol: str | None) -> dict[str, Any]:
    """Acquire latencies of the looping workers for ``seconds``, or while planning."""
    latencies: list[float] = []
    done = asyncio.Event()

    async def worker(i: int) -> None:
        wid = f"bench-loop{i}"
        async with grpc.aio.insecure_channel(address) as channel:
            stub = leases_pb2_grpc.LeasesStub(channel)
            ask = leases_pb2.AcquireRequest(worker_id=wid, sources=["synthetic"], max=1)
            while not done.is_set():
                t0 = time.perf_counter()
                got = await stub.Acquire(ask, timeout=30)
                latencies.append((time.perf_counter() - t0) * 1000)
                for lease in got.leases:
                    await stub.Complete(
                        leases_pb2.CompleteRequest(
                            lease_id=lease.lease_id, token=lease.token, rows=1, worker_id=wid
                        ),
                        timeout=30,
                    )

    tasks = [asyncio.create_task(worker(i)) for i in range(WORKERS)]
    t0 = time.perf_counter()
    if plan_symbol is not None:
        await _ensure(address, PLANNED, plan_symbol, CHUNKS)
    else:
        await asyncio.sleep(seconds or 0.0)
    elapsed = time.perf_counter() - t0
    done.set()
    await asyncio.gather(*tasks)
    return {
        "seconds": round(elapsed, 2),
        "acquires": len(latencies),
        "acquire_p50_ms": round(_pct(latencies, 0.50), 3),
        "acquire_p99_ms": round(_pct(latencies, 0.99), 3),
    }


async def _rounds(address: str) -> list[dict[str, Any]]:
    await _ensure(address, LOOPED, "LOOP", 60_000)  # more than every window can lease
    out = []
    for i in range(ROUNDS):
        if i % 2 == 0:
            planning = await _window(address, None, f"P{i}")
            quiet = await _window(address, planning["seconds"], None)
        else:
            quiet = await _window(address, 10.0, None)
            planning = await _window(address, None, f"P{i}")
        out.append(
            {
                "planning": planning,
                "quiet": quiet,
                "ratio": round(planning["acquire_p99_ms"] / quiet["acquire_p99_ms"], 3),
            }
        )
    return out


def run() -> dict[str, Any]:
    load = os.getloadavg()[0]
    with _private_redis() as url, tempfile.TemporaryDirectory() as tmp:
        r = redis.Redis.from_url(url)
        r.config_set("slowlog-log-slower-than", 10_000)
        r.slowlog_reset()
        datasets = {LOOPED: _spec("bench_loop"), PLANNED: _spec("bench_plan")}
        cfg = write_config(Path(tmp) / "c.yaml", url, "sfbench:", datasets, max_job_chunks=CHUNKS)
        proc = start_coordinator_process(cfg, extra_args=("--log-level", "WARNING"))
        try:
            rounds = asyncio.run(_rounds(proc.address))
            slowest = max((e["duration"] for e in r.slowlog_get(1000)), default=0)
        finally:
            proc.stop()
            r.close()
    ratios = sorted(float(x["ratio"]) for x in rounds)
    return {
        "chunks_planned": CHUNKS,
        "looping_workers": WORKERS,
        "load_average_1m_at_start": round(load, 2),
        "rounds": rounds,
        "planning_seconds": [x["planning"]["seconds"] for x in rounds],
        "acquire_p99_planning_vs_quiet": ratios[len(ratios) // 2],
        "acquire_p99_planning_vs_quiet_range": [ratios[0], ratios[-1]],
        "slowest_redis_call_ms": round(slowest / 1000, 2),
    }
