"""Coverage and freshness bounds of a finished read, and what a breach does (hold or downgrade).

``SLAPolicy.min_coverage``, ``max_lag_ms`` and ``max_sync_gap_bars`` are checked on the result's
metadata after the read; a breach either holds (no rows, ``meta.hold``) or downgrades (rows kept,
marked), per ``SLAPolicy.on_hold_breach``. The breach's name (``coverage_breach``,
``freshness_breach``, ``as_of_regression``) is in ``meta.breaches`` and starts the reason. Time
comes in as an argument.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pandas as pd

from seamfill.core.logs import log_event
from seamfill.sdk.metrics import SLA_DOWNGRADES
from seamfill.sdk.read.storage import empty_bars
from seamfill.sdk.result import SeamlessResult
from seamfill.sdk.sla import HoldMode, SLAPolicy

logger = logging.getLogger("seamfill.sdk.provider")

COVERAGE_BREACH = "coverage_breach"
FRESHNESS_BREACH = "freshness_breach"
AS_OF_REGRESSION = "as_of_regression"


def newest_bar_end_us(frame: pd.DataFrame, interval_us: int) -> int | None:
    """End of the newest bar in ``frame`` (``None`` for no rows)."""
    if not len(frame):
        return None
    return int(frame["ts"].max().value // 1_000) + interval_us


def breaches(result: SeamlessResult, policy: SLAPolicy, now_us: int) -> list[tuple[str, str]]:
    """``(name, why)`` for every coverage or freshness bound ``result`` breaks."""
    meta = result.meta
    found: list[tuple[str, str]] = []
    if policy.min_coverage is not None and meta.coverage_ratio < policy.min_coverage:
        found.append(
            (
                COVERAGE_BREACH,
                f"coverage {meta.coverage_ratio:.4f} is below sla.min_coverage "
                f"{policy.min_coverage}",
            )
        )
    newest = newest_bar_end_us(result.frame, meta.interval_us)
    if policy.max_lag_ms is not None:
        lag_us = now_us - (newest if newest is not None else meta.range.start_us)
        if meta.live_rows == 0 and lag_us > policy.max_lag_ms * 1000:
            found.append(
                (
                    FRESHNESS_BREACH,
                    f"the newest bar ends {lag_us // 1000} ms before now, more than "
                    f"sla.max_lag_ms {policy.max_lag_ms}",
                )
            )
    if policy.max_sync_gap_bars is not None:
        edge = min(meta.settled_until_us, meta.range.end_us)
        behind = (edge - (newest if newest is not None else meta.range.start_us)) // max(
            1, meta.interval_us
        )
        if behind > policy.max_sync_gap_bars:
            found.append(
                (
                    FRESHNESS_BREACH,
                    f"the newest bar trails the settled edge by {behind} bar(s), more than "
                    f"sla.max_sync_gap_bars {policy.max_sync_gap_bars}",
                )
            )
    return found


def apply(result: SeamlessResult, found: list[tuple[str, str]], mode: HoldMode) -> SeamlessResult:
    """``result`` held (no rows) or downgraded for the breaches ``found``; unchanged if none."""
    if not found:
        return result
    meta = result.meta
    names = tuple(dict.fromkeys([*meta.breaches, *(name for name, _ in found)]))
    why = "; ".join(f"{name}: {text}" for name, text in found)
    reason = f"{why}; {meta.reason}" if meta.reason else why
    for name in names:
        SLA_DOWNGRADES.labels(name).inc()
    log_event(
        logger,
        "seamless.sla.hold" if mode is HoldMode.HOLD else "seamless.sla.downgrade",
        logging.WARNING,
        dataset=meta.series.dataset,
        breaches=",".join(names),
        reason=why,
    )
    frame = result.frame
    if mode is HoldMode.HOLD:
        frame = empty_bars(meta.series.symbol)
    new_meta = replace(
        meta, downgraded=True, reason=reason, breaches=names, hold=mode is HoldMode.HOLD
    )
    return SeamlessResult(frame, new_meta)


def enforce(result: SeamlessResult, policy: SLAPolicy, now_us: int) -> SeamlessResult:
    """Check the policy's bounds on ``result`` and hold or downgrade on a breach."""
    return apply(result, breaches(result, policy, now_us), policy.on_hold_breach)
