"""The in-memory provider: no servers, frames and CSV files registered in this process."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from seamfill.core.types import TimeRange
from seamfill.sdk import InMemoryProvider, SeamlessSettings, open_provider

MIN = 60_000_000
T0 = 1_704_067_200_000_000


def frame(n: int, start: int = T0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.to_datetime([start + i * MIN for i in range(n)], unit="us", utc=True),
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": 3.0,
        }
    )


def test_registered_frames_are_read_with_gaps_listed() -> None:
    with InMemoryProvider() as p:
        assert p.register_frame("mem.bars/BTC", frame(30)) == 30
        r = p.read(T0, T0 + 60 * 60_000_000, node_id="mem.bars/BTC")
        again = p.read(T0, T0 + 30 * MIN, node_id="mem.bars/BTC")
    assert len(r.frame) == 30 and r.meta.coverage_ratio == 0.5
    assert r.meta.gaps == (TimeRange(T0 + 30 * MIN, T0 + 60 * MIN),)
    assert again.meta.complete and again.meta.fingerprint is not None
    assert again.frame["close"].tolist() == [1.5] * 30


def test_csv_with_epoch_ms_and_an_explicit_unit(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    f = frame(5)
    f["ts"] = f["ts"].astype("int64") // 1000  # epoch ms
    f.to_csv(path, index=False)
    with InMemoryProvider() as p:
        assert p.register_csv("mem.bars/ETH", path, time_unit="ms") == 5
        r = p.read(T0, T0 + 5 * MIN, node_id="mem.bars/ETH")
    assert r.meta.complete and r.frame["ts"].iloc[0] == pd.Timestamp("2024-01-01T00:00:00Z")


def test_dev_profile_falls_back_to_memory_when_nothing_answers() -> None:
    s = SeamlessSettings(questdb_url="http://127.0.0.1:9", profile="dev")  # nothing listens
    with open_provider(s) as p:
        assert isinstance(p, InMemoryProvider)
