"""Many readers of covered series at once, as threads or as separate processes.

Each reader owns a :class:`SeamlessProvider` (as a backtest would) and reads the same covered
range ``reads`` times with the cache off, so every read goes to QuestDB. A reader reports its
errors as text and how each read reached storage (``meta.storage_path``), so a test can say both
"no read failed" and "this is how they got through".
"""

from __future__ import annotations

import collections
import concurrent.futures
import multiprocessing
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ReaderReport:
    reads: int = 0
    rows: int = 0
    errors: list[str] = field(default_factory=list)
    paths: collections.Counter[str] = field(default_factory=collections.Counter)
    retried: int = 0

    def add(self, other: ReaderReport) -> None:
        self.reads += other.reads
        self.rows += other.rows
        self.errors += other.errors
        self.paths.update(other.paths)
        self.retried += other.retried


def read_many(
    settings_kw: dict[str, Any], node_id: str, rng: tuple[int, int], expect: int, reads: int
) -> ReaderReport:
    """One reader: ``reads`` reads of ``rng``, each checked to hold ``expect`` rows."""
    from seamfill.sdk import SeamlessProvider, SeamlessSettings

    out = ReaderReport()
    with SeamlessProvider(SeamlessSettings(**settings_kw)) as provider:
        for _ in range(reads):
            out.reads += 1
            try:
                result = provider.read(rng[0], rng[1], node_id=node_id)
            except Exception as e:  # every failure is the finding, whatever its type
                out.errors.append(f"{type(e).__name__}: {e}"[:300])
                continue
            if len(result.frame) != expect:
                out.errors.append(f"read {len(result.frame)} rows, expected {expect}")
            out.rows += len(result.frame)
            out.paths[getattr(result.meta, "storage_path", "") or "?"] += 1
            out.retried += int(getattr(result.meta, "storage_retries", 0) > 0)
    return out


def warm() -> int:
    """Import the read path in a pool process (so a level's readers start together)."""
    import os

    import seamfill.sdk.provider  # noqa: F401

    return os.getpid()


def reader_pool(size: int, *, processes: bool) -> concurrent.futures.Executor:
    """``size`` reader threads, or ``size`` separate (spawned, warmed) processes."""
    if not processes:
        return concurrent.futures.ThreadPoolExecutor(max_workers=size)
    ctx = multiprocessing.get_context("spawn")
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=size, mp_context=ctx)
    pids = {f.result(timeout=240) for f in [pool.submit(warm) for _ in range(size)]}
    assert len(pids) >= 1
    return pool


def run_readers(
    pool: concurrent.futures.Executor,
    n: int,
    total_reads: int,
    settings_kw: dict[str, Any],
    node_id: str,
    rng: tuple[int, int],
    expect: int,
) -> ReaderReport:
    """``n`` concurrent readers from ``pool`` sharing at least ``total_reads`` reads."""
    per = -(-total_reads // n)
    report = ReaderReport()
    futures = [pool.submit(read_many, settings_kw, node_id, rng, expect, per) for _ in range(n)]
    for f in futures:
        report.add(f.result(timeout=240))
    return report
