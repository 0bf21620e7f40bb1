"""Input preparation before the conformance rules count: a user's column types, timestamps to
UTC, an explicit time unit, ``inf`` to NaN. Pure: pandas and numpy only.

- **Timestamps** (``ts``, or the columns named): tz-aware columns are converted to UTC, naive
  ones are taken as UTC, ISO-8601 strings (with or without an offset) are parsed to UTC, and
  integer epochs are read in the caller's ``time_unit`` (``s``, ``ms``, ``us``, ``ns``). With no
  unit given an integer column is left as it is and the schema rule reports it: the unit is never
  guessed from the numbers' size here (a 1971 epoch in microseconds looks like one in ms).
- **Casting**: ``dtypes`` maps a column to ``float64``, ``int64``, ``string``, ``bool`` or
  ``datetime``; a value that cannot be cast fails naming the column and the value.
- **inf to NaN** (when asked): ``±inf`` in numeric columns become NaN, counted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from seamfill.core.errors import ConfigError, ConformanceError

TIME_UNITS = ("s", "ms", "us", "ns")
DTYPES = ("float64", "int64", "string", "bool", "datetime")
TS_DTYPE = "datetime64[us, UTC]"


def check_options(dtypes: Mapping[str, Any], time_unit: Any) -> dict[str, str]:
    """The validated ``dtypes`` mapping (raises naming the bad key)."""
    if time_unit is not None and time_unit not in TIME_UNITS:
        raise ConfigError(
            f"conformance.time_unit = {time_unit!r} is not one of {', '.join(TIME_UNITS)}"
        )
    out = {}
    for col, kind in dict(dtypes).items():
        if kind not in DTYPES:
            raise ConfigError(
                f"conformance.dtypes.{col} = {kind!r} is not one of {', '.join(DTYPES)}"
            )
        out[str(col)] = str(kind)
    return out


def to_utc(col: pd.Series, unit: str | None, name: str) -> pd.Series:
    """``col`` as datetime64[us, UTC] where that can be done without guessing."""
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        tz = getattr(col.dt, "tz", None)
        out = col.dt.tz_localize("UTC") if tz is None else col.dt.tz_convert("UTC")
        return out.dt.as_unit("us")
    if pd.api.types.is_integer_dtype(col.dtype):
        if unit is None:
            return col
        return pd.to_datetime(col, unit=unit, utc=True).dt.as_unit("us")
    if pd.api.types.is_object_dtype(col.dtype) or pd.api.types.is_string_dtype(col.dtype):
        try:
            return pd.to_datetime(col, utc=True, format="ISO8601").dt.as_unit("us")
        except (ValueError, TypeError) as e:
            raise ConformanceError(
                f"column {name!r} holds text that is not an ISO-8601 time ({e}): fix the "
                "data, or give integer epochs with conformance.time_unit"
            ) from None
    return col


def _cast(col: pd.Series, kind: str, name: str, unit: str | None) -> pd.Series:
    try:
        if kind == "datetime":
            return to_utc(col, unit, name)
        if kind == "string":
            return col.astype("string")
        if kind == "float64" and (
            pd.api.types.is_object_dtype(col.dtype) or pd.api.types.is_string_dtype(col.dtype)
        ):
            return pd.to_numeric(col, errors="raise").astype("float64")
        return col.astype(kind)
    except (ValueError, TypeError) as e:
        raise ConformanceError(
            f"column {name!r} cannot be cast to {kind} ({e}): fix the data or "
            f"conformance.dtypes.{name}"
        ) from None


def prepare(
    frame: pd.DataFrame,
    *,
    dtypes: Mapping[str, str],
    time_unit: str | None,
    inf_to_nan: bool,
    time_columns: tuple[str, ...] = ("ts",),
) -> tuple[pd.DataFrame, dict[str, int], dict[str, str]]:
    """The frame prepared, per-step counts (``cast``: columns changed, ``inf``: values made
    NaN) and details naming what changed."""
    out = frame
    counts = {"cast": 0, "inf": 0}
    changed: list[str] = []
    for name in time_columns:
        if name in out.columns and name not in dtypes:
            before = str(out[name].dtype)
            col = to_utc(out[name], time_unit, name)
            if str(col.dtype) != before:
                out = out if out is not frame else frame.copy()
                out[name] = col
                changed.append(f"{name}: {before} -> {col.dtype}")
    for name, kind in dtypes.items():
        if name not in out.columns:
            continue
        before = str(out[name].dtype)
        col = _cast(out[name], kind, name, time_unit)
        if str(col.dtype) != before:
            out = out if out is not frame else frame.copy()
            out[name] = col
            changed.append(f"{name}: {before} -> {col.dtype}")
    counts["cast"] = len(changed)
    details = {"cast": "; ".join(changed)} if changed else {}
    if inf_to_nan:
        numeric = [c for c in out.columns if pd.api.types.is_float_dtype(out[c].dtype)]
        if numeric:
            values = out[numeric].to_numpy(dtype=np.float64, na_value=np.nan)
            n = int(np.count_nonzero(np.isinf(values)))
            if n:
                out = out if out is not frame else frame.copy()
                out[numeric] = out[numeric].replace([np.inf, -np.inf], np.nan)
                counts["inf"] = n
                details["inf"] = f"{n} infinite value(s) set to NaN"
    return out, counts, details
