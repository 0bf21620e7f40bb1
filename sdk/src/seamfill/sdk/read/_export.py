"""Reads of bars that hold up when QuestDB is busy: ``/exp`` Parquet over HTTP, PGWire beside it.

QuestDB caps concurrent ``/exp`` exports (``http.export.connection.limit``: by default the number
of CPUs or a quarter of the HTTP connections, whichever is lower: 2 on a 2-core host) and answers
429 past the cap. A team of readers meets that cap at once, so a read here:

- takes one of this process's export slots for that QuestDB (``max_concurrent_exports``; a
  process-wide semaphore per URL, so readers of one process queue locally instead of at the
  server);
- retries 429, 503 and refused connections with capped exponential backoff and full jitter, for
  as long as the deadline it was given leaves room for another attempt;
- goes over PGWire (psycopg, binary) instead when no slot is free or HTTP stays saturated and the
  read is small enough that PGWire is the faster path (``pgwire_max_rows``; the bench measures
  both paths at each size and concurrency);
- says how it got through (:class:`ReadPath`), and when the deadline runs out while storage is
  still saturated, raises :class:`~seamfill.core.errors.StorageSaturated` saying so.

Large answers are spooled to a temporary file rather than held as one bytes object next to the
decoded table.
"""

from __future__ import annotations

import logging
import random
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from seamfill.core.errors import StorageError, StorageSaturated
from seamfill.core.logs import log_event
from seamfill.core.types import TimeRange
from seamfill.sdk.quality.conformance import PRICE_COLUMNS
from seamfill.sdk.read._parquet import parquet_frame
from seamfill.sdk.read.storage import bars_query, sql_table

logger = logging.getLogger("seamfill.sdk.read.storage")

RETRY_STATUS = frozenset({429, 503})
_SPOOL_BYTES = 16 * 1024 * 1024
_BACKOFF_BASE_S = 0.02
_BACKOFF_CAP_S = 0.5
# A read needs at least this long to be worth another attempt.
_MIN_ATTEMPT_S = 0.05

ARROW_SCHEMA = pa.schema(
    [("ts", pa.timestamp("us", tz="UTC"))] + [(c, pa.float64()) for c in PRICE_COLUMNS]
)

# Export slots are a property of the process (its threads and event loops share one QuestDB's
# cap), not of one provider: several providers in one backtest process must queue together.
_SLOTS: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def export_slots(url: str, limit: int) -> threading.BoundedSemaphore:
    """This process's semaphore of ``limit`` concurrent exports to the QuestDB at ``url``."""
    with _SLOTS_LOCK:
        return _SLOTS.setdefault((url, limit), threading.BoundedSemaphore(limit))


@dataclass(frozen=True, slots=True)
class ReadPath:
    """How one read reached storage."""

    path: str
    """``http`` (``/exp`` Parquet) or ``pgwire``."""
    retries: int = 0
    """Attempts answered busy (429/503) or refused before the one that got through."""
    reason: str = ""
    """Why PGWire was used, when it was."""


@dataclass(frozen=True, slots=True)
class ExportPolicy:
    """How reads share one QuestDB (from :class:`~seamfill.sdk.settings.SeamlessSettings`)."""

    max_concurrent_exports: int = 2
    pgwire_dsn: str | None = None
    pgwire_max_rows: int = 20_000
    max_attempts: int = 8


class BarExporter:
    """Reads bars of one QuestDB into Arrow tables; thread-safe (one per provider)."""

    def __init__(
        self,
        url: str,
        policy: ExportPolicy,
        *,
        timeout_s: float = 30.0,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.policy = policy
        self.slots = export_slots(self.url, policy.max_concurrent_exports)
        self.http = httpx.Client(timeout=timeout_s, auth=auth)
        self._rand = random.Random()

    def close(self) -> None:
        self.http.close()

    def read(
        self,
        table: str,
        symbol: str,
        rng: TimeRange,
        *,
        rows_hint: int,
        deadline: float | None,
        frame: bool = False,
    ) -> tuple[Any, ReadPath]:
        """Rows of ``symbol`` in ``rng`` (``ts`` and prices; no symbol column), ordered by ts:
        a ``pyarrow.Table``, or with ``frame`` a pandas frame when that is cheaper to build
        straight from the answer (callers convert an Arrow table they get).

        ``deadline`` is a ``time.monotonic()`` instant; attempts and retries stop before it.
        """
        small = self.policy.pgwire_dsn is not None and rows_hint <= self.policy.pgwire_max_rows
        retries = 0
        last = ""
        for attempt in range(self.policy.max_attempts):
            try:
                data, path, why = self._attempt(table, symbol, rng, small, deadline, frame)
                turned_away = int(path == "pgwire" and why.startswith("HTTP"))
                return data, ReadPath(path, retries + turned_away, why[:200])
            except _Busy as busy:
                retries += 1
                last = busy.text
            pause = self._rand.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt))
            if deadline is not None and _left(deadline, 0.0) < pause + _MIN_ATTEMPT_S:
                break
            log_event(logger, "seamless.storage.retry", attempt=attempt + 1, reason=last[:80])
            time.sleep(pause)
        if self.policy.pgwire_dsn is not None and not small and _left(deadline, 1.0) > 0:
            try:
                return self._pg(table, symbol, rng, deadline), ReadPath("pgwire", retries, last)
            except _Busy as busy:
                last = busy.text
        raise StorageSaturated(
            f"QuestDB at {self.url} stayed saturated through {retries} attempt(s) ({last[:200]}): "
            "raise http.export.connection.limit, or give questdb_dsn so reads can use PGWire"
        )

    def _attempt(
        self,
        table: str,
        symbol: str,
        rng: TimeRange,
        small: bool,
        deadline: float | None,
        frame: bool,
    ) -> tuple[Any, str, str]:
        """One try: an export slot and ``/exp``; PGWire for a small read HTTP cannot take now.

        Returns the rows, the path and why PGWire was taken (``""`` for HTTP)."""
        got = self.slots.acquire(blocking=False)
        if not got and small:
            why = f"all {self.policy.max_concurrent_exports} export slots of this process busy"
            return self._pg(table, symbol, rng, deadline), "pgwire", why
        if not got and not self.slots.acquire(timeout=_left(deadline, 30.0)):
            raise _Busy(
                f"no export slot came free ({self.policy.max_concurrent_exports} per process)"
            )
        try:
            return self._http(table, symbol, rng, deadline, frame), "http", ""
        except _Busy as busy:
            if not small:
                raise
            why = f"HTTP export busy ({busy.text})"
            log_event(logger, "seamless.storage.pgwire", reason=busy.text[:80])
        finally:
            self.slots.release()
        return self._pg(table, symbol, rng, deadline), "pgwire", why

    # -- HTTP ---------------------------------------------------------------------------------

    def _http(
        self, table: str, symbol: str, rng: TimeRange, deadline: float | None, frame: bool
    ) -> Any:
        params = {"query": bars_query(table, symbol, rng), "fmt": "parquet"}
        timeout = httpx.Timeout(_left(deadline, self.http.timeout.read))
        try:
            with (
                self.http.stream("GET", f"{self.url}/exp", params=params, timeout=timeout) as resp,
                tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool,
            ):
                if resp.status_code in RETRY_STATUS:
                    raise _Busy(f"{resp.status_code}: {resp.read().decode('utf-8', 'replace')}")
                if resp.status_code != 200:
                    detail = resp.read().decode("utf-8", "replace")[:500]
                    raise StorageError(
                        f"QuestDB at {self.url} answered {resp.status_code} to exp: {detail}"
                    )
                for chunk in resp.iter_bytes(1 << 20):
                    spool.write(chunk)
                spool.seek(0)
                head = spool.read(4)
                spool.seek(0)
                if head != b"PAR1":
                    return _csv_table(spool.read())
                if frame:
                    return parquet_frame(spool)
                return _conform(pq.read_table(spool))
        except (
            httpx.ConnectError,
            httpx.RemoteProtocolError,
            httpx.ReadError,
            httpx.TimeoutException,
        ) as e:
            raise _Busy(f"{type(e).__name__}: {e}") from e
        except httpx.HTTPError as e:
            raise StorageError(
                f"QuestDB at {self.url} cannot be read ({type(e).__name__}: {e}): check "
                "storage.questdb_url and that QuestDB is running"
            ) from e

    # -- PGWire -------------------------------------------------------------------------------

    def _pg(self, table: str, symbol: str, rng: TimeRange, deadline: float | None) -> pa.Table:
        import psycopg

        assert self.policy.pgwire_dsn is not None
        sql = (
            f"SELECT ts, {', '.join(PRICE_COLUMNS)} FROM {sql_table(table)} "
            "WHERE symbol = %s AND ts >= %s AND ts < %s ORDER BY ts"
        )
        start = pa.scalar(rng.start_us, pa.timestamp("us", tz="UTC")).as_py()
        end = pa.scalar(rng.end_us, pa.timestamp("us", tz="UTC")).as_py()
        wait = max(1, int(_left(deadline, 30.0)))
        try:
            with psycopg.connect(
                self.policy.pgwire_dsn, autocommit=True, connect_timeout=wait
            ) as c:
                cur = c.cursor(binary=True)
                cur.execute(sql, (symbol, start, end))
                rows = cur.fetchall()
        except psycopg.OperationalError as e:
            raise _Busy(f"PGWire: {e}") from e
        except psycopg.Error as e:
            raise StorageError(f"QuestDB PGWire read failed: {e}") from e
        columns: list[Any] = list(zip(*rows, strict=True)) if rows else [()] * len(ARROW_SCHEMA)
        ts = pa.array(columns[0], pa.timestamp("us"))
        arrays = [ts.cast(pa.timestamp("us", tz="UTC"))]
        arrays += [pa.array(col, pa.float64()) for col in columns[1:]]
        return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)


class _Busy(Exception):
    """An attempt the server turned away for load (429/503) or a refused connection."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _left(deadline: float | None, default: Any) -> Any:
    return default if deadline is None else max(0.0, deadline - time.monotonic())


def _conform(table: pa.Table) -> pa.Table:
    """``table`` with ``ts`` as timestamp[us, UTC] and prices as float64, in schema order."""
    cols = []
    for f in ARROW_SCHEMA:
        col = table.column(f.name)
        cols.append(col if col.type == f.type else col.cast(f.type))
    return pa.Table.from_arrays(cols, schema=ARROW_SCHEMA)


def _csv_table(body: bytes) -> pa.Table:
    import io

    import pyarrow.csv as pacsv

    types = {f.name: f.type for f in ARROW_SCHEMA}
    opts = pacsv.ConvertOptions(column_types=types)
    return _conform(pacsv.read_csv(io.BytesIO(body), convert_options=opts))
