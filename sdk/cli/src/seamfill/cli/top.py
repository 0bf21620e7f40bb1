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

# How many stuck leases and dead chunks the view lists by name.
_SHOWN = 5


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


@dataclass(frozen=True, slots=True)
class TopView:
    """Everything one refresh shows (also the ``--json`` document)."""

    as_of_us: int
    jobs_running: int
    workers: int
    datasets: list[DatasetRow]
    stuck_leases: list[Any] = field(default_factory=list)
    dead_letters: list[Any] = field(default_factory=list)


class Sampler:
    """Keeps the previous sample so each new one can be turned into rates."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._prev: dict[str, Any] = {}
        self._prev_at = 0.0

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
            prev = self._prev.get(d.dataset)
            rate = float(d.rows_per_second)
            change = 0.0
            if prev is not None and elapsed > 0:
                if rate <= 0:
                    rate = max(0.0, (d.rows_done - prev.rows_done) / elapsed)
                change = (d.queued - prev.queued) / elapsed
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
                )
            )
        self._prev = {d.dataset: d for d in stats.datasets}
        self._prev_at = at
        return TopView(
            as_of_us=stats.as_of_us or now_us,
            jobs_running=stats.jobs_running,
            workers=stats.workers,
            datasets=rows,
            stuck_leases=expired[:_SHOWN],
            dead_letters=list(dead)[:_SHOWN],
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
    parts: list[Any] = [head, datasets]
    if view.stuck_leases:
        parts.append(_render.leases_table(view.stuck_leases, view.as_of_us))
    if view.dead_letters:
        parts.append(_render.chunks_table("Dead letters (newest)", view.dead_letters))
    return Group(*parts)


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
