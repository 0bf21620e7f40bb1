"""Terminal rendering shared by the CLI commands: tables, coverage timelines, progress bars, the
``admin top`` view, and the JSON form of every listing.

Nothing here talks to a server; each function turns values into rich renderables or plain data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from seamfill.core.quoting import series_text
from seamfill.core.timeconv import duration_text
from seamfill.core.types import (
    Chunk,
    Coverage,
    Dataset,
    Job,
    JobProgress,
    JobState,
    Lease,
    TimeRange,
)

# One character per cell of a timeline; the strongest state in a cell wins.
_CELL = {
    "covered": ("█", "green"),
    "leased": ("▓", "cyan"),
    "queued": ("▒", "yellow"),
    "gap": ("░", "red"),
    "none": (" ", ""),
}
_RANK = {"none": 0, "covered": 1, "queued": 2, "leased": 3, "gap": 4}


def iso(us: int) -> str:
    """``2024-01-31T12:00:00Z`` (microseconds shown only when there are any)."""
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{t.microsecond:06d}Z" if t.microsecond else "Z")


def when(us: int) -> str:
    """:func:`iso` for an optional moment: ``-`` when unset (0)."""
    return iso(us) if us else "-"


def duration(us: int | float) -> str:
    """A short human duration: ``950us``, ``12ms``, ``3.5s``, ``4m10s``, ``2h05m``, ``3d04h``."""
    return "0s" if us <= 0 else duration_text(us)


def count(n: float) -> str:
    """``1234567`` -> ``1.23M``; integers below 10,000 are shown as they are."""
    if abs(n) < 10_000:
        return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.1f}"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.0f}"  # pragma: no cover - unreachable: covered by the loop


def range_text(r: TimeRange) -> str:
    return f"[{iso(r.start_us)}, {iso(r.end_us)})"


def timeline(
    span: TimeRange,
    covered: Sequence[TimeRange],
    gaps: Sequence[TimeRange] = (),
    queued: Sequence[TimeRange] = (),
    leased: Sequence[TimeRange] = (),
    width: int = 60,
) -> Text:
    """A one-line picture of ``span``: █ covered, ▓ leased, ▒ queued, ░ gap.

    A cell shows the worst thing inside it, so a one-bar gap in a year is still visible.
    """
    width = max(1, width)
    cells = ["none"] * width
    total = max(1, span.end_us - span.start_us)
    for state, ranges in (
        ("covered", covered),
        ("queued", queued),
        ("leased", leased),
        ("gap", gaps),
    ):
        for r in ranges:
            lo = max(r.start_us, span.start_us) - span.start_us
            hi = min(r.end_us, span.end_us) - span.start_us
            if hi <= lo:
                continue
            first = min(width - 1, lo * width // total)
            last = min(width - 1, max(first, math.ceil(hi * width / total) - 1))
            for i in range(first, last + 1):
                if _RANK[state] > _RANK[cells[i]]:
                    cells[i] = state
    out = Text()
    for state in cells:
        ch, style = _CELL[state]
        out.append(ch, style=style)
    return out


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A plain listing; numbers are right-aligned by the caller passing them as numbers."""
    t = Table(title=title, title_justify="left", header_style="bold")
    materialised = [list(r) for r in rows]
    for i, col in enumerate(columns):
        numeric = bool(materialised) and all(
            isinstance(r[i], int | float) and not isinstance(r[i], bool) for r in materialised
        )
        t.add_column(col, justify="right" if numeric else "left", overflow="fold")
    for r in materialised:
        # Cells are Text, never markup: data such as "[red]x" shows as it is.
        t.add_row(*(c if isinstance(c, Text) else Text(_cell(c)) for c in r))
    if not materialised:
        t.caption = "(none)"
    return t


def _cell(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.name.lower() if isinstance(value, enum.IntEnum) else value.value)
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


class _RateColumn(ProgressColumn):
    """Rows per second, from the job's own figure when it has one (fields['rate'])."""

    def render(self, task: Task) -> Text:
        rate = task.fields.get("rate") or task.speed or 0.0
        return Text(f"{count(rate)} rows/s", style="cyan")


class _RowsColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{count(task.fields.get('rows', 0))} rows", style="green")


class _EtaColumn(ProgressColumn):
    """The coordinator's ETA when it gives one (>= 0), else rich's estimate from the rate."""

    def render(self, task: Task) -> Text:
        eta = task.fields.get("eta", -1.0)
        if eta is None or eta < 0:
            eta = task.time_remaining
        if eta is None:
            return Text("ETA -:--", style="dim")
        return Text(f"ETA {duration(eta * 1_000_000)}", style="dim")


def progress(console: Console) -> Progress:
    """The bar long work shows: description, bar, chunks, rows, rows/s, elapsed, ETA."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} chunks"),
        _RowsColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        _EtaColumn(),
        console=console,
        transient=False,
    )


def jsonable(value: Any) -> Any:
    """Plain JSON data for a listing: dataclasses, enums, ranges (with ISO forms), protobufs."""
    if isinstance(value, TimeRange):
        return {
            "start_us": value.start_us,
            "end_us": value.end_us,
            "start": iso(value.start_us),
            "end": iso(value.end_us),
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.IntEnum):
        return value.name.lower()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if hasattr(value, "DESCRIPTOR") and hasattr(value, "ListFields"):
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(value, preserving_proto_field_name=True)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any) -> str:
    """The ``--json`` form of a listing: one JSON document, keys in a stable order."""
    return json.dumps(jsonable(value), indent=2, sort_keys=True, ensure_ascii=False)


def group(*parts: RenderableType) -> Group:
    return Group(*parts)


# Views of the admin listings. Workers, stats and reconcile results are read by attribute, so the
# client may hand back its own dataclasses or the wire messages (same field names).


def coverage_view(cov: Coverage, width: int = 72) -> Group:
    head = Text.assemble(
        (series_text(cov.series), "bold"),
        f"  {range_text(cov.range)}  ",
        (f"{cov.ratio:.1%} covered", "green" if cov.complete else "yellow"),
        f", {len(cov.gaps)} gaps",
    )
    legend = Text("█ covered  ▓ leased  ▒ queued  ░ gap", style="dim")
    rows = [
        (kind, iso(r.start_us), iso(r.end_us), duration(r.duration_us))
        for kind, ranges in (
            ("covered", cov.covered),
            ("gap", cov.gaps),
            ("queued", cov.queued),
            ("leased", cov.leased),
        )
        for r in ranges
    ]
    return Group(
        head,
        timeline(cov.range, cov.covered, cov.gaps, cov.queued, cov.leased, width),
        legend,
        table("Ranges", ("kind", "start", "end", "length"), rows),
    )


def _pct(p: JobProgress) -> str:
    return f"{p.chunks_done / p.chunks_total:.0%}" if p.chunks_total else "-"


def _eta(job: Job) -> str:
    """A running job's ETA; a paused, cancelled or finished one has none."""
    seconds = job.progress.eta_seconds
    if job.state is not JobState.RUNNING or seconds < 0:
        return "-"
    return duration(seconds * 1_000_000)


def jobs_table(jobs: Sequence[Job]) -> Table:
    return table(
        "Jobs",
        ("job", "series", "range", "priority", "state", "done", "chunks", "rows", "rows/s", "eta"),
        [
            (
                j.job_id,
                series_text(j.series),
                range_text(j.range),
                j.priority,
                j.state,
                _pct(j.progress),
                f"{j.progress.chunks_done}/{j.progress.chunks_total}",
                j.progress.rows_done,
                count(j.progress.rows_per_second),
                _eta(j),
            )
            for j in jobs
        ],
    )


def job_view(job: Job) -> Table:
    p = job.progress
    t = Table(title=f"Job {job.job_id}", title_justify="left", show_header=False)
    t.add_column(style="bold")
    t.add_column()
    for k, v in (
        ("series", series_text(job.series)),
        ("range", range_text(job.range)),
        ("priority", _cell(job.priority)),
        ("state", _cell(job.state)),
        (
            "progress",
            f"{_pct(p)}: {p.chunks_done}/{p.chunks_total} chunks, "
            f"{p.chunks_leased} leased, {p.chunks_failed} failed",
        ),
        ("rows", f"{p.rows_done:,} at {count(p.rows_per_second)} rows/s"),
        ("eta", _eta(job)),
        ("requested by", job.requested_by or "-"),
        ("created", when(job.created_us)),
        ("updated", when(job.updated_us)),
        ("error", job.error or "-"),
    ):
        t.add_row(k, v)
    return t


def leases_table(leases: Sequence[Lease], now_us: int) -> Table:
    return table(
        "Leases",
        ("lease", "series", "range", "worker", "token", "expires in", "progress rows"),
        [
            (
                ls.lease_id,
                series_text(ls.chunk.series),
                range_text(ls.chunk.range),
                ls.worker_id,
                ls.token,
                duration(max(0, ls.deadline_us - now_us))
                if ls.deadline_us > now_us
                else Text("expired", style="red"),
                ls.progress_rows,
            )
            for ls in leases
        ],
    )


def workers_table(workers: Sequence[Any], now_us: int) -> Table:
    t = table(
        "Workers",
        ("worker", "sources", "last seen", "leases held", "draining", "rows"),
        [
            (
                w.worker_id,
                ", ".join(w.sources) or "any",
                duration(max(0, now_us - w.last_seen_us)) + " ago",
                w.leases,
                "yes" if w.draining else "no",
                w.rows,
            )
            for w in workers
        ],
    )
    if workers:
        # A worker fetches or writes --concurrency chunks at once; chunks already written and
        # waiting for QuestDB to show their rows hold a lease too (up to 8 per slot).
        t.caption = "leases held: fetching or writing, plus written chunks awaiting visibility"
    return t


def chunks_table(title: str, chunks: Sequence[Chunk]) -> Table:
    return table(
        title,
        ("chunk", "series", "range", "state", "attempts", "last error"),
        [
            (
                c.chunk_id,
                series_text(c.series),
                range_text(c.range),
                c.state,
                c.attempts,
                c.last_error or "-",
            )
            for c in chunks
        ],
    )


def datasets_table(datasets: Sequence[Dataset]) -> Table:
    return table(
        "Datasets",
        (
            "dataset",
            "table",
            "source",
            "interval",
            "chunk",
            "settle",
            "max leases",
            "kind",
            "storage",
        ),
        [
            (
                d.name,
                d.table,
                d.source,
                duration(d.interval_us),
                d.chunk_bars,
                duration(d.settle_us) if d.settle_us else "-",
                d.max_concurrency or "-",
                d.kind,
                d.storage or "default",
            )
            for d in datasets
        ],
    )


def reconcile_view(result: Any) -> Group:
    def lst(title: str, ranges: Sequence[TimeRange]) -> Table:
        return table(
            title,
            ("start", "end", "length"),
            [(iso(r.start_us), iso(r.end_us), duration(r.end_us - r.start_us)) for r in ranges],
        )

    return Group(
        Text(f"{result.rows:,} rows in storage", style="bold"),
        lst("Covered now", result.covered),
        lst("Added", result.added),
        lst("Removed", result.removed),
    )
