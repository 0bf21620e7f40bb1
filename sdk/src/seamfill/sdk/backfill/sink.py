"""The QuestDB sink: create tables, write one chunk per ILP/HTTP transaction, wait until visible.

Table contract (what every reader relies on): the designated timestamp is ``ts`` (TIMESTAMP,
microseconds) and the series column is ``symbol`` (SYMBOL). Tables are partitioned WAL tables
with ``DEDUP UPSERT KEYS`` so a retried or zombie write leaves no duplicates:

- bars: ``ts, symbol, open, high, low, close, volume`` — keys ``(ts, symbol)``;
- trades: ``ts, symbol, trade_id (VARCHAR), price, amount, side (SYMBOL)`` — keys
  ``(ts, symbol, trade_id)``.

Symbols are data. ILP/HTTP carries any text in a SYMBOL tag — the client escapes commas, spaces,
``=``, backslashes and newlines — so ``symbol`` stays a SYMBOL (indexable, cheap to filter); the
round-trip of every such character, newline included, is covered by the integration tests. The
one SQL this module writes with a symbol in it quotes the literal with :mod:`seamfill.core._sql`
(``'`` doubled; QuestDB gives backslashes no meaning in literals), so a symbol can never change
the statement.

The ``questdb`` client (the SDK's ``ilp`` extra) is imported only when a sink first writes, so
the SDK installs and reads without it.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import re
import time
import urllib.parse
from typing import Any

import numpy as np
import pandas as pd

from seamfill.core._sql import check_table, quote_literal
from seamfill.core.errors import (
    ConfigError,
    InvalidArgument,
    SchemaMismatch,
    StorageError,
    StorageRejected,
    StorageUnavailable,
)
from seamfill.core.types import Dataset, TimeRange
from seamfill.sdk.backfill._wal import WalWatcher

__all__ = ["INGESTED_AT", "SCHEMAS", "QuestDBSink", "create_table_sql", "dedup", "quote_literal"]

INGESTED_AT = "ingested_at"
"""The column every write stamps with the writer's UTC time: the ingestion watermark that
as-of reads filter on (``ingested_at <= as_of``; see :mod:`seamfill.sdk.read.asof`)."""

SCHEMAS: dict[str, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "bars": (
        (
            ("ts", "TIMESTAMP"),
            ("symbol", "SYMBOL"),
            ("open", "DOUBLE"),
            ("high", "DOUBLE"),
            ("low", "DOUBLE"),
            ("close", "DOUBLE"),
            ("volume", "DOUBLE"),
        ),
        ("ts", "symbol"),
    ),
    "trades": (
        (
            ("ts", "TIMESTAMP"),
            ("symbol", "SYMBOL"),
            ("trade_id", "VARCHAR"),
            ("price", "DOUBLE"),
            ("amount", "DOUBLE"),
            ("side", "SYMBOL"),
        ),
        ("ts", "symbol", "trade_id"),
    ),
}
"""Per dataset kind: the ``(column, type)`` list and the dedup upsert keys."""

_HOUR_US = 3_600_000_000


def dedup(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """``frame`` with one row per dedup key of its dataset kind (the last one wins, as QuestDB's
    UPSERT keeps the last): what a table holds once the frame is written, so what the visible
    count is checked against. The series' ``symbol`` is one per frame, so it is left out."""
    keys = [k for k in SCHEMAS[kind][1] if k != "symbol" and k in frame.columns]
    if len(frame) < 2 or not keys:
        return frame
    repeated = frame.duplicated(subset=keys, keep="last")
    if not repeated.any():
        return frame
    return frame.loc[~repeated].reset_index(drop=True)


def _unreachable(error: Any) -> bool:
    """Whether an ILP error says QuestDB is away (socket, 5xx), not that it refused the rows."""
    code = getattr(getattr(error, "code", None), "name", "")
    if code in ("SocketError", "CouldNotResolveAddr", "ProtocolVersionError", "ConnectTimeout"):
        return True
    return code in ("ServerFlushError", "ServerInternalError") and bool(
        re.search(r"\b5\d\d\b|[Cc]onnection|timed out", str(error))
    )


def _schema(dataset: Dataset) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    try:
        return SCHEMAS[dataset.kind]
    except KeyError:
        raise ConfigError(
            f"dataset {dataset.name!r} has kind {dataset.kind!r}: use one of {sorted(SCHEMAS)}"
        ) from None


def _table(dataset: Dataset) -> str:
    try:
        return check_table(dataset.table, f"dataset {dataset.name!r} table")
    except InvalidArgument as e:
        raise ConfigError(e.message) from None


def create_table_sql(dataset: Dataset) -> str:
    """The ``CREATE TABLE IF NOT EXISTS`` statement for the dataset's table."""
    columns, keys = _schema(dataset)
    # Minute bars of many symbols fill a day partition nicely; coarser bars would leave a day
    # partition nearly empty, so they go by month.
    partition = "DAY" if dataset.kind == "trades" or dataset.interval_us < _HOUR_US else "MONTH"
    cols = ", ".join(f"{name} {kind}" for name, kind in (*columns, (INGESTED_AT, "TIMESTAMP")))
    return (
        f'CREATE TABLE IF NOT EXISTS "{_table(dataset)}" ({cols}) TIMESTAMP(ts) '
        f"PARTITION BY {partition} WAL DEDUP UPSERT KEYS({', '.join(keys)})"
    )


class QuestDBSink:
    """Writes chunks into QuestDB over ILP/HTTP and checks that readers can see them.

    One sink serves any number of concurrent chunks: each write borrows an ILP sender from a
    small pool (a sender is not thread-safe) and runs in a thread so the event loop stays free.
    """

    def __init__(
        self,
        url: str = "http://127.0.0.1:9000",
        *,
        visibility_timeout_s: float = 30.0,
        request_timeout_s: float = 30.0,
    ) -> None:
        """``url``: QuestDB's HTTP endpoint (``http[s]://[user:password@]host:port``).
        ``visibility_timeout_s``: how long :meth:`wait_visible` waits before failing retryable.
        ``request_timeout_s``: bound on each HTTP query and on ILP retries of one flush."""
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(
                f"questdb url {url!r} is not an http(s)://host:port address: give "
                "QuestDB's HTTP endpoint, e.g. http://127.0.0.1:9000"
            )
        port = parsed.port or 9000
        self._base = f"{parsed.scheme}://{parsed.hostname}:{port}"
        # Credentials go to the ILP client as keyword arguments, percent-decoded: spliced into
        # a config string, a ';' in a password would start a new key.
        user = urllib.parse.unquote(parsed.username) if parsed.username else None
        password = urllib.parse.unquote(parsed.password or "") if parsed.username else None
        self._ilp: dict[str, Any] = {
            "auto_flush": False,
            "retry_timeout": int(request_timeout_s * 1000),
        }
        if user is not None:
            self._ilp.update(username=user, password=password)
        self._https = parsed.scheme == "https"
        self._host, self._port = parsed.hostname, port
        self._headers: dict[str, str] = {}
        if user is not None:
            token = f"{user}:{password}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        self._conns: list[http.client.HTTPConnection] = []
        self._closed = False
        self.visibility_timeout_s = visibility_timeout_s
        self.request_timeout_s = request_timeout_s
        self._idle: list[Any] = []
        self._ready: set[tuple[str, str]] = set()
        self._wal = WalWatcher(self.exec)
        self._creating = asyncio.Lock()

    # -- queries ---------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        try:
            return self._conns.pop()
        except IndexError:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            return cls(self._host, self._port, timeout=self.request_timeout_s)

    def _exec_sync(self, sql: str) -> dict[str, Any]:
        path = "/exec?" + urllib.parse.urlencode({"query": sql})
        # Kept-alive connections from a small pool: visibility polls come many times a second.
        conn = self._connection()
        try:
            for attempt in (1, 2):
                try:
                    conn.request("GET", path, headers=self._headers)
                    resp = conn.getresponse()
                    raw = resp.read()
                    break
                except (OSError, http.client.HTTPException) as e:
                    conn.close()  # a server-side idle close: reopened by the retry
                    if attempt == 2:
                        raise StorageUnavailable(
                            f"QuestDB at {self._base} cannot be reached: {e}"
                        ) from e
        finally:
            if self._closed:
                conn.close()
            else:
                self._conns.append(conn)
        error = StorageUnavailable if resp.status >= 500 else StorageRejected
        try:
            body: dict[str, Any] = json.loads(raw)
        except ValueError as e:
            raise error(f"QuestDB answered {resp.status} with no JSON: {raw[:200]!r}") from e
        if resp.status != 200:
            raise error(f"QuestDB rejected the query ({resp.status}): {body.get('error', '')}")
        return body

    async def exec(self, sql: str) -> dict[str, Any]:
        """Run ``sql`` through QuestDB's HTTP ``/exec``; the JSON answer."""
        return await asyncio.to_thread(self._exec_sync, sql)

    async def count(self, dataset: Dataset, symbol: str, range: TimeRange) -> int:
        """Rows of ``symbol`` in ``range`` that queries see now."""
        sql = (
            f'SELECT count() FROM "{_table(dataset)}" WHERE symbol = {quote_literal(symbol)} '
            f"AND ts >= {int(range.start_us)} AND ts < {int(range.end_us)}"
        )
        body = await self.exec(sql)
        return int(body["dataset"][0][0])

    # -- tables ----------------------------------------------------------------------------

    async def ensure_table(self, dataset: Dataset) -> None:
        """Create the dataset's table if missing and check an existing one fits the contract.

        Raises :class:`SchemaMismatch` (terminal) naming the first column that does not fit.
        """
        key = (dataset.table, dataset.kind)
        if key in self._ready:
            return
        async with self._creating:  # the first chunks of a table arrive together
            if key in self._ready:
                return
            sql = create_table_sql(dataset)
            try:
                await self.exec(sql)
            except StorageError:
                # Another process creating the same table at once: it may be told it exists.
                await self.exec(sql)
            await self._check_schema(dataset)
            # Tables made before the watermark existed get it; their older rows keep NULL.
            await self.exec(
                f'ALTER TABLE "{_table(dataset)}" ADD COLUMN IF NOT EXISTS {INGESTED_AT} TIMESTAMP'
            )
            self._ready.add(key)

    async def warm(self, senders: int = 1) -> None:
        """Open up to ``senders`` ILP senders ahead of the first write (errors are left for the
        write to report)."""
        opened = []
        for _ in range(max(0, senders - len(self._idle))):
            try:
                opened.append(await asyncio.to_thread(self._open_sender))
            except StorageError:
                break
        self._idle.extend(opened)
        if self._closed:
            await self._close_senders()

    async def _check_schema(self, dataset: Dataset) -> None:
        table = _table(dataset)
        columns, keys = _schema(dataset)
        body = await self.exec(f"table_columns({quote_literal(table)})")
        names = [c["name"] for c in body["columns"]]
        found = {
            row[names.index("column")]: dict(zip(names, row, strict=True))
            for row in body["dataset"]
        }
        for name, kind in columns:
            col = found.get(name)
            if col is None:
                raise SchemaMismatch(
                    f"table {table!r} has no column {name!r} ({kind}): drop or "
                    f"rename the table, or point dataset {dataset.name!r} at "
                    "another table"
                )
            if col["type"] != kind:
                raise SchemaMismatch(
                    f"table {table!r} column {name!r} is {col['type']}, dataset "
                    f"{dataset.name!r} writes {kind}: fix the table or the "
                    "dataset's table name"
                )
            if name == "ts" and not col.get("designated"):
                raise SchemaMismatch(
                    f"table {table!r} column 'ts' is not the designated "
                    "timestamp: recreate it with TIMESTAMP(ts)"
                )
        for name in keys:
            if not found[name].get("upsertKey"):
                raise SchemaMismatch(
                    f"table {table!r} column {name!r} is not a dedup upsert key "
                    f"(retries would duplicate rows): run ALTER TABLE {table} "
                    f"DEDUP ENABLE UPSERT KEYS({', '.join(keys)})"
                )

    # -- writes ----------------------------------------------------------------------------

    def _borrow(self) -> Any:
        if self._idle:
            return self._idle.pop()
        from questdb import Protocol, Sender

        protocol = Protocol.Https if self._https else Protocol.Http
        sender = Sender(protocol, self._host, self._port, **self._ilp)
        sender.establish()  # type: ignore[no-untyped-call]
        return sender

    async def write(self, dataset: Dataset, symbol: str, frame: pd.DataFrame) -> int:
        """Write ``frame`` (the dataset's columns, ``ts`` as datetime64) for ``symbol`` in one
        ILP/HTTP transaction; the number of distinct rows sent (rows repeating a dedup key count
        once, see :func:`dedup`). Visibility is :meth:`wait_visible`'s job."""
        if frame.empty:
            return 0
        await self.ensure_table(dataset)
        table = _table(dataset)
        columns, _ = _schema(dataset)
        symbols = [name for name, kind in columns if kind == "SYMBOL"]
        out = dedup(frame, dataset.kind).copy(deep=False)
        out["symbol"] = pd.Categorical.from_codes(np.zeros(len(out), np.int8), [symbol])
        out = out[[name for name, _ in columns]]
        stamp = np.full(len(out), time.time_ns() // 1_000, dtype=np.int64)
        out[INGESTED_AT] = pd.to_datetime(stamp, unit="us", utc=True)
        sender = await asyncio.to_thread(self._open_sender)
        try:
            await asyncio.to_thread(self._flush_one, sender, table, out, symbols)
        except BaseException:
            await asyncio.to_thread(sender.close)
            raise
        if self._closed:
            await asyncio.to_thread(sender.close)
        else:
            self._idle.append(sender)
        return len(out)

    def _open_sender(self) -> Any:
        from questdb import QuestDBError

        try:
            return self._borrow()
        except QuestDBError as e:
            raise StorageUnavailable(
                f"QuestDB ILP endpoint at {self._base} cannot be reached: {e}"
            ) from e

    @staticmethod
    def _flush_one(sender: Any, table: str, frame: pd.DataFrame, symbols: list[str]) -> None:
        from questdb import QuestDBError

        try:
            sender.dataframe(frame, table_name=table, symbols=symbols, at="ts")
            sender.flush()
        except QuestDBError as e:
            text = str(e)
            if "cast error" in text:
                raise SchemaMismatch(f"QuestDB refused the rows for table {table!r}: {text}") from e
            error = StorageUnavailable if _unreachable(e) else StorageError
            raise error(f"ILP write to table {table!r} failed: {text}") from e

    async def wait_visible(
        self, dataset: Dataset, symbol: str, range: TimeRange, rows: int
    ) -> None:
        """Return once at least ``rows`` rows of ``symbol`` in ``range`` are visible to queries.

        ILP/HTTP acknowledges the WAL commit, not its application; readers see rows only after
        the WAL is applied. This waits until the table's WAL is applied past the commit (one
        shared poll of ``wal_tables()`` per table), then counts the rows once. Raises
        :class:`StorageError` (retryable) when the table is suspended or after the bounded
        wait.
        """
        if rows <= 0:
            return
        deadline = time.monotonic() + self.visibility_timeout_s
        seen = 0
        try:
            await self._wal.applied(_table(dataset), self.visibility_timeout_s)
            # Applied: one count confirms what readers see. Should another writer's commit to
            # the same rows still be in flight, keep counting until the deadline.
            pause = 0.01
            while True:
                seen = await self.count(dataset, symbol, range)
                if seen >= rows:
                    return
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(pause)
                pause = min(pause * 1.5, 0.1)
        except TimeoutError:
            pass
        hint = await self._wal_status(dataset)
        raise StorageError(
            f"{rows} rows written to table {dataset.table!r} for symbol "
            f"{symbol!r} in [{range.start_us}, {range.end_us}) but only {seen} "
            f"visible after {self.visibility_timeout_s:g}s{hint}"
        )

    async def _wal_status(self, dataset: Dataset) -> str:
        try:
            body = await self.exec(
                "SELECT suspended, writerTxn, sequencerTxn, errorMessage FROM "
                f"wal_tables() WHERE name = {quote_literal(dataset.table)}"
            )
        except StorageError:
            return ""
        if not body["dataset"]:
            return ""
        suspended, writer, sequencer, message = body["dataset"][0]
        if suspended:
            return (
                f"; the table is suspended ({message}): fix the cause, then ALTER TABLE "
                f"{dataset.table} RESUME WAL"
            )
        return f"; WAL applied up to txn {writer} of {sequencer}"

    async def aclose(self) -> None:
        """Close the pooled ILP senders and HTTP connections; stop the WAL pollers."""
        self._closed = True  # what is still in use is closed when its call ends
        await self._wal.aclose()
        while self._conns:
            self._conns.pop().close()
        await self._close_senders()

    async def _close_senders(self) -> None:
        idle, self._idle = self._idle, []
        for sender in idle:
            await asyncio.to_thread(sender.close)

    async def __aenter__(self) -> QuestDBSink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
