"""Prometheus metrics of the SDK process (the provider's read path).

Names are the ones operators already know; labels have bounded cardinality (dataset, stage,
rule, strategy — never a symbol or a range).

Without the ``metrics`` extra (prometheus-client) the same names exist and record nothing.
"""

from __future__ import annotations

from typing import Any

try:
    from prometheus_client import Counter, Gauge, Histogram
except ImportError:  # the ``metrics`` extra is not installed: every metric is a no-op

    class _NoMetric:
        def __init__(self, *_: Any, **__: Any) -> None:
            pass

        def labels(self, *_: Any, **__: Any) -> _NoMetric:
            return self

        def inc(self, *_: Any) -> None:
            pass

        def dec(self, *_: Any) -> None:
            pass

        def set(self, *_: Any) -> None:
            pass

        def observe(self, *_: Any) -> None:
            pass

    Counter = Gauge = Histogram = _NoMetric  # type: ignore[assignment,misc]

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000)

SLA_DEADLINE_SECONDS = Histogram(
    "seamless_sla_deadline_seconds",
    "Time a read spent in each SLA stage (storage, backfill, live, total), in seconds",
    ["stage"],
    buckets=_SECONDS,
)
BACKFILL_WAIT_MS = Histogram(
    "seamless_backfill_wait_ms",
    "Time a read waited for the fleet to fill its gaps, in milliseconds",
    ["dataset"],
    buckets=_MS,
)
SLA_DOWNGRADES = Counter(
    "seamless_sla_downgrades_total",
    "Reads downgraded to a partial result, by the stage whose deadline passed",
    ["stage"],
)
SLA_EXCEEDED = Counter(
    "seamless_sla_exceeded_total", "Reads that raised SeamlessSLAExceeded, by stage", ["stage"]
)
COVERAGE_RATIO = Gauge(
    "seamless_coverage_ratio", "Covered share of the last range read, per dataset", ["dataset"]
)
READS = Counter(
    "seamless_reads_total", "Reads served, by strategy and outcome", ["strategy", "outcome"]
)
ROWS_READ = Counter("seamless_rows_read_total", "Rows returned to strategies", ["dataset"])
CONFORMANCE_VIOLATIONS = Counter(
    "seamless_conformance_violations_total", "Rows flagged by a conformance rule", ["rule"]
)
CACHE_HITS = Counter("seamless_cache_hits_total", "Reads answered from the in-process cache", [])
CACHE_MISSES = Counter(
    "seamless_cache_misses_total", "Reads the in-process cache could not answer", []
)
CACHE_BYTES = Gauge("seamless_cache_resident_bytes", "Bytes held by the in-process cache", [])
