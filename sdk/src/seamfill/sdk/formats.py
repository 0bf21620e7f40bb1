"""One read, three shapes: pandas (the default), ``pyarrow.Table`` and ``polars.DataFrame``.

The read path decodes storage into pandas, where conformance and the fingerprint run; the
other shapes are built from that one frame, so their rows, their symbol
column and their fingerprint are those of the pandas frame whatever shape a caller asks for.
An Arrow table carries the metadata as JSON in its schema metadata (key ``seamless``); polars has
no metadata slot, so :meth:`SeamlessResult.meta` is where a polars caller reads it.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pyarrow as pa

from seamfill.core.errors import InvalidArgument

OUTPUTS = ("pandas", "arrow", "polars")
META_KEY = b"seamless"


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise InvalidArgument(f"output = {output!r} is not one of {', '.join(OUTPUTS)}")
    if output == "polars":
        try:
            import polars  # noqa: F401
        except ImportError as e:
            raise InvalidArgument(
                "output='polars' needs polars: pip install 'seamfill-sdk[polars]'"
            ) from e
    return output


def frame_to_arrow(frame: pd.DataFrame, meta: dict[str, Any] | None = None) -> pa.Table:
    """The pandas frame as an Arrow table, with ``meta`` as JSON under the ``seamless`` key."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if meta is None:
        return table.replace_schema_metadata(None)
    return table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


def frame_to_polars(frame: pd.DataFrame) -> Any:
    """The pandas frame as a ``polars.DataFrame`` (symbol as a categorical)."""
    import polars as pl

    return pl.from_arrow(frame_to_arrow(frame))


def meta_of_arrow(table: pa.Table) -> dict[str, Any] | None:
    """The metadata an Arrow table from a read carries, as plain data."""
    raw = (table.schema.metadata or {}).get(META_KEY)
    return None if raw is None else dict(json.loads(raw))
