"""Waiting for QuestDB to apply WAL commits, with one poller per table for every waiter.

ILP/HTTP acknowledges a commit once it is in the table's WAL; readers see it only after the WAL
is applied. ``wal_tables()`` tells both: ``sequencerTxn`` (the last commit) and ``writerTxn``
(the last one applied). A writer registers after its flush returned; the next poll's
``sequencerTxn`` is then at or past its commit, and the commit is visible once ``writerTxn``
reaches it. However many chunks wait on a table, it costs one small query per poll interval,
not one row count per chunk per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from seamfill.core._sql import quote_literal
from seamfill.core.errors import StorageError

__all__ = ["WalWatcher"]

Exec = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass
class _Table:
    new: list[asyncio.Future[None]] = field(default_factory=list)
    """Registered since the last poll was sent: their target is the next sequencerTxn."""
    waiting: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None


class WalWatcher:
    """``await applied(table, timeout_s)`` returns once every commit acknowledged before the call
    is applied; raises :class:`StorageError` if the table is suspended or the wait times out."""

    def __init__(self, exec: Exec, interval_s: float = 0.02) -> None:
        self._exec = exec
        self.interval_s = interval_s
        self._tables: dict[str, _Table] = {}

    async def applied(self, table: str, timeout_s: float) -> None:
        state = self._tables.setdefault(table, _Table())
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        state.new.append(fut)
        if state.task is None or state.task.done():
            state.task = asyncio.create_task(self._poll(table, state))
        try:
            await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        finally:
            if not fut.done():
                fut.cancel()

    async def _poll(self, table: str, state: _Table) -> None:
        sql = (
            "SELECT writerTxn, sequencerTxn, suspended, errorMessage FROM wal_tables() "
            f"WHERE name = {quote_literal(table)}"
        )
        while state.new or state.waiting:
            asking, state.new = state.new, []
            try:
                body = await self._exec(sql)
                writer, sequencer, suspended, message = (body.get("dataset") or [[0, 0, 0, ""]])[0]
            except StorageError as e:
                _fail([*asking, *(f for _, f in state.waiting)], e)
                state.waiting.clear()
                continue
            if suspended:
                error = StorageError(
                    f"table {table!r} is suspended ({message}): fix the cause, "
                    f"then ALTER TABLE {table} RESUME WAL"
                )
                _fail([*asking, *(f for _, f in state.waiting)], error)
                state.waiting.clear()
                continue
            state.waiting.extend((int(sequencer), f) for f in asking)
            still = []
            for target, fut in state.waiting:
                if fut.done():
                    continue
                if int(writer) >= target:
                    fut.set_result(None)
                else:
                    still.append((target, fut))
            state.waiting = still
            if state.waiting or state.new:
                await asyncio.sleep(self.interval_s)

    async def aclose(self) -> None:
        """Stop the pollers."""
        tables, self._tables = self._tables, {}
        for state in tables.values():
            if state.task is not None:
                state.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await state.task


def _fail(futures: list[asyncio.Future[None]], error: StorageError) -> None:
    for fut in futures:
        if not fut.done():
            fut.set_exception(error)
