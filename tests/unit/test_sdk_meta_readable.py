"""``df.attrs["seamless"]`` reads well: a short repr, ISO times, durations, dict-like access."""

from __future__ import annotations

import pytest

from seamfill.core.types import Series, TimeRange
from seamfill.sdk.result import SeamlessMeta

MIN = 60_000_000
T0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


def _meta(**kw: object) -> SeamlessMeta:
    base: dict[str, object] = dict(
        series=Series("demo.ohlcv_1m", "BTC-USDT"),
        range=TimeRange(T0, T0 + 7 * 1440 * MIN),
        interval_us=MIN,
        covered=(TimeRange(T0, T0 + 6 * 1440 * MIN),),
        gaps=(TimeRange(T0 + 6 * 1440 * MIN, T0 + 7 * 1440 * MIN),),
        coverage_ratio=6 / 7,
        staleness_us=91_625_594_429_637,
        settled_until_us=T0 + 7 * 1440 * MIN,
        strategy="partial_fill",
        job_id="demo.ohlcv_1m:abc",
    )
    base.update(kw)
    return SeamlessMeta(**base)  # type: ignore[arg-type]


def test_repr_is_one_short_line_with_dates_and_durations() -> None:
    text = repr(_meta())
    assert "\n" not in text and len(text) < 240, text
    assert "demo.ohlcv_1m/BTC-USDT" in text
    assert "2024-01-01T00:00:00Z" in text and "2024-01-08T00:00:00Z" in text
    assert "85.7% covered" in text and "1 gap" in text
    assert "91625594429637" not in text and "1060d" in text


def test_str_lists_ranges_as_dates() -> None:
    text = str(_meta())
    assert "gaps: [2024-01-07T00:00:00Z, 2024-01-08T00:00:00Z) 1d" in text
    assert "staleness: 1060d" in text
    assert "us" not in text.replace("status", "")


def test_dict_like_access() -> None:
    m = _meta()
    assert m["series"] == "demo.ohlcv_1m/BTC-USDT"
    assert m["start"] == "2024-01-01T00:00:00Z" and m["end"] == "2024-01-08T00:00:00Z"
    assert m["interval"] == "1m"
    assert m["gaps"] == [["2024-01-07T00:00:00Z", "2024-01-08T00:00:00Z"]]
    assert m["staleness_us"] == 91_625_594_429_637  # raw fields stay reachable by name
    assert "gaps" in m and "nope" not in m
    assert dict(m)["job_id"] == "demo.ohlcv_1m:abc"
    assert m.get("nope", 7) == 7
    with pytest.raises(KeyError):
        m["nope"]
