"""Prometheus metrics of a coordinator replica.

Gauges that describe shared state (queue depth, leases, dead letters) are refreshed from Redis by
the replica's stats loop, so every replica reports the same fleet-wide values; counters count what
this replica did. Labels: dataset, source, method — never a chunk, lease or symbol.
"""

from __future__ import annotations

import functools

from prometheus_client import Counter, Gauge, Histogram

_RPC_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

QUEUE_DEPTH = Gauge("seamfill_queue_depth", "Chunks queued and ready to lease", ["dataset"])
BACKOFF_DEPTH = Gauge("seamfill_backoff_chunks", "Chunks waiting for their retry time", ["dataset"])
LEASES_IN_FLIGHT = Gauge("seamfill_leases_in_flight", "Chunks leased to workers", ["dataset"])
DEAD_LETTERS = Gauge("seamfill_dead_letters", "Chunks in the dead-letter set", ["dataset"])
COMPLETION_RATIO = Gauge(
    "backfill_completion_ratio", "Done share of the chunks of running jobs", ["dataset"]
)
JOBS_RUNNING = Gauge("seamfill_jobs_running", "Jobs in the running state", [])
WORKERS = Gauge("seamfill_workers", "Workers seen within the last lease TTL", [])
LEASE_EXPIRIES = Counter(
    "seamfill_lease_expiries_total", "Leases that expired and went back to the queue", ["dataset"]
)
RETRIES = Counter("seamfill_retries_total", "Chunk failures scheduled for a retry", ["dataset"])
DEAD_LETTERED = Counter(
    "seamfill_dead_lettered_total", "Chunks moved to the dead-letter set", ["dataset"]
)
CHUNKS_COMPLETED = Counter("seamfill_chunks_completed_total", "Chunks completed", ["dataset"])
ROWS_COMPLETED = Counter(
    "seamfill_rows_completed_total", "Rows reported by completed chunks", ["dataset", "source"]
)
RATE_LIMIT_WAITS = Counter(
    "seamfill_rate_limit_waits_total", "Token requests refused by a source's rate limit", ["source"]
)
RPC_LATENCY = Histogram(
    "seamfill_rpc_latency_seconds",
    "Coordinator RPC latency by method",
    ["method"],
    buckets=_RPC_SECONDS,
)
RPC_ERRORS = Counter("seamfill_rpc_errors_total", "RPCs answered with an error", ["method", "code"])


@functools.cache
def completed(dataset: str, source: str) -> tuple[Counter, Counter]:
    """The chunk and row counters of completions in ``dataset`` (looked up once: hot path)."""
    return CHUNKS_COMPLETED.labels(dataset), ROWS_COMPLETED.labels(dataset, source)


@functools.cache
def rpc_latency(method: str) -> Histogram:
    """The latency histogram of ``method`` (looked up once: hot path)."""
    return RPC_LATENCY.labels(method)
