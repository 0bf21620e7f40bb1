"""A provider with no servers at all, for tests and notebooks; and the profile-aware opener.

:class:`InMemoryProvider` is the plain provider reading from frames held in this process
(:meth:`~InMemoryProvider.register_frame`, :meth:`~InMemoryProvider.register_csv`) instead of
QuestDB: the same read path (coverage from the rows, conformance, fingerprints, SLA holds,
cache), no coordinator and no fills: what is not registered is listed as gaps.

:func:`open_provider` builds the provider a deployment profile asks for: ``prod`` checks the
coordinator (see :class:`~seamfill.sdk.settings.SeamlessSettings.profile`); ``dev`` falls back to
an :class:`InMemoryProvider` when no coordinator is configured and QuestDB does not answer.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seamfill.core.errors import InvalidArgument
from seamfill.core.logs import log_event
from seamfill.core.types import TimeRange
from seamfill.sdk._sync import SeamlessProvider
from seamfill.sdk.read._export import ReadPath
from seamfill.sdk.read._steps import local_dataset
from seamfill.sdk.read.storage import coerce_bars, empty_bars
from seamfill.sdk.settings import SeamlessSettings, Strategy

__all__ = ["InMemoryProvider", "MemoryStorage", "open_provider"]

logger = logging.getLogger("seamfill.sdk.provider")


class MemoryStorage:
    """Bars per (table, symbol), answering ``read_bars`` as the QuestDB reader does."""

    def __init__(self) -> None:
        self._frames: dict[tuple[str, str], pd.DataFrame] = {}
        self._lock = threading.Lock()

    def put(self, table: str, symbol: str, frame: pd.DataFrame) -> None:
        """Merge ``frame`` (bar schema) into what is held; a later row for a time wins."""
        with self._lock:
            old = self._frames.get((table, symbol))
            both = frame if old is None else pd.concat([old, frame], ignore_index=True)
            both = both.drop_duplicates(subset=["ts"], keep="last").sort_values("ts")
            self._frames[(table, symbol)] = both.reset_index(drop=True)

    def read(
        self,
        table: str,
        symbol: str,
        rng: TimeRange,
        *,
        rows_hint: int = 0,
        deadline: float | None = None,
        frame: bool = True,
    ) -> tuple[pd.DataFrame, ReadPath]:
        """The read path's storage call (see :class:`~seamfill.sdk.read._export.BarExporter`)."""
        return self.read_bars(table, symbol, rng), ReadPath("memory")

    def close(self) -> None:
        """Nothing to close."""

    def read_bars(self, table: str, symbol: str, rng: TimeRange) -> pd.DataFrame:
        with self._lock:
            frame = self._frames.get((table, symbol))
        if frame is None or rng.empty:
            return empty_bars(symbol)
        ts = np.asarray(frame["ts"].astype("int64"))
        lo, hi = np.searchsorted(ts, [rng.start_us, rng.end_us], side="left")
        return frame.iloc[int(lo) : int(hi)].reset_index(drop=True)


class InMemoryProvider(SeamlessProvider):
    """The plain provider over frames registered in this process (no QuestDB, no coordinator).

    ``settings`` default to 1-minute bars and ``PARTIAL_FILL`` (what is registered, the rest
    listed as gaps); a coordinator in them is ignored.
    """

    def __init__(
        self,
        settings: SeamlessSettings | None = None,
        *,
        interval: str = "1m",
        live_fetcher: Any = None,
    ) -> None:
        base = settings or SeamlessSettings(interval=interval, strategy=Strategy.PARTIAL_FILL)
        base = replace(base, coordinator_url=None, profile="dev", artifacts_dir=None)
        super().__init__(base, live_fetcher=live_fetcher)
        self.memory = MemoryStorage()
        self.aio.exporter.close()
        self.aio.storage = self.memory  # type: ignore[assignment]
        self.aio.exporter = self.memory  # type: ignore[assignment]

    def register_frame(
        self, node_id: str, frame: pd.DataFrame, *, time_unit: str | None = None
    ) -> int:
        """Hold ``frame``'s bars (a ``ts`` column or a DatetimeIndex) for ``node_id``; integer
        times are read in ``time_unit`` when given. Returns the rows held for it."""
        series = self.aio.series(node_id)
        table = local_dataset(series, None, self.settings, self.aio._datasets).table
        if time_unit is not None and "ts" in frame.columns:
            frame = frame.assign(ts=pd.to_datetime(frame["ts"], unit=time_unit, utc=True))
        bars = coerce_bars(frame, series.symbol)
        self.memory.put(table, series.symbol, bars)
        return len(self.memory.read_bars(table, series.symbol, TimeRange(0, 2**62)))

    def register_csv(
        self, node_id: str, path: str | Path, *, time_unit: str | None = None, **read_csv: Any
    ) -> int:
        """:meth:`register_frame` of a CSV file (``ts`` as ISO text or epochs in ``time_unit``)."""
        try:
            frame = pd.read_csv(path, **read_csv)
        except (OSError, ValueError) as e:
            raise InvalidArgument(f"CSV {path} cannot be read: {e}") from e
        if time_unit is None and "ts" in frame.columns and frame["ts"].dtype == object:
            frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
        return self.register_frame(node_id, frame, time_unit=time_unit)


def _questdb_answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/ping", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except (urllib.error.URLError, OSError):
        return False


def open_provider(
    settings: SeamlessSettings | None = None, *, fetcher: Any = None, live_fetcher: Any = None
) -> SeamlessProvider:
    """The provider the settings' profile asks for (see the module docstring)."""
    s = settings if settings is not None else SeamlessSettings.from_env()
    if s.profile == "dev" and s.coordinator_url is None and not _questdb_answers(s.storage_url):
        log_event(
            logger,
            "seamless.provider.in_memory",
            logging.WARNING,
            questdb_url=s.storage_url,
            message="profile dev: QuestDB does not answer and no coordinator is configured; "
            "reads are served from frames registered in this process",
        )
        return InMemoryProvider(s, live_fetcher=live_fetcher)
    return SeamlessProvider(s, fetcher=fetcher, live_fetcher=live_fetcher)
