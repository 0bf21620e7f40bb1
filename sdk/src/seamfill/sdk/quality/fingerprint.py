"""Reproducible data fingerprints: sha256 over a canonical encoding of a frame and its identity.

The encoding is independent of pandas' memory layout, index and column order: a header naming the
scheme, the series, the range and the as-of time, then each column in a fixed order as
little-endian int64 (times, in microseconds) or float64 (prices, with -0.0 written as 0.0 and every
NaN as one bit pattern), and text as length-prefixed UTF-8. The same rows give the same digest on
every machine; one changed price changes it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from seamfill.core.types import Fingerprint, Series, TimeRange
from seamfill.sdk.quality.conformance import BAR_COLUMNS

SCHEME = b"seamfill-fp-v1"
_CANON_NAN = np.float64(np.nan)


def _column_bytes(col: pd.Series) -> Any:
    """The column's canonical encoding, as bytes or a C-contiguous array (hashed as its bytes,
    without a second copy of the column)."""
    if pd.api.types.is_datetime64_any_dtype(col.dtype):
        return np.ascontiguousarray(col.dt.as_unit("us").astype("int64"), dtype="<i8")
    if pd.api.types.is_integer_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
        return np.ascontiguousarray(col, dtype="<i8")
    if pd.api.types.is_numeric_dtype(col.dtype):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan, copy=True)
        values[np.isnan(values)] = _CANON_NAN
        values += 0.0  # -0.0 + 0.0 == +0.0: one encoding for zero
        return np.ascontiguousarray(values, dtype="<f8")
    parts = []
    for text in col.astype(str).tolist():
        raw = text.encode("utf-8")
        parts.append(len(raw).to_bytes(4, "little") + raw)
    return b"".join(parts)


def digest(frame: pd.DataFrame, series: Series, rng: TimeRange, as_of_us: int) -> str:
    """Hex sha256 of the canonical encoding."""
    h = hashlib.sha256()
    header = "\x1f".join(
        [
            series.dataset,
            series.symbol,
            str(rng.start_us),
            str(rng.end_us),
            str(as_of_us),
            str(len(frame)),
        ]
    )
    h.update(SCHEME + b"\x1e" + header.encode("utf-8") + b"\x1e")
    known = [c for c in BAR_COLUMNS if c in frame.columns]
    extra = sorted(str(c) for c in frame.columns if c not in BAR_COLUMNS)
    for name in known + extra:
        # The symbol column repeats the series' symbol on every row; the header holds it already.
        if name == "symbol" and _single_value(frame[name], series.symbol):
            h.update(b"symbol=*\x1e")
            continue
        h.update(name.encode("utf-8") + b"=")
        h.update(_column_bytes(frame[name]))
        h.update(b"\x1e")
    return h.hexdigest()


def _single_value(col: pd.Series, value: str) -> bool:
    return bool(len(col) == 0 or (col == value).all())


def fingerprint(
    frame: pd.DataFrame,
    series: Series,
    rng: TimeRange,
    as_of_us: int,
    *,
    preview: bool = False,
    early: bool = False,
) -> Fingerprint:
    """The :class:`Fingerprint` of ``frame`` as the data for ``series`` over ``rng``."""
    return Fingerprint(
        series,
        rng,
        digest(frame, series, rng, as_of_us),
        as_of_us,
        len(frame),
        preview=preview,
        early=early,
    )


def as_dict(fp: Fingerprint | None) -> dict[str, Any] | None:
    if fp is None:
        return None
    return {
        "sha256": fp.sha256,
        "rows": fp.rows,
        "as_of_us": fp.as_of_us,
        "preview": fp.preview,
        "early": fp.early,
        "range": [fp.range.start_us, fp.range.end_us],
    }
