"""The files fetcher on a kline dump directory written to a temporary folder."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seamfill.core.errors import FetchError
from seamfill.core.types import Dataset, Series, TimeRange
from seamfill.sdk.backfill.chunk import validate_frame
from seamfill.sdk.backfill.fetchers import load_fetcher
from seamfill.worker.fetchers.files import FilesFetcher, interval_name

MIN = 60_000_000
JAN = 1_704_067_200_000_000  # 2024-01-01
FEB = 1_706_745_600_000_000
MAR = 1_709_251_200_000_000
HEADER = "open_time,open,high,low,close,volume,close_time,a,b,c,d,e"
DS = Dataset("dump.ohlcv_1m", "ohlcv_1m", "files", MIN)
SERIES = Series(DS.name, "BTCUSDT")


def _month_rows(start_us: int, end_us: int, unit: int = 1000) -> list[str]:
    out = []
    for t in range(start_us, end_us, MIN):
        open_time = t // unit
        out.append(f"{open_time},1.0,2.0,0.5,1.5,10.0,{open_time + 59_999},15.0,3,5.0,7.5,0")
    return out


def _write(root: Path, month: str, lines: list[str], suffix: str = ".csv") -> Path:
    folder = root / "BTCUSDT"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"BTCUSDT-1m-{month}{suffix}"
    text = "\n".join(lines) + "\n"
    if suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr(f"BTCUSDT-1m-{month}.csv", text)
    else:
        path.write_text(text)
    return path


async def test_reads_a_range_across_months_in_ms_and_us_dumps(tmp_path: Path) -> None:
    _write(tmp_path, "2024-01", _month_rows(JAN, FEB))  # milliseconds
    _write(
        tmp_path,
        "2024-02",
        [
            "open_time,open,high,low,close,volume,close_time,a,b,c,d,e",
            *_month_rows(FEB, MAR, unit=1),
        ],
        suffix=".zip",
    )  # header line, microseconds
    rng = TimeRange(FEB - 30 * MIN, FEB + 30 * MIN)
    fetcher = load_fetcher("files", root=str(tmp_path))
    frame = await fetcher.fetch(SERIES, rng, DS)
    assert len(frame) == 60
    ts = frame["ts"].to_numpy()
    assert ts[0] == rng.start_us and ts[-1] == rng.end_us - MIN and (np.diff(ts) == MIN).all()
    validate_frame(frame, SERIES, rng, DS)


async def test_parquet_files_are_read_too(tmp_path: Path) -> None:
    folder = tmp_path / "BTCUSDT"
    folder.mkdir()
    n = 100
    pd.DataFrame(
        {
            "open_time": JAN // 1000 + np.arange(n) * 60_000,
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": 1.5,
            "volume": 3.0,
        }
    ).to_parquet(folder / "BTCUSDT-1m-2024-01.parquet")
    frame = await FilesFetcher(root=str(tmp_path)).fetch(SERIES, TimeRange(JAN, JAN + 10 * MIN), DS)
    assert len(frame) == 10 and frame["volume"].eq(3.0).all()


async def test_a_missing_month_fails_terminally_naming_the_file(tmp_path: Path) -> None:
    _write(tmp_path, "2024-01", _month_rows(JAN, FEB))
    with pytest.raises(FetchError, match="BTCUSDT-1m-2024-02") as info:
        await FilesFetcher(root=str(tmp_path)).fetch(SERIES, TimeRange(FEB, FEB + MIN), DS)
    assert not info.value.retryable and "missing=empty" in info.value.message


async def test_missing_empty_makes_a_missing_month_covered_empty(tmp_path: Path) -> None:
    _write(tmp_path, "2024-01", _month_rows(JAN, FEB))
    fetcher = FilesFetcher(root=str(tmp_path), missing="empty")
    assert (await fetcher.fetch(SERIES, TimeRange(FEB, FEB + MIN), DS)).empty
    both = await fetcher.fetch(SERIES, TimeRange(FEB - MIN, FEB + MIN), DS)
    assert len(both) == 1


@pytest.mark.parametrize(
    ("lines", "problem"),
    [
        (["1704067200000,1.0,2.0,0.5,not-a-number,10.0,0,0,0,0,0,0"], "'close' is not a number"),
        (["1704067200000,1.0,2.0"], "corrupt"),
        (["1704067230000,1.0,2.0,0.5,1.5,10.0,0,0,0,0,0,0"], "not on the"),
        (["\x00\x01\x02garbage"], "corrupt"),
    ],
)
async def test_a_corrupt_file_fails_terminally_naming_the_file(
    tmp_path: Path, lines: list[str], problem: str
) -> None:
    path = _write(tmp_path, "2024-01", lines)
    with pytest.raises(FetchError, match=problem) as info:
        await FilesFetcher(root=str(tmp_path)).fetch(SERIES, TimeRange(JAN, JAN + MIN), DS)
    assert not info.value.retryable and str(path) in info.value.message


async def test_a_broken_zip_is_corrupt(tmp_path: Path) -> None:
    folder = tmp_path / "BTCUSDT"
    folder.mkdir()
    (folder / "BTCUSDT-1m-2024-01.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(FetchError, match=r"BTCUSDT-1m-2024-01\.zip is corrupt"):
        await FilesFetcher(root=str(tmp_path)).fetch(SERIES, TimeRange(JAN, JAN + MIN), DS)


@pytest.mark.parametrize("symbol", ["../etc", "a/b", "..", "a\\b"])
async def test_symbols_cannot_leave_the_root(tmp_path: Path, symbol: str) -> None:
    with pytest.raises(FetchError, match="path separators") as info:
        await FilesFetcher(root=str(tmp_path)).fetch(
            Series(DS.name, symbol), TimeRange(JAN, JAN + MIN), DS
        )
    assert not info.value.retryable


def test_interval_names() -> None:
    assert [interval_name(x) for x in (MIN, 5 * MIN, 60 * MIN, 1440 * MIN, 1_000_000)] == [
        "1m",
        "5m",
        "1h",
        "1d",
        "1s",
    ]
