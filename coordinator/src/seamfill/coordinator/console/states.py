"""A series' coverage split by state for the timeline, from the store's public reads.

``Store.coverage`` gives covered ranges, gaps, and what is queued or leased (backing-off chunks
count as queued there); the dead letters and backing-off chunks of the dataset refine that.
Ranges whose source had no rows are covered like any other: the store does not tell them apart.
Also the zoom arithmetic of the series view (pure).
"""

from __future__ import annotations

from collections.abc import Sequence

from seamfill.coordinator import views
from seamfill.coordinator.store import Store
from seamfill.core import ranges
from seamfill.core.types import MAX_TS_US, MIN_TS_US, Chunk, Series, TimeRange

# Chunks of a dataset read to find a series' dead and backing-off ones (bounded work per view).
_CHUNKS_READ = 10_000
MIN_VIEW_US = 60_000_000  # one minute: the closest zoom
MAX_VIEW_US = 50 * 365 * 86_400_000_000


def _of(series: Series, chunks: Sequence[Chunk], r: TimeRange) -> list[TimeRange]:
    picked = [c.range for c in chunks if c.series == series]
    return ranges.merge(ranges.intersect(r, picked))


async def series_states(store: Store, series: Series, r: TimeRange) -> dict[str, list[TimeRange]]:
    """Intervals of ``r`` per timeline state (see :data:`timeline.STATES`)."""
    cov = await store.coverage(series, r)
    out: dict[str, list[TimeRange]] = {
        "covered": list(cov.covered),
        "gap": list(cov.gaps),
        "leased": list(cov.leased),
    }
    if not cov.gaps:
        return out
    dead = _of(series, await views.dead_letters(store, series.dataset, _CHUNKS_READ), r)
    backoff = _of(series, await views.backing_off(store, series.dataset, _CHUNKS_READ), r)
    out["dead"] = dead
    out["backoff"] = backoff
    # Backing-off chunks are among the queued ones too; the timeline ranks backoff above queued.
    out["queued"] = list(cov.queued)
    return out


def clamp(r: TimeRange) -> TimeRange:
    """``r`` kept within supported time and between a minute and fifty years long."""
    span = min(max(r.duration_us, MIN_VIEW_US), MAX_VIEW_US)
    start = min(max(r.start_us, MIN_TS_US), MAX_TS_US - span)
    return TimeRange(start, start + span)


def zooms(view: TimeRange) -> dict[str, TimeRange]:
    """The views one click away: pan, zoom in/out, and fixed windows around the centre."""
    span, mid = view.duration_us, (view.start_us + view.end_us) // 2
    day = 86_400_000_000

    def around(width: int) -> TimeRange:
        return clamp(TimeRange(mid - width // 2, mid - width // 2 + width))

    return {
        "◀ earlier": clamp(TimeRange(view.start_us - span // 2, view.end_us - span // 2)),
        "zoom in": around(max(span // 4, 1)),
        "zoom out": around(span * 4),
        "later ▶": clamp(TimeRange(view.start_us + span // 2, view.end_us + span // 2)),
        "1y": around(365 * day),
        "30d": around(30 * day),
        "1d": around(day),
        "1h": around(3_600_000_000),
        "10m": around(600_000_000),
    }


_STEPS_US = [60_000_000 * m for m in (1, 5, 15, 60, 360, 1440, 7 * 1440, 30 * 1440, 365 * 1440)]


def ticks(view: TimeRange, most: int = 8) -> list[tuple[int, str]]:
    """Axis ticks on round times, at most ``most`` of them, labelled to the step's precision."""
    import datetime as dt

    step = next((s for s in _STEPS_US if view.duration_us // s <= most), _STEPS_US[-1])
    first = -(-view.start_us // step) * step
    fmt = "%Y-%m-%d" if step >= 86_400_000_000 else "%m-%d %H:%M"
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return [
        (t, (epoch + dt.timedelta(microseconds=t)).strftime(fmt))
        for t in range(first, view.end_us + 1, step)
    ][: most + 1]
