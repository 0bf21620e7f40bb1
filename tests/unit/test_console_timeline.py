"""The console's timeline (pure): per-pixel binning, state precedence, escaping."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from seamfill.coordinator.console import timeline
from seamfill.coordinator.console.pages import esc, range_text
from seamfill.coordinator.console.states import clamp, ticks, zooms
from seamfill.core.types import TimeRange

H = 3_600_000_000


def test_a_gap_takes_its_pixels_and_a_sliver_still_shows() -> None:
    view = TimeRange(0, 10 * H)
    states = {
        "covered": [TimeRange(0, 4 * H), TimeRange(5 * H, 10 * H)],
        "gap": [TimeRange(4 * H, 5 * H)],
        "dead": [TimeRange(7 * H, 7 * H + 1)],  # one microsecond: still one pixel
    }
    runs = timeline.runs(view, 100, states)
    assert [(r.first, r.last, r.state) for r in runs] == [
        (0, 40, "covered"),
        (40, 50, "gap"),
        (50, 70, "covered"),
        (70, 71, "dead"),
        (71, 100, "covered"),
    ]
    assert runs[1].range == TimeRange(4 * H, 5 * H)


def test_100k_intervals_bin_into_at_most_width_runs() -> None:
    step = 60_000_000
    covered = [TimeRange(i * 2 * step, i * 2 * step + step) for i in range(100_000)]
    gaps = [TimeRange(r.end_us, r.end_us + step) for r in covered]
    view = TimeRange(0, 200_000 * step)
    runs = timeline.runs(view, 1000, {"covered": covered, "gap": gaps})
    # Every pixel holds 100 gaps: a gap never hides under coverage.
    assert [(r.first, r.last, r.state) for r in runs] == [(0, 1000, "gap")]


@given(
    st.lists(st.tuples(st.integers(0, 999), st.integers(1, 50)), max_size=30),
    st.integers(10, 400),
)
def test_every_gap_pixel_shows_a_gap_or_something_more_urgent(
    spans: list[tuple[int, int]], width: int
) -> None:
    view = TimeRange(0, 1000)
    gaps = sorted({TimeRange(s, min(1000, s + n)) for s, n in spans}, key=lambda r: r.start_us)
    px = timeline.pixel_states(view, width, {"covered": [view], "gap": gaps})
    for g in gaps:
        first = g.start_us * width // 1000
        assert timeline.STATES[px[first]] == "gap"


def test_the_svg_escapes_labels_and_titles_and_parses_as_xml() -> None:
    hostile = '<img src=x onerror=alert(1)> "q" &amp;'
    row = timeline.Row(
        label=hostile,
        states={"gap": [TimeRange(0, H)]},
        link=lambda r: f"/series?series=d/{hostile}&start={r.start_us}",
    )
    svg = timeline.svg(TimeRange(0, H), 200, [row], range_text, ticks(TimeRange(0, H)))
    assert "<img" not in svg
    doc = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert doc.find(f"{ns}text").text == hostile
    (link,) = doc.findall(f"{ns}a")
    assert link.get("href").startswith("/series?series=d/<img")
    assert esc(hostile) in svg


def test_zoom_goes_from_years_to_minutes_within_bounds() -> None:
    view = TimeRange(0, 365 * 24 * H)
    assert clamp(TimeRange(5, 6)).duration_us == 60_000_000
    z = zooms(view)
    assert z["zoom in"].duration_us == view.duration_us // 4
    assert z["10m"].duration_us == 600_000_000
    assert z["◀ earlier"].start_us == 0  # clamped at the epoch
    assert 1 <= len(ticks(view)) <= 9
