"""Conformance rules of tick data: trades (``ts, price, amount``) and quotes
(``ts, bid, ask, bid_size, ask_size``). Pure: pandas and numpy only.

- ``crossed``: quotes whose bid is above the ask;
- ``negative_size``: trades with a negative amount, quotes with a negative bid or ask size;
- ``wide_spread``: quotes whose spread exceeds ``max_spread_bps`` basis points of the mid.

Also the duplicate counts of every kind: rows dropped and keys affected.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

COLUMNS: dict[str, tuple[str, ...]] = {
    "trades": ("ts", "price", "amount"),
    "quotes": ("ts", "bid", "ask", "bid_size", "ask_size"),
}
"""Required columns of each tick kind (numeric ones must be float64)."""
KEYS: dict[str, tuple[str, ...]] = {
    "bars": ("ts", "symbol"),
    "trades": ("ts", "symbol", "trade_id"),
    "quotes": ("ts", "symbol"),
}
"""Duplicate keys of each tick kind (those present in the frame are used)."""


def _floats(frame: pd.DataFrame, name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray(frame[name].to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)


def check_schema(frame: pd.DataFrame, kind: str) -> tuple[int, str]:
    problems = []
    for col in COLUMNS[kind]:
        if col not in frame.columns:
            problems.append(f"missing column {col!r}")
        elif col == "ts" and not pd.api.types.is_datetime64_any_dtype(frame[col].dtype):
            problems.append(f"ts has dtype {frame[col].dtype}, expected datetime64[us, UTC]")
        elif col != "ts" and not pd.api.types.is_float_dtype(frame[col].dtype):
            problems.append(f"{col} has dtype {frame[col].dtype}, expected float64")
    return len(problems), "; ".join(problems)


def check_crossed(frame: pd.DataFrame) -> tuple[int, str]:
    if not {"bid", "ask"} <= set(frame.columns):
        return 0, ""
    with np.errstate(invalid="ignore"):
        return int(np.count_nonzero(_floats(frame, "bid") > _floats(frame, "ask"))), ""


def check_negative_size(frame: pd.DataFrame) -> tuple[int, str]:
    cols = [c for c in ("amount", "bid_size", "ask_size") if c in frame.columns]
    if not cols:
        return 0, ""
    with np.errstate(invalid="ignore"):
        bad = np.zeros(len(frame), dtype=bool)
        for c in cols:
            bad |= _floats(frame, c) < 0
    return int(np.count_nonzero(bad)), ""


def check_wide_spread(frame: pd.DataFrame, max_spread_bps: float) -> tuple[int, str]:
    if not {"bid", "ask"} <= set(frame.columns):
        return 0, ""
    bid, ask = _floats(frame, "bid"), _floats(frame, "ask")
    with np.errstate(invalid="ignore", divide="ignore"):
        bps = (ask - bid) / ((ask + bid) / 2) * 10_000
        n = int(np.count_nonzero(bps > max_spread_bps))
    return n, f"spread above {max_spread_bps} bps of the mid" if n else ""


def check_non_finite(frame: pd.DataFrame, kind: str) -> tuple[int, str]:
    cols = [c for c in COLUMNS[kind] if c != "ts" and c in frame.columns]
    if not cols:
        return 0, ""
    values = frame[cols].to_numpy(dtype=np.float64, na_value=np.nan)
    return int(np.count_nonzero(~np.isfinite(values).all(axis=1))), ""


def duplicate_keys(frame: pd.DataFrame, kind: str = "bars") -> list[str]:
    """The columns a row is identified by, of those present."""
    return [c for c in KEYS.get(kind, ("ts", "symbol")) if c in frame.columns]


def count_duplicates(frame: pd.DataFrame, kind: str = "bars") -> tuple[int, int]:
    """``(rows dropped, keys affected)`` by keeping one row per key."""
    if "ts" not in frame.columns or len(frame) < 2:
        return 0, 0
    keys = duplicate_keys(frame, kind)
    dup_any = frame.duplicated(subset=keys, keep=False)
    if not dup_any.any():
        return 0, 0
    rows = int(frame.duplicated(subset=keys, keep="last").sum())
    affected = int((~frame[dup_any].duplicated(subset=keys, keep="first")).sum())
    return rows, affected


def tick_rule(
    rule: str, frame: pd.DataFrame, kind: str, max_spread_bps: float
) -> tuple[int, str] | None:
    """The count of ``rule`` for tick data, or ``None`` where the bar rule applies as is."""
    if rule == "schema":
        return check_schema(frame, kind)
    if rule == "non_finite":
        return check_non_finite(frame, kind)
    if rule == "duplicates":
        return count_duplicates(frame, kind)[0], ""
    if rule == "wide_spread":
        return check_wide_spread(frame, max_spread_bps)
    if rule == "crossed":
        return check_crossed(frame)
    if rule == "negative_size":
        return check_negative_size(frame)
    return None
