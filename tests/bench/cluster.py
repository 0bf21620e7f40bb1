"""Lease cycles on a Redis Cluster against one Redis, and against bare EVALSHA, in one run.

One coordinator process per backend (the single Redis of ``make services`` and the cluster of
``make services-cluster``), each loaded by 16 simulated workers looping Acquire + Complete over
the Session stream (``tests.bench.coordinator``'s load). The floor is two bare EVALSHA of a
trivial script per cycle, 16 clients at once, on the node that holds the dataset's slot.
Rounds alternate the backends; the median round is reported.

- ``cluster_vs_single``: cycles/s on the cluster ÷ on one Redis. One dataset is one slot, so
  a dataset's lease cycles are served by one master: the ratio is what the cluster client's
  routing costs (≈ 1 is the goal); the cluster scales across datasets, not within one.
- ``cluster_vs_evalsha_pairs``, ``single_vs_evalsha_pairs``: cycles/s ÷ EVALSHA pairs/s on the
  same node.

Usage: ``python -m tests.bench cluster`` (needs ``make services services-cluster``).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from seamfill.core.types import Series, TimeRange
from seamfill.sdk.client._coordinator import CoordinatorClient
from tests.bench.coordinator import _cycles
from tests.coordinator_fixtures import start_coordinator_process, write_config
from tests.redis_backends import delete_prefix, sync_client

SINGLE_URL = os.environ.get("SEAMFILL_REDIS_URL", "redis://127.0.0.1:6379/0")
CLUSTER_URL = os.environ.get(
    "SEAMFILL_CLUSTER_URL", "redis+cluster://127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102"
)
DATASET = "bench.cl"
MIN = 60_000_000
WORKERS = 16
SECONDS = 4.0
ROUNDS = 3
CHUNKS = 200_000


async def _evalsha_pairs(host: str, port: int, key: str, seconds: float) -> float:
    """EVALSHA pairs/s of a trivial script on one node, ``WORKERS`` clients at once."""
    r = aredis.Redis(host=host, port=port)
    sha = await r.script_load("return redis.call('EXISTS', KEYS[1])")
    count = 0
    stop_at = time.monotonic() + seconds

    async def client() -> None:
        nonlocal count
        c = aredis.Redis(host=host, port=port)
        while time.monotonic() < stop_at:
            await c.evalsha(sha, 1, key)
            await c.evalsha(sha, 1, key)
            count += 1
        await c.aclose()

    t0 = time.monotonic()
    await asyncio.gather(*(client() for _ in range(WORKERS)))
    elapsed = time.monotonic() - t0
    await r.aclose()
    return count / elapsed


def _node_of(url: str, key: str) -> tuple[str, int]:
    r = sync_client(url)
    try:
        if hasattr(r, "get_node_from_key"):
            node = r.get_node_from_key(key)
            return str(node.host), int(node.port)
        kw = r.connection_pool.connection_kwargs
        return str(kw.get("host", "127.0.0.1")), int(kw.get("port", 6379))
    finally:
        r.close()


async def _fill(address: str) -> None:
    async with CoordinatorClient(address, timeout_s=120) as c:
        done = 0
        while done < CHUNKS:
            n = min(100_000, CHUNKS - done)
            await c.ensure_range(Series(DATASET, "CYC"), TimeRange(done * MIN, (done + n) * MIN))
            done += n


def run() -> dict[str, Any]:
    prefix = f"sfbench:{uuid.uuid4().hex[:8]}:"
    spec = {
        DATASET: {"table": "bench_cl", "source": "synthetic", "interval": "1m", "chunk_bars": 1}
    }
    procs = {}
    rounds: list[dict[str, Any]] = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for name, url in (("single", SINGLE_URL), ("cluster", CLUSTER_URL)):
                cfg = write_config(Path(tmp) / f"{name}.yaml", url, prefix, spec)
                procs[name] = start_coordinator_process(cfg, extra_args=("--log-level", "WARNING"))
                asyncio.run(_fill(procs[name].address))
            nodes = {
                n: _node_of(u, f"{prefix}{{{DATASET}}}:x")
                for n, u in (("single", SINGLE_URL), ("cluster", CLUSTER_URL))
            }
            for i in range(ROUNDS):
                order = ("single", "cluster") if i % 2 == 0 else ("cluster", "single")
                got: dict[str, float] = {}
                for name in order:
                    f = asyncio.run(_cycles(procs[name].address, WORKERS, SECONDS, batch=1))
                    got[name] = float(f["cycles_per_s"])
                    host, port = nodes[name]
                    key = f"{prefix}{{{DATASET}}}:floor"
                    got[f"{name}_evalsha"] = asyncio.run(_evalsha_pairs(host, port, key, SECONDS))
                rounds.append(
                    {
                        "single_cycles_per_s": round(got["single"], 1),
                        "cluster_cycles_per_s": round(got["cluster"], 1),
                        "single_evalsha_pairs_per_s": round(got["single_evalsha"], 1),
                        "cluster_evalsha_pairs_per_s": round(got["cluster_evalsha"], 1),
                        "cluster_vs_single": round(got["cluster"] / got["single"], 3),
                        "cluster_vs_evalsha_pairs": round(
                            got["cluster"] / got["cluster_evalsha"], 3
                        ),
                        "single_vs_evalsha_pairs": round(got["single"] / got["single_evalsha"], 3),
                    }
                )
        finally:
            for p in procs.values():
                p.stop()
            for url in (SINGLE_URL, CLUSTER_URL):
                delete_prefix(url, prefix)

    def median(key: str) -> float:
        values = sorted(float(r[key]) for r in rounds)
        return values[len(values) // 2]

    return {
        "workers": WORKERS,
        "round_seconds": SECONDS,
        "load_average_1m_at_start": round(load, 2),
        "rounds": rounds,
        "cluster_vs_single": median("cluster_vs_single"),
        "cluster_vs_evalsha_pairs": median("cluster_vs_evalsha_pairs"),
        "single_vs_evalsha_pairs": median("single_vs_evalsha_pairs"),
    }
