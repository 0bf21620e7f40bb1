"""PURE: coverage intervals -> an SVG timeline, binned per pixel.

Each row is one series over one range, drawn ``width`` pixels wide. Every state's intervals are
swept once into per-pixel marks (a difference array, so the cost is O(intervals + width), not
intervals × width), a pixel takes the most urgent state that touches it (a gap never hides under
coverage), and runs of equal pixels become one ``<rect>`` with a ``<title>`` giving the exact
ranges under it and a link that zooms to the run. Imports no server code; time comes in as data.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from html import escape

from seamfill.core.types import TimeRange

# Most urgent first: a pixel shows the first of these that touches it.
STATES = ("dead", "leased", "backoff", "queued", "gap", "covered-empty", "covered")
LEGEND = {
    "covered": "covered (rows stored)",
    "covered-empty": "covered, source had no rows",
    "gap": "gap (nothing asked yet)",
    "queued": "queued",
    "leased": "leased (being filled)",
    "backoff": "backing off after a failure",
    "dead": "dead letter",
}
_TITLE_RANGES = 5  # exact ranges listed in one rect's title before "and N more"
ROW_HEIGHT = 22
LABEL_WIDTH = 180


@dataclass(frozen=True, slots=True)
class Row:
    """One series' intervals per state (each list sorted by start, non-overlapping)."""

    label: str
    states: dict[str, Sequence[TimeRange]]
    link: Callable[[TimeRange], str] = field(default=lambda r: "")
    """The URL a run of pixels links to (e.g. the series view zoomed to that run)."""


@dataclass(frozen=True, slots=True)
class Run:
    """A run of equal pixels: ``[first, last)`` columns in ``state`` covering ``range``."""

    first: int
    last: int
    state: str
    range: TimeRange


def pixel_states(view: TimeRange, width: int, states: dict[str, Sequence[TimeRange]]) -> list[int]:
    """Per pixel, the index in :data:`STATES` of its most urgent state (len(STATES) = none)."""
    span = view.duration_us
    none = len(STATES)
    best = [none] * width
    for rank, name in enumerate(STATES):
        marks = [0] * (width + 1)
        any_mark = False
        for r in states.get(name, ()):
            s, e = max(r.start_us, view.start_us), min(r.end_us, view.end_us)
            if e <= s:
                continue
            first = (s - view.start_us) * width // span
            last = -(-(e - view.start_us) * width // span)  # ceiling: a sliver still shows
            marks[first] += 1
            marks[last] -= 1
            any_mark = True
        if not any_mark:
            continue
        level = 0
        for px in range(width):
            level += marks[px]
            if level > 0 and best[px] > rank:
                best[px] = rank
    return best


def runs(view: TimeRange, width: int, states: dict[str, Sequence[TimeRange]]) -> list[Run]:
    """Runs of equal pixels, left to right, each with the time range its pixels span."""
    px = pixel_states(view, width, states)
    out: list[Run] = []
    start = 0
    for i in range(1, width + 1):
        if i == width or px[i] != px[start]:
            if px[start] < len(STATES):
                out.append(Run(start, i, STATES[px[start]], _span(view, width, start, i)))
            start = i
    return out


def _span(view: TimeRange, width: int, first: int, last: int) -> TimeRange:
    span = view.duration_us
    return TimeRange(view.start_us + first * span // width, view.start_us + last * span // width)


def _title(state: str, hits: list[TimeRange], fmt: Callable[[TimeRange], str]) -> str:
    lines = [LEGEND[state]]
    lines += [fmt(x) for x in hits[:_TITLE_RANGES]]
    if len(hits) > _TITLE_RANGES:
        lines.append("… more: click to zoom in")
    return "\n".join(lines)


class _Ends:
    """Sorted end times per state, computed once per row (bisect for each run)."""

    def __init__(self, states: dict[str, Sequence[TimeRange]]) -> None:
        self.states = states
        self.ends = {k: [x.end_us for x in v] for k, v in states.items()}

    def hits(self, state: str, r: TimeRange) -> list[TimeRange]:
        intervals = self.states.get(state, ())
        i = bisect.bisect_right(self.ends.get(state, []), r.start_us)
        out: list[TimeRange] = []
        while i < len(intervals) and intervals[i].start_us < r.end_us:
            out.append(intervals[i])
            i += 1
            if len(out) > _TITLE_RANGES:
                break
        return out


def svg(
    view: TimeRange,
    width: int,
    rows: Sequence[Row],
    fmt: Callable[[TimeRange], str],
    axis: Iterable[tuple[int, str]] = (),
) -> str:
    """One SVG picture: a labelled row per series, an axis of ``(time_us, text)`` ticks."""
    height = ROW_HEIGHT * len(rows) + 18
    total = LABEL_WIDTH + width
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{total}" '
        f'height="{height}" viewBox="0 0 {total} {height}" role="img">'
    ]
    for n, row in enumerate(rows):
        y = n * ROW_HEIGHT
        parts.append(
            f'<text class="label" x="4" y="{y + 15}">{escape(row.label)}'
            f"<title>{escape(row.label)}</title></text>"
        )
        ends = _Ends(row.states)
        for run in runs(view, width, row.states):
            title = _title(run.state, ends.hits(run.state, run.range), fmt)
            rect = (
                f'<rect class="s-{run.state}" x="{LABEL_WIDTH + run.first}" y="{y + 2}" '
                f'width="{run.last - run.first}" height="{ROW_HEIGHT - 4}" '
                f'data-state="{run.state}" data-start="{run.range.start_us}" '
                f'data-end="{run.range.end_us}"><title>{escape(title)}</title></rect>'
            )
            href = row.link(run.range)
            parts.append(f'<a href="{escape(href)}">{rect}</a>' if href else rect)
    base = ROW_HEIGHT * len(rows)
    for ts, text in axis:
        if not view.start_us <= ts <= view.end_us:
            continue
        x = LABEL_WIDTH + (ts - view.start_us) * width // view.duration_us
        parts.append(
            f'<line class="tick" x1="{x}" y1="0" x2="{x}" y2="{base + 4}"/>'
            f'<text class="tick" x="{x + 2}" y="{base + 15}">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
