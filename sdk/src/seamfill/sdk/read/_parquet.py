"""Parquet from ``/exp`` into the provider's pandas frame in about the frame's own memory.

Decoding the whole file into an Arrow table and converting that to pandas holds the table and
the frame at once, plus the decode's buffers (over 3× the frame). Here each column is allocated
once at its final size and filled one row group at a time, so the read's peak is the frame plus
one row group of one column.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from seamfill.sdk.quality.conformance import PRICE_COLUMNS
from seamfill.sdk.read.storage import with_symbol

_TS = pa.timestamp("us")


def parquet_frame(source: Any) -> pd.DataFrame:
    """``ts`` (datetime64[us, UTC]) and the price columns of a Parquet file or file object."""
    pf = pq.ParquetFile(source, pre_buffer=False)
    n = pf.metadata.num_rows
    columns: dict[str, Any] = {}
    for name, dtype, target in [("ts", "datetime64[us]", _TS)] + [
        (c, "float64", pa.float64()) for c in PRICE_COLUMNS
    ]:
        dest = np.empty(n, dtype=dtype)
        at = 0
        for group in range(pf.num_row_groups):
            col = pf.read_row_group(group, columns=[name]).column(0)
            if col.type != target:
                col = col.cast(target)
            for chunk in col.chunks:
                dest[at : at + len(chunk)] = chunk.to_numpy(zero_copy_only=False)
                at += len(chunk)
            del col
        columns[name] = dest
    ts = pd.DatetimeIndex(columns.pop("ts")).tz_localize("UTC")
    frame = pd.DataFrame({"ts": ts, **columns}, copy=False)
    return frame


def arrow_to_pandas(table: pa.Table, symbol: str) -> pd.DataFrame:
    """Bars decoded by storage (no symbol column) as the provider's pandas frame.

    ``split_blocks`` and ``self_destruct`` let pandas take each column's buffer as Arrow frees
    it, so the decode does not hold the table and the frame whole at once.
    """
    frame: pd.DataFrame = table.to_pandas(split_blocks=True, self_destruct=True)
    return with_symbol(frame, symbol)


def arrow_with_symbol(table: pa.Table, symbol: str) -> pa.Table:
    """``table`` with a dictionary-encoded ``symbol`` column after ``ts``."""
    indices = pa.array(np.zeros(table.num_rows, dtype=np.int8))
    col = pa.DictionaryArray.from_arrays(indices, pa.array([symbol], pa.string()))
    return table.add_column(1, pa.field("symbol", col.type), col)
