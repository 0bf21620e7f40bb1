"""Columnar storage reads against the real QuestDB: exact half-open ranges, hostile symbols."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from seamfill.core.errors import StorageError
from seamfill.core.types import TimeRange
from seamfill.sdk.read.storage import StorageReader
from tests.sdk_support import MIN, T0, create_bars_table, drop_table, grid, insert_bars

pytestmark = pytest.mark.integration

HOSTILE = [
    "a'b",
    "x' OR '1'='1",
    'q"uote',
    "back\\slash",
    "com,ma sp ace=eq",
    "new\nline",
    "ünï/cødé 📈",
    "--comment",
    "semi;colon DROP TABLE t",
]


@pytest.fixture
def table(questdb_url: str, unique: str) -> Iterator[str]:
    name = f"sdk_{unique}"
    create_bars_table(questdb_url, name)
    yield name
    drop_table(questdb_url, name)


def test_half_open_range_returns_exactly_the_bars(questdb_url: str, table: str) -> None:
    insert_bars(questdb_url, table, "BTC", grid(T0, 100))
    reader = StorageReader(questdb_url)
    frame = reader.read_bars(table, "BTC", TimeRange(T0, T0 + 100 * MIN))
    assert len(frame) == 100
    assert frame["ts"].iloc[0].value // 1000 == T0
    assert frame["ts"].iloc[-1].value // 1000 == T0 + 99 * MIN
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
    assert len(reader.read_bars(table, "BTC", TimeRange(T0 + MIN, T0 + 99 * MIN))) == 98
    assert reader.read_bars_csv(table, "BTC", TimeRange(T0, T0 + 100 * MIN)).equals(frame)


@pytest.mark.parametrize("symbol", HOSTILE)
def test_hostile_symbols_read_back_verbatim_and_inject_nothing(
    questdb_url: str, table: str, symbol: str
) -> None:
    insert_bars(questdb_url, table, symbol, grid(T0, 3))
    insert_bars(questdb_url, table, "OTHER", grid(T0, 5))
    reader = StorageReader(questdb_url)
    frame = reader.read_bars(table, symbol, TimeRange(T0, T0 + 10 * MIN))
    assert len(frame) == 3 and set(frame["symbol"]) == {symbol}
    assert len(reader.read_bars(table, "OTHER", TimeRange(T0, T0 + 10 * MIN))) == 5


def test_missing_table_reads_empty_and_bad_server_is_a_storage_error(
    questdb_url: str, unique: str
) -> None:
    frame = StorageReader(questdb_url).read_bars(
        f"sdk_absent_{unique}", "X", TimeRange(T0, T0 + MIN)
    )
    assert frame.empty and "ts" in frame.columns
    with pytest.raises(StorageError, match="cannot be reached"):
        StorageReader("http://127.0.0.1:9", timeout_s=1).read_bars(
            "t", "X", TimeRange(T0, T0 + MIN)
        )
