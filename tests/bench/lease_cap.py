"""A capped dataset against an uncapped one with the same number of leases in flight.

- ``capped_vs_uncapped``: rows/s of a dataset with ``max_concurrency: 2`` backfilled by two
  worker processes of ``--concurrency 2`` at the worker's default long poll (four slots asking
  for two leases, so every freed slot must wake a waiting worker), against the same backfill of
  an uncapped dataset by one worker of ``--concurrency 2`` (two leases in flight, nobody waits).
  Rounds alternate which goes first; the median round's ratio is reported. Target ≥ 0.5: a
  stalled long poll (a freed slot that wakes nobody) shows as a ratio far below it.

Usage: ``python -m tests.bench lease_cap``.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from seamfill.v1 import common_pb2
from tests.bench import baseline
from tests.e2e.worker_support import DAY, T0, Fleet, sql, wait_for
from tests.redis_backends import delete_prefix

REDIS_URL = os.environ.get("SEAMFILL_REDIS_URL", "redis://127.0.0.1:6379/0")
SYMBOLS = 2
CHUNKS_PER_SYMBOL = 20
CHUNK_BARS = 1440
ROUNDS = 3
CAP = 2


def _default_wait_ms() -> str:
    from seamfill.worker.config import WorkerConfig

    return str(WorkerConfig.__dataclass_fields__["acquire_wait_ms"].default)


def _one(fleet: Fleet, dataset: str, table: str, workers: int) -> float:
    """rows/s of one backfill of ``dataset`` by ``workers`` fresh workers of concurrency 2."""
    wait = _default_wait_ms()
    procs = [
        fleet.start_worker(f"{dataset}-w{i}", "--concurrency", "2", "--acquire-wait-ms", wait)
        for i in range(workers)
    ]
    t0 = time.perf_counter()
    end = T0 + CHUNKS_PER_SYMBOL * DAY
    jobs = [fleet.ensure(dataset, f"S{i}", T0, end) for i in range(SYMBOLS)]
    wait_for(
        lambda: all(fleet.job_state(j) == common_pb2.JOB_STATE_DONE for j in jobs),
        300,
        f"{dataset} to be backfilled",
        every=0.02,
    )
    seconds = time.perf_counter() - t0
    for p in procs:
        p.stop()
    rows = SYMBOLS * CHUNKS_PER_SYMBOL * CHUNK_BARS
    got = sql(fleet.questdb_url, f'SELECT count() FROM "{table}"')[0][0]
    if got != rows:
        raise RuntimeError(f"{table} holds {got} rows, expected {rows}")
    return rows / seconds


def run() -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    spec = {"source": "synthetic", "interval": "1m", "chunk_bars": CHUNK_BARS}
    datasets: dict[str, dict[str, Any]] = {}
    for i in range(ROUNDS):
        datasets[f"bench.cap{i}"] = {
            **spec,
            "table": f"bench_cap_{tag}_{i}",
            "max_concurrency": CAP,
        }
        datasets[f"bench.free{i}"] = {**spec, "table": f"bench_free_{tag}_{i}"}
    prefix = f"sfbench:{tag}:"
    rounds: list[dict[str, Any]] = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Fleet(Path(tmp), REDIS_URL, baseline.QUESTDB_URL, prefix)
        try:
            fleet.start_coordinator(datasets)
            for i in range(ROUNDS):
                order = ("cap", "free") if i % 2 == 0 else ("free", "cap")
                got = {
                    kind: _one(
                        fleet,
                        f"bench.{kind}{i}",
                        str(datasets[f"bench.{kind}{i}"]["table"]),
                        2 if kind == "cap" else 1,
                    )
                    for kind in order
                }
                rounds.append(
                    {
                        "capped_rows_per_s": round(got["cap"]),
                        "uncapped_rows_per_s": round(got["free"]),
                        "ratio": round(got["cap"] / got["free"], 3),
                        "first": order[0],
                    }
                )
        finally:
            fleet.close()
            for spec_ in datasets.values():
                sql(baseline.QUESTDB_URL, f'DROP TABLE IF EXISTS "{spec_["table"]}"')
            delete_prefix(REDIS_URL, prefix)
    ratios = sorted(float(r["ratio"]) for r in rounds)
    return {
        "cap": CAP,
        "chunks": SYMBOLS * CHUNKS_PER_SYMBOL,
        "chunk_bars": CHUNK_BARS,
        "worker_acquire_wait_ms": int(_default_wait_ms()),
        "load_average_1m_at_start": round(load, 2),
        "rounds": rounds,
        "capped_vs_uncapped": ratios[len(ratios) // 2],
        "capped_vs_uncapped_range": [ratios[0], ratios[-1]],
        "capped_vs_uncapped_target": 0.5,
    }
