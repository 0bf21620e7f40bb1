"""Backfill pipeline throughput and worker memory, as ratios measured in one run.

- ``pipeline_vs_raw``: rows/s of synthetic source → coordinator → 2 worker processes → QuestDB
  (from the first EnsureRange until every job is done, so every row is visible) against one raw
  ``Sender.dataframe`` writer of the same number of rows, in transactions of the same size (a
  chunk), into the same server, until visible. Target ≥ 0.8.
- ``rss_30d_vs_1d``: peak RSS (VmHWM) of a fresh worker process that backfilled 30 days against
  one that backfilled 1 day of the same symbols. Target: flat (≈ 1.0), memory is bounded by
  chunk size and concurrency, not by the size of the backfill.

Usage: ``python -m tests.bench pipeline``.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.bench import baseline
from tests.e2e.worker_support import DAY, T0, Fleet, Proc, sql, wait_for

REDIS_URL = os.environ.get("SEAMFILL_REDIS_URL", "redis://127.0.0.1:6379/0")
SYMBOLS = 10
DAYS = 30
CHUNK_BARS = 10_080  # one week of minutes: the raw writer's transaction size too
CONCURRENCY = 4
ROUNDS = 5


def _peak_rss_mb(proc: Proc) -> float:
    for line in Path(f"/proc/{proc.popen.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def _cpu_s(proc: Proc) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{proc.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backfill(fleet: Fleet, dataset: str, symbols: list[str], days: int) -> float:
    """Seconds from the first EnsureRange until every job is done."""
    from seamfill.v1 import common_pb2

    t0 = time.perf_counter()
    jobs = [fleet.ensure(dataset, s, T0, T0 + days * DAY) for s in symbols]
    pending = set(jobs)

    def all_done() -> bool:
        for job in list(pending):
            if fleet.job_state(job) != common_pb2.JOB_STATE_DONE:
                return False
            pending.discard(job)
        return True

    wait_for(all_done, 300, f"{dataset} backfill", every=0.02)
    return time.perf_counter() - t0


def _pipeline(fleet: Fleet, datasets: list[str], tables: list[str]) -> list[dict[str, Any]]:
    workers = [
        fleet.start_worker(f"bench-w{i}", "--concurrency", str(CONCURRENCY)) for i in range(2)
    ]
    rows = SYMBOLS * DAYS * 1440
    out = []
    for n, (dataset, table) in enumerate(zip(datasets, tables, strict=True)):
        # Alternate which goes first, so neither always inherits the other's background work
        # (WAL apply, a dropped table's cleanup) in QuestDB.
        if n % 2 == 0:
            raw = baseline.raw_writer(SYMBOLS, DAYS, rows_per_flush=CHUNK_BARS)
        cpu = [_cpu_s(p) for p in (*workers, fleet.procs[0])]
        seconds = _backfill(fleet, dataset, [f"SYM{i}" for i in range(SYMBOLS)], DAYS)
        cpu = [
            _cpu_s(p) - before for p, before in zip((*workers, fleet.procs[0]), cpu, strict=True)
        ]
        if n % 2 == 1:
            raw = baseline.raw_writer(SYMBOLS, DAYS, rows_per_flush=CHUNK_BARS)
        got = sql(fleet.questdb_url, f'SELECT count() FROM "{table}"')[0][0]
        if got != rows:
            raise RuntimeError(f"{table} holds {got} rows, expected {rows}")
        pipeline_rps = rows / seconds
        out.append(
            {
                "raw_visible_rows_per_s": raw["visible_rows_per_s"],
                "pipeline_rows_per_s": round(pipeline_rps),
                "ratio": round(pipeline_rps / raw["visible_rows_per_s"], 3),
                "seconds": round(seconds, 3),
                # CPU the fleet itself used on this 2-core machine, which QuestDB shares.
                "workers_cpu_s": round(cpu[0] + cpu[1], 3),
                "coordinator_cpu_s": round(cpu[2], 3),
            }
        )
    for w in workers:
        w.stop()
    return out


def _rss(fleet: Fleet, dataset: str, days: int) -> float:
    w = fleet.start_worker(f"bench-rss-{days}d", "--concurrency", str(CONCURRENCY))
    _backfill(fleet, dataset, [f"M{i}" for i in range(SYMBOLS)], days)
    peak = _peak_rss_mb(w)
    w.stop()
    return peak


def run() -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    tables = [f"bench_pipe_{tag}_{i}" for i in range(ROUNDS)] + [
        f"bench_rss_{tag}_{d}" for d in (1, 30)
    ]
    spec = {"source": "synthetic", "interval": "1m", "chunk_bars": CHUNK_BARS}
    datasets = {f"bench.pipe{i}": {**spec, "table": tables[i]} for i in range(ROUNDS)}
    datasets["bench.rss1"] = {**spec, "table": tables[ROUNDS], "chunk_bars": 1440}
    datasets["bench.rss30"] = {**spec, "table": tables[ROUNDS + 1], "chunk_bars": 1440}
    prefix = f"sfbench:{tag}:"
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Fleet(Path(tmp), REDIS_URL, baseline.QUESTDB_URL, prefix)
        try:
            fleet.start_coordinator(datasets)
            rounds = _pipeline(fleet, [f"bench.pipe{i}" for i in range(ROUNDS)], tables[:ROUNDS])
            rss_1d = _rss(fleet, "bench.rss1", 1)
            rss_30d = _rss(fleet, "bench.rss30", 30)
        finally:
            fleet.close()
            for t in tables:
                sql(baseline.QUESTDB_URL, f'DROP TABLE IF EXISTS "{t}"')
            _delete_keys(prefix)
    ratios = sorted(r["ratio"] for r in rounds)
    return {
        "rows": SYMBOLS * DAYS * 1440,
        "chunk_bars": CHUNK_BARS,
        "workers": 2,
        "concurrency": CONCURRENCY,
        "rounds": rounds,
        "pipeline_vs_raw": ratios[len(ratios) // 2],  # the median round
        "pipeline_vs_raw_target": 0.8,
        "worker_peak_rss_mb_1d": round(rss_1d, 1),
        "worker_peak_rss_mb_30d": round(rss_30d, 1),
        "rss_30d_vs_1d": round(rss_30d / rss_1d, 3),
    }


def _delete_keys(prefix: str) -> None:
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(r.scan_iter(match=prefix + "*", count=1000))
        for i in range(0, len(keys), 500):
            r.delete(*keys[i : i + 500])
    finally:
        r.close()
