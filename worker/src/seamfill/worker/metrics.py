"""Prometheus metrics of a worker process. Labels: dataset, source, outcome — bounded."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_SECONDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

ROWS_WRITTEN = Counter(
    "seamfill_worker_rows_written_total", "Rows written to QuestDB", ["dataset", "source"]
)
CHUNKS = Counter(
    "seamfill_worker_chunks_total",
    "Chunks this worker finished, by outcome (completed, empty, failed, deferred, released, lost)",
    ["dataset", "outcome"],
)
LEASES_HELD = Gauge("seamfill_worker_leases_in_flight", "Leases this worker holds", [])
FETCH_SECONDS = Histogram(
    "seamfill_worker_fetch_seconds", "Upstream fetch time per chunk", ["source"], buckets=_SECONDS
)
WRITE_SECONDS = Histogram(
    "seamfill_worker_write_seconds", "ILP write time per chunk", ["dataset"], buckets=_SECONDS
)
VISIBILITY_SECONDS = Histogram(
    "seamfill_worker_visibility_seconds",
    "Time from the ILP commit until the chunk's rows were visible to queries",
    ["dataset"],
    buckets=_SECONDS,
)
RATE_LIMIT_WAITS = Counter(
    "seamfill_worker_rate_limit_waits_total",
    "Times a fetch waited for the fleet-wide rate limit of its source",
    ["source"],
)
BREAKER_OPEN = Gauge(
    "seamfill_worker_breaker_open",
    "1 while this worker's circuit breaker for a dependency (storage, upstream:SOURCE) is open",
    ["dependency"],
)
BREAKER_TRANSITIONS = Counter(
    "seamfill_worker_breaker_transitions",
    "Times a dependency's circuit breaker opened or closed again",
    ["dependency", "state"],
)
