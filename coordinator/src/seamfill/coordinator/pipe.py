"""One Redis connection shared by every concurrent script call of a replica (auto-pipelining).

Calls made in the same turn of the event loop are written in one batch and their answers read
back in order, so a busy replica pays one write and one wake-up per batch instead of a pooled
connection, a packing pass and a timeout per call. Each call is still its own command (a script
stays one atomic step); only the round trips are shared.

The connection is opened (address, credentials, TLS, database) by redis-py with the client's
settings; after that the pipe writes packed commands to its stream and parses replies with
hiredis itself: this is the replica's hot path, and redis-py's per-command machinery costs more
than the command.

A connection error fails every call in flight on that connection (they surface as
``CoordinatorUnavailable``) and the next call connects again. A call whose caller gave up
waiting still has its answer read (and dropped), so the answers of the others stay in order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis
from redis import exceptions as rexc
from redis.asyncio.connection import AbstractConnection, ConnectionPool

_READ_SIZE = 65_536


def _error(reply: rexc.ResponseError) -> rexc.RedisError:
    """An error reply as the class redis-py would raise for it."""
    text = str(reply)
    if text.startswith("NOSCRIPT"):
        return rexc.NoScriptError(text)
    if text.startswith("LOADING"):
        return rexc.BusyLoadingError(text)
    return reply


class _Link:
    """One connection and the calls waiting for its answers, in the order they were sent."""

    def __init__(self, conn: AbstractConnection, loop: asyncio.AbstractEventLoop) -> None:
        self.conn = conn
        self.loop = loop
        self.stream_in: asyncio.StreamReader = conn._reader  # type: ignore[assignment]
        self.stream_out: asyncio.StreamWriter = conn._writer  # type: ignore[assignment]
        self.parser = hiredis.Reader(replyError=rexc.ResponseError, encoding="utf-8")
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.batch: list[bytes] = []
        self.flush_scheduled = False
        self.reader: asyncio.Task[None] | None = None
        self.broken = False


class Pipe:
    """Commands of concurrent callers over one connection made with ``pool``'s settings."""

    def __init__(self, pool: ConnectionPool, *, timeout_s: float = 10.0) -> None:
        self._pool = pool
        self._timeout_s = timeout_s
        self._link: _Link | None = None
        self._connecting = asyncio.Lock()

    async def execute(self, *args: Any) -> Any:
        """Send one command; its reply (a Redis error reply raises ``ResponseError``)."""
        link = self._link if self._link is not None else await self._connect()
        return await self._send(link, args)

    async def execute_many(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Send ``commands`` in one batch; their replies in order. Each command is atomic on its
        own; the first error is raised once every reply is in."""
        link = self._link if self._link is not None else await self._connect()
        futures = [self._send(link, args) for args in commands]
        replies: list[Any] = []
        error: BaseException | None = None
        for fut in futures:
            try:
                replies.append(await fut)
            except (rexc.RedisError, OSError) as e:
                error = error or e
        if error is not None:
            raise error
        return replies

    def _send(self, link: _Link, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        fut = link.loop.create_future()
        link.batch.append(hiredis.pack_command(args))
        link.waiting.append(fut)
        if not link.flush_scheduled:
            link.flush_scheduled = True
            link.loop.call_soon(self._flush, link)
        if link.reader is None:
            link.reader = link.loop.create_task(self._read(link))
        return fut

    async def _connect(self) -> _Link:
        async with self._connecting:
            if self._link is None:
                conn: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
                await conn.connect()  # type: ignore[no-untyped-call]
                self._link = _Link(conn, asyncio.get_running_loop())
            return self._link

    def _flush(self, link: _Link) -> None:
        """Runs once per loop turn with calls queued: writes all of them at once."""
        link.flush_scheduled = False
        if link.broken or not link.batch:
            return
        batch, link.batch = link.batch, []
        try:
            link.stream_out.write(batch[0] if len(batch) == 1 else b"".join(batch))
        except (OSError, RuntimeError) as e:
            self._broken(link, e)

    async def _read(self, link: _Link) -> None:
        parser = link.parser
        try:
            while link.waiting and not link.broken:
                reply = parser.gets()
                if reply is False:
                    async with asyncio.timeout(self._timeout_s):
                        data = await link.stream_in.read(_READ_SIZE)
                    if not data:
                        raise rexc.ConnectionError("Redis closed the connection")
                    parser.feed(data)
                    continue
                fut = link.waiting.popleft()
                if fut.done():
                    continue  # its caller gave up waiting
                if isinstance(reply, rexc.ResponseError):
                    fut.set_exception(_error(reply))
                else:
                    fut.set_result(reply)
        except TimeoutError:
            self._broken(link, rexc.TimeoutError(f"no answer from Redis in {self._timeout_s:g} s"))
        except (rexc.RedisError, OSError, hiredis.ProtocolError) as e:
            self._broken(link, e)
        finally:
            link.reader = None

    def _broken(self, link: _Link, e: Exception) -> None:
        if link.broken:
            return
        link.broken = True
        if self._link is link:
            self._link = None
        error = e if isinstance(e, rexc.RedisError) else rexc.ConnectionError(str(e))
        while link.waiting:
            fut = link.waiting.popleft()
            if not fut.done():
                fut.set_exception(error)
        link.loop.create_task(link.conn.disconnect(nowait=True))

    async def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.broken = True
            await link.conn.disconnect()
