"""``seamfill admin top``: samples the coordinator's stats, leases and dead letters, and turns two
consecutive samples into rates (rows/s, how fast each queue drains).

The coordinator's own ``rows_per_second`` is used when it reports one; otherwise the rate comes
from the change in ``rows_done`` between samples, so the view is useful against any replica.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from seamfill.cli import render as _render
from seamfill.core.quoting import series_text

# How many stuck leases, dead chunks and errors the view lists by name; how many jobs.
_SHOWN = 5
_SHOWN_JOBS = 15


@dataclass(frozen=True, slots=True)
class DatasetRow:
    """One dataset's line in the view."""

    dataset: str
    queued: int
    leased: int
    backoff: int
    dead: int
    stuck: int
    rows_done: int
    rows_per_second: float
    queue_change_per_second: float
    """Negative while the queue drains."""
    chunks_done: int
    lease_expiries: int
    queue_time_to_empty_s: float | None = None
    """Seconds until the queue is empty at the pace chunks completed between the two samples
    (None while nothing completes)."""


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job's line: progress, rate, and an ETA only while it runs."""

    job_id: str
    series: str
    state: str
    chunks_done: int
    chunks_total: int
    rows_per_second: float
    eta_seconds: float | None
    error: str


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """One worker's line: leases held, rows/s between the samples, last seen."""

    worker_id: str
    leases: int
    rows: int
    rows_per_second: float
    last_seen_us: int
    draining: bool


SORTS = ("dataset", "rows", "queued", "progress", "eta")
"""``--sort`` keys: rows (rows/s, highest first), queued (deepest queue first), progress (least
done first), eta (soonest first); dataset (default) keeps names in order and jobs newest first."""


@dataclass(frozen=True, slots=True)
class TopView:
    """Everything one refresh shows (also the ``--json`` document)."""

    as_of_us: int
    jobs_running: int
    workers: int
    datasets: list[DatasetRow]
    stuck_leases: list[Any] = field(default_factory=list)
    dead_letters: list[Any] = field(default_factory=list)
    jobs: list[JobRow] = field(default_factory=list)
    worker_rows: list[WorkerRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """The newest errors: dead letters' last errors and failed jobs'."""


class Sampler:
    """Keeps the previous sample so each new one can be turned into rates. ``match`` keeps only
    rows whose dataset, series, job or worker id contains it; ``sort`` is one of :data:`SORTS`."""

    def __init__(self, client: Any, *, sort: str = "dataset", match: str = "") -> None:
        self._client = client
        self._prev: dict[str, Any] = {}
        self._prev_at = 0.0
        self._prev_rows: dict[str, int] = {}
        self.sort, self.match = sort, match

    def _keep(self, *texts: str) -> bool:
        return not self.match or any(self.match in t for t in texts)

    def _jobs(self) -> list[JobRow]:
        rows = [
            JobRow(
                job_id=j.job_id,
                series=series_text(j.series),
                state=j.state.value,
                chunks_done=j.progress.chunks_done,
                chunks_total=j.progress.chunks_total,
                rows_per_second=j.progress.rows_per_second,
                eta_seconds=(
                    j.progress.eta_seconds
                    if j.state.value == "running" and j.progress.eta_seconds >= 0
                    else None
                ),
                error=j.error,
            )
            for j in self._client.list_jobs(limit=200)
            if self._keep(j.job_id, str(j.series))
        ]
        if self.sort == "rows":
            rows.sort(key=lambda j: -j.rows_per_second)
        elif self.sort == "progress":
            rows.sort(key=lambda j: j.chunks_done / max(1, j.chunks_total))
        elif self.sort == "eta":
            rows.sort(key=lambda j: float("inf") if j.eta_seconds is None else j.eta_seconds)
        return rows[:_SHOWN_JOBS]

    def _workers(self, elapsed: float) -> list[WorkerRow]:
        out = []
        workers = self._client.list_workers()
        for w in workers:
            if not self._keep(w.worker_id):
                continue
            before = self._prev_rows.get(w.worker_id)
            rate = (w.rows - before) / elapsed if before is not None and elapsed > 0 else 0.0
            out.append(
                WorkerRow(w.worker_id, w.leases, w.rows, max(0.0, rate), w.last_seen_us, w.draining)
            )
        self._prev_rows = {w.worker_id: w.rows for w in workers}
        if self.sort == "rows":
            out.sort(key=lambda w: -w.rows_per_second)
        return out

    def sample(self) -> TopView:
        stats = self._client.get_stats()
        at = time.monotonic()
        now_us = int(time.time() * 1_000_000)
        leases = self._client.list_leases(dataset="", limit=1000)
        dead = self._client.list_dead_letters(dataset="", limit=_SHOWN)
        expired = [ls for ls in leases if ls.deadline_us and ls.deadline_us < now_us]
        expired_by = _count_by(ls.dataset.name for ls in expired)
        elapsed = at - self._prev_at if self._prev else 0.0
        rows = []
        for d in sorted(stats.datasets, key=lambda d: d.dataset):
            if not self._keep(d.dataset):
                continue
            prev = self._prev.get(d.dataset)
            rate = float(d.rows_per_second)
            change, empty_in = 0.0, None
            if prev is not None and elapsed > 0:
                if rate <= 0:
                    rate = max(0.0, (d.rows_done - prev.rows_done) / elapsed)
                change = (d.queued - prev.queued) / elapsed
                pace = (d.chunks_done - prev.chunks_done) / elapsed
                empty_in = d.queued / pace if pace > 0 else (0.0 if not d.queued else None)
            rows.append(
                DatasetRow(
                    dataset=d.dataset,
                    queued=d.queued,
                    leased=d.leased,
                    backoff=d.backoff,
                    dead=d.dead,
                    stuck=d.backoff + expired_by.get(d.dataset, 0),
                    rows_done=d.rows_done,
                    rows_per_second=rate,
                    queue_change_per_second=change,
                    chunks_done=d.chunks_done,
                    lease_expiries=d.lease_expiries,
                    queue_time_to_empty_s=empty_in,
                )
            )
        if self.sort in ("rows", "queued"):
            key = "rows_per_second" if self.sort == "rows" else "queued"
            rows.sort(key=lambda r: -getattr(r, key))
        self._prev = {d.dataset: d for d in stats.datasets}
        self._prev_at = at
        jobs = self._jobs()
        errors = [f"{series_text(c.series)} {c.chunk_id}: {c.last_error}" for c in dead]
        errors += [f"{j.job_id}: {j.error}" for j in jobs if j.error]
        return TopView(
            as_of_us=stats.as_of_us or now_us,
            jobs_running=stats.jobs_running,
            workers=stats.workers,
            datasets=rows,
            stuck_leases=expired[:_SHOWN],
            dead_letters=list(dead)[:_SHOWN],
            jobs=jobs,
            worker_rows=self._workers(elapsed),
            errors=errors[:_SHOWN],
        )


def _count_by(names: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for n in names:
        out[n] = out.get(n, 0) + 1
    return out


def _trend(change: float) -> Text:
    if change < 0:
        return Text(f"↓ {_render.count(-change)}/s draining", style="green")
    if change > 0:
        return Text(f"↑ {_render.count(change)}/s growing", style="yellow")
    return Text("·", style="dim")


def render(view: TopView) -> Group:
    """The refreshing screen: a header, one line per dataset, then what is stuck or dead."""
    total_rate = sum(r.rows_per_second for r in view.datasets)
    head = Text.assemble(
        ("seamfill top", "bold"),
        f"  {_render.iso(view.as_of_us)}  ",
        f"jobs running {view.jobs_running}  workers {view.workers}  ",
        (f"{_render.count(total_rate)} rows/s", "cyan"),
    )
    datasets = _render.table(
        "Datasets",
        (
            "dataset",
            "queued",
            "queue",
            "empty in",
            "leased",
            "backoff",
            "stuck",
            "dead",
            "rows/s",
            "rows",
            "chunks done",
            "expiries",
        ),
        [
            (
                r.dataset,
                r.queued,
                _trend(r.queue_change_per_second),
                _eta(r.queue_time_to_empty_s),
                r.leased,
                r.backoff,
                Text(str(r.stuck), style="red" if r.stuck else ""),
                Text(str(r.dead), style="red" if r.dead else ""),
                Text(_render.count(r.rows_per_second), style="cyan"),
                r.rows_done,
                r.chunks_done,
                r.lease_expiries,
            )
            for r in view.datasets
        ],
    )
    parts: list[Any] = [head, datasets, *_jobs_and_workers(view)]
    if view.errors:
        parts.append(_render.table("Recent errors", ("error",), [(e,) for e in view.errors]))
    if view.stuck_leases:
        parts.append(_render.leases_table(view.stuck_leases, view.as_of_us))
    if view.dead_letters:
        parts.append(_render.chunks_table("Dead letters (newest)", view.dead_letters))
    return Group(*parts)


def _eta(seconds: float | None) -> str:
    return "-" if seconds is None else _render.duration(seconds * 1_000_000)


def _jobs_and_workers(view: TopView) -> list[Table]:
    jobs = _render.table(
        "Jobs",
        ("job", "series", "state", "done", "progress", "rows/s", "ETA"),
        [
            (
                j.job_id,
                j.series,
                j.state,
                f"{j.chunks_done}/{j.chunks_total}",
                f"{j.chunks_done / j.chunks_total:.0%}" if j.chunks_total else "-",
                Text(_render.count(j.rows_per_second), style="cyan"),
                _eta(j.eta_seconds),
            )
            for j in view.jobs
        ],
    )
    workers = _render.table(
        "Workers",
        ("worker", "leases held", "rows/s", "rows", "last seen", "state"),
        [
            (
                w.worker_id,
                w.leases,
                Text(_render.count(w.rows_per_second), style="cyan"),
                w.rows,
                _render.duration(max(0, view.as_of_us - w.last_seen_us)) + " ago",
                "draining" if w.draining else "active",
            )
            for w in view.worker_rows
        ],
    )
    return [jobs, workers]


def stats_table(stats: Any) -> Group:
    """``admin stats``: the coordinator's counts per dataset, as they are."""
    head = Text(
        f"jobs running {stats.jobs_running}  workers {stats.workers}  "
        f"as of {_render.iso(stats.as_of_us)}",
        style="bold",
    )
    t: Table = _render.table(
        "Stats",
        (
            "dataset",
            "queued",
            "leased",
            "backoff",
            "dead",
            "rows done",
            "rows/s",
            "chunks done",
            "lease expiries",
        ),
        [
            (
                d.dataset,
                d.queued,
                d.leased,
                d.backoff,
                d.dead,
                d.rows_done,
                _render.count(d.rows_per_second),
                d.chunks_done,
                d.lease_expiries,
            )
            for d in stats.datasets
        ],
    )
    return Group(head, t)
