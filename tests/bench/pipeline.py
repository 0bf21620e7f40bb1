"""Backfill pipeline throughput and worker memory, as ratios measured in one run.

- ``by_chunk_bars.N.vs_best_raw``: rows/s of synthetic source → coordinator → 2 worker
  processes → QuestDB (from the first EnsureRange until every job is done, so every row is
  visible) at ``chunk_bars`` N (default 1000 and 10000, alternating round by round) against the
  best raw ingest floor of tests/bench/floors.py measured in the same run. Target ≥ 0.9. Also CPU
  seconds per 1M rows of the workers, the coordinator, Redis and QuestDB (/proc/PID/stat).
  Sizes: ``SEAMFILL_BENCH_PIPE_SYMBOLS`` x ``..._DAYS`` (10 x 30 = 0.43M rows; 150 x 30 = 6.5M
  is the larger optional size), ``..._CHUNKS`` ("1000,10000"), ``..._ROUNDS`` (3).
- ``rss_30d_vs_1d``: peak RSS (VmHWM) of a fresh worker process that backfilled 30 days against
  one that backfilled 1 day of the same symbols. Target: flat (≈ 1.0), memory is bounded by
  chunk size and concurrency, not by the size of the backfill.

Usage: ``python -m tests.bench pipeline``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

from tests.bench import baseline, floors
from tests.e2e.worker_support import DAY, T0, Fleet, Proc, sql, wait_for
from tests.redis_backends import delete_prefix

REDIS_URL = os.environ.get("SEAMFILL_REDIS_URL", "redis://127.0.0.1:6379/0")
SYMBOLS = int(os.environ.get("SEAMFILL_BENCH_PIPE_SYMBOLS", "10"))
DAYS = int(os.environ.get("SEAMFILL_BENCH_PIPE_DAYS", "30"))
CHUNK_SIZES = [
    int(x) for x in os.environ.get("SEAMFILL_BENCH_PIPE_CHUNKS", "1000,10000").split(",")
]
CONCURRENCY = 4
ROUNDS = max(3, int(os.environ.get("SEAMFILL_BENCH_PIPE_ROUNDS", "3")))


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


def _listener_pid(port: int) -> int | None:
    """PID of the process listening on 127.0.0.1:port (QuestDB's HTTP port), if visible."""
    import psutil

    for c in psutil.net_connections("tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid:
            return int(c.pid)
    return None


def _pid_cpu_s(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_pids() -> dict[str, int | None]:
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    try:
        redis_pid = int(r.info("server")["process_id"])
    finally:
        r.close()
    port = urllib.parse.urlparse(baseline.QUESTDB_URL).port or 9000
    return {"redis": redis_pid, "questdb": _listener_pid(port)}


def _pipeline(fleet: Fleet, runs: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """One backfill per (dataset, table, chunk_bars), in the given (alternating) order."""
    workers = [
        fleet.start_worker(f"bench-w{i}", "--concurrency", str(CONCURRENCY)) for i in range(2)
    ]
    servers = _server_pids()
    rows = SYMBOLS * DAYS * 1440
    out = []
    for dataset, table, chunk_bars in runs:
        procs = {"workers": workers, "coordinator": [fleet.procs[0]]}
        before = {k: sum(_cpu_s(p) for p in v) for k, v in procs.items()}
        before |= {k: _pid_cpu_s(pid) for k, pid in servers.items()}
        seconds = _backfill(fleet, dataset, [f"SYM{i}" for i in range(SYMBOLS)], DAYS)
        after = {k: sum(_cpu_s(p) for p in v) for k, v in procs.items()}
        after |= {k: _pid_cpu_s(pid) for k, pid in servers.items()}
        got = sql(fleet.questdb_url, f'SELECT count() FROM "{table}"')[0][0]
        if got != rows:
            raise RuntimeError(f"{table} holds {got} rows, expected {rows}")
        out.append(
            {
                "chunk_bars": chunk_bars,
                "pipeline_rows_per_s": round(rows / seconds),
                "seconds": round(seconds, 3),
                # CPU seconds per 1M rows; Redis and QuestDB are shared, so theirs is an upper
                # bound that includes whatever else ran on them meanwhile.
                "cpu_s_per_1m_rows": {
                    k: round((after[k] - before[k]) * 1e6 / rows, 3) for k in after
                },
            }
        )
    for w in workers:
        w.stop()
    return out


def _by_chunk(rounds: list[dict[str, Any]], best_raw: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for cb in CHUNK_SIZES:
        mine = [r for r in rounds if r["chunk_bars"] == cb]
        rps = [r["pipeline_rows_per_s"] for r in mine]
        cpu = {
            k: statistics.median(r["cpu_s_per_1m_rows"][k] for r in mine)
            for k in mine[0]["cpu_s_per_1m_rows"]
        }
        out[str(cb)] = {
            "pipeline_rows_per_s": floors._summary([float(x) for x in rps]),
            "vs_best_raw": floors._summary([x / best_raw for x in rps]),
            "cpu_s_per_1m_rows": {k: round(v, 3) for k, v in cpu.items()},
        }
    return out


def _rss(fleet: Fleet, dataset: str, days: int) -> float:
    w = fleet.start_worker(f"bench-rss-{days}d", "--concurrency", str(CONCURRENCY))
    _backfill(fleet, dataset, [f"M{i}" for i in range(SYMBOLS)], days)
    peak = _peak_rss_mb(w)
    w.stop()
    return peak


def run() -> dict[str, Any]:
    best = floors.measure()["raw_ingest"]
    tag = uuid.uuid4().hex[:8]
    # Alternate chunk sizes round by round, so neither always inherits the other's background
    # work (WAL apply, a dropped table's cleanup) in QuestDB.
    order = [cb for _ in range(ROUNDS) for cb in CHUNK_SIZES]
    tables = [f"bench_pipe_{tag}_{i}" for i in range(len(order))] + [
        f"bench_rss_{tag}_{d}" for d in (1, 30)
    ]
    spec = {"source": "synthetic", "interval": "1m"}
    datasets: dict[str, dict[str, Any]] = {
        f"bench.pipe{i}": {**spec, "table": tables[i], "chunk_bars": cb}
        for i, cb in enumerate(order)
    }
    datasets["bench.rss1"] = {**spec, "table": tables[-2], "chunk_bars": 1440}
    datasets["bench.rss30"] = {**spec, "table": tables[-1], "chunk_bars": 1440}
    prefix = f"sfbench:{tag}:"
    with tempfile.TemporaryDirectory() as tmp:
        fleet = Fleet(Path(tmp), REDIS_URL, baseline.QUESTDB_URL, prefix)
        try:
            fleet.start_coordinator(datasets)
            runs = [(f"bench.pipe{i}", tables[i], cb) for i, cb in enumerate(order)]
            rounds = _pipeline(fleet, runs)
            rss_1d = _rss(fleet, "bench.rss1", 1)
            rss_30d = _rss(fleet, "bench.rss30", 30)
        finally:
            fleet.close()
            for t in tables:
                sql(baseline.QUESTDB_URL, f'DROP TABLE IF EXISTS "{t}"')
            delete_prefix(REDIS_URL, prefix)
    return {
        "rows": SYMBOLS * DAYS * 1440,
        "workers": 2,
        "concurrency": CONCURRENCY,
        "best_raw": {"config": best["best"], "rows_per_s": best["rows_per_s"]},
        "by_chunk_bars": _by_chunk(rounds, best["rows_per_s"]["median"]),
        "pipeline_vs_best_raw_target": 0.9,
        "rounds": rounds,
        "worker_peak_rss_mb_1d": round(rss_1d, 1),
        "worker_peak_rss_mb_30d": round(rss_30d, 1),
        "rss_30d_vs_1d": round(rss_30d / rss_1d, 3),
    }
