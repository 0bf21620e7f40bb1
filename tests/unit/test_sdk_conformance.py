"""ConformancePipeline: each rule counts what it flags; errors block unless partial_ok."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seamfill.core.errors import ConfigError, ConformanceError
from seamfill.sdk.quality.conformance import RULES, ConformancePipeline, Severity

MIN = 60_000_000
T0 = 1_704_067_200_000_000


def bars(n: int = 10, start: int = T0) -> pd.DataFrame:
    ts = start + np.arange(n, dtype=np.int64) * MIN
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(ts, unit="us", utc=True),
            "symbol": pd.Categorical(["BTC"] * n),
            "open": np.full(n, 10.0),
            "high": np.full(n, 11.0),
            "low": np.full(n, 9.0),
            "close": np.full(n, 10.5),
            "volume": np.full(n, 1.0),
        }
    )


def broken() -> pd.DataFrame:
    f = bars(10)
    f = pd.concat(
        [f, f.iloc[[3]]], ignore_index=True
    )  # one duplicate (appended: also out of order)
    ts = f["ts"].astype("int64").to_numpy().copy()
    ts[5] = ts[5] + 1_000_000  # one misaligned bar (1 s off the minute grid)
    f["ts"] = pd.to_datetime(ts, unit="us", utc=True)
    f.loc[7, "close"] = np.nan  # one non-finite value
    f.loc[8, "high"] = 8.0  # high < low
    return f


def test_clean_bars_pass_every_rule() -> None:
    frame, report = ConformancePipeline().run(bars(), MIN)
    assert report.ok and report.rollups == {} and len(frame) == 10
    assert set(report.counts) == set(RULES)


def test_each_violation_is_counted_and_the_default_raises() -> None:
    with pytest.raises(ConformanceError) as info:
        ConformancePipeline().run(broken(), MIN)
    report = info.value.report
    assert report.counts["duplicates"] == 1
    assert report.counts["order"] == 1
    assert report.counts["grid"] == 1
    assert report.counts["non_finite"] == 1
    assert report.counts["ohlc"] == 1
    assert "duplicates=1" in str(info.value) and "partial_ok" in str(info.value)


def test_partial_ok_returns_normalised_rows_with_the_report() -> None:
    pipe = ConformancePipeline.partial_ok(True)
    assert pipe.partial_ok is True and ConformancePipeline().partial_ok is False
    frame, report = pipe.run(broken(), MIN)
    assert report.errors["duplicates"] == 1 and not report.ok
    assert frame["ts"].is_monotonic_increasing and len(frame) == 10 == report.rows_out
    assert report.rows_in == 11


def test_internal_gaps_warn_by_default_and_block_when_strict() -> None:
    f = bars(10).drop(index=[4, 5]).reset_index(drop=True)
    _, report = ConformancePipeline().run(f, MIN)
    assert report.warnings == {"gaps": 2} and report.ok
    with pytest.raises(ConformanceError):
        ConformancePipeline.preset("strict").run(f, MIN)


def test_schema_problem_is_reported_and_stops_the_other_rules() -> None:
    f = bars(3).drop(columns=["volume"])
    f["open"] = f["open"].astype(str)
    with pytest.raises(ConformanceError) as info:
        ConformancePipeline().run(f, MIN)
    assert info.value.report.counts["schema"] == 2
    assert "missing column 'volume'" in info.value.report.details["schema"]


def test_severities_and_presets() -> None:
    pipe = ConformancePipeline(severities={"duplicates": "warning", "ohlc": "ignore"})
    f = bars(5)
    f = pd.concat([f, f.iloc[[4]]], ignore_index=True)
    f.loc[0, "low"] = 100.0
    _, report = pipe.run(f, MIN)
    assert report.warnings == {"duplicates": 1} and report.counts["ohlc"] == 0
    tolerant = ConformancePipeline.preset("tolerant")
    assert tolerant.partial_ok and tolerant.severities["gaps"] is Severity.IGNORE


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"severities": {"nope": "error"}}, "severities.nope"),
        ({"severities": {"order": "loud"}}, "severities.order"),
        ({"partial": True}, "conformance.partial"),
        ({"partial_ok": "yes"}, "partial_ok"),
        ("lenient", "lenient"),
    ],
)
def test_bad_config_names_the_key(data: object, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        ConformancePipeline.from_mapping(data)


def test_empty_frame_passes() -> None:
    from seamfill.sdk.read.storage import empty_bars

    frame, report = ConformancePipeline().run(empty_bars("X"), MIN)
    assert frame.empty and report.ok
