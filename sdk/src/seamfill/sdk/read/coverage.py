"""Coverage as storage shows it, for reads served without a coordinator."""

from __future__ import annotations

import time

import pandas as pd

from seamfill.core import ranges
from seamfill.core.types import Coverage, Dataset, Series, TimeRange
from seamfill.sdk.read.storage import covered_runs

__all__ = ["storage_coverage"]


def storage_coverage(
    frame: pd.DataFrame,
    series: Series,
    rng: TimeRange,
    dataset: Dataset,
    checked: list[TimeRange],
    settled_until_us: int,
) -> Coverage:
    """Coverage as storage shows it: bar runs in ``frame`` plus ``checked`` ranges."""
    ts = frame["ts"].astype("int64").to_numpy() if len(frame) else frame["ts"].to_numpy()
    covered = ranges.intersect(
        rng, ranges.merge([*covered_runs(ts, dataset.interval_us), *checked])
    )
    return Coverage(
        series=series,
        range=rng,
        covered=tuple(covered),
        gaps=tuple(ranges.subtract(rng, covered)),
        as_of_us=time.time_ns() // 1_000,
        settled_until_us=settled_until_us,
    )
