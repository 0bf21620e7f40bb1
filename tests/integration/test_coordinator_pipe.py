"""The replica's shared Redis connection (``Pipe``), against a real Redis: replies in order,
an error reply kept to its own call, a dropped connection failing only the calls on it, and a
script flushed from Redis loaded again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import redis
import redis.asyncio as aioredis
from redis import exceptions as rexc

from seamfill.coordinator.keys import Keys
from seamfill.coordinator.pipe import Pipe
from seamfill.coordinator.redis_conn import Commands, parse_url
from seamfill.coordinator.scripts import Scripts

pytestmark = pytest.mark.integration


def _run(redis_url: str, body: Callable[[Pipe, aioredis.Redis], Awaitable[None]]) -> None:
    async def main() -> None:
        client = aioredis.Redis.from_url(redis_url, decode_responses=True)
        pipe = Pipe(client.connection_pool)
        try:
            await body(pipe, client)
        finally:
            await pipe.close()
            await client.aclose()

    asyncio.run(main())


def test_concurrent_calls_get_their_own_replies_in_one_batch(
    redis_url: str, key_prefix: str
) -> None:
    key = f"{key_prefix}pipe:n"

    async def body(pipe: Pipe, _: aioredis.Redis) -> None:
        replies = await asyncio.gather(*(pipe.execute("INCRBY", key, i) for i in range(1, 101)))
        # Every reply is the counter after its own increment: distinct, and the last is the sum.
        assert len(set(replies)) == 100 and max(replies) == sum(range(1, 101))
        assert await pipe.execute_many(("GET", key), ("DEL", key), ("GET", key)) == [
            str(sum(range(1, 101))),
            1,
            None,
        ]

    _run(redis_url, body)


def test_an_error_reply_fails_only_its_own_call(redis_url: str, key_prefix: str) -> None:
    key = f"{key_prefix}pipe:s"

    async def body(pipe: Pipe, _: aioredis.Redis) -> None:
        await pipe.execute("SET", key, "text")
        got = await asyncio.gather(
            pipe.execute("GET", key),
            pipe.execute("INCR", key),  # not an integer: an error reply
            pipe.execute("STRLEN", key),
            return_exceptions=True,
        )
        assert got[0] == "text" and got[2] == 4
        assert isinstance(got[1], rexc.ResponseError)
        with pytest.raises(rexc.ResponseError):
            await pipe.execute_many(("GET", key), ("INCR", key), ("DEL", key))
        # Every command of the batch ran (each is its own step): the key is gone.
        assert await pipe.execute("EXISTS", key) == 0

    _run(redis_url, body)


def test_a_dropped_connection_fails_the_calls_on_it_and_the_next_call_reconnects(
    redis_url: str, key_prefix: str
) -> None:
    name = f"{key_prefix}pipe-victim"

    async def body(pipe: Pipe, _: aioredis.Redis) -> None:
        await pipe.execute("CLIENT", "SETNAME", name)
        blocked = asyncio.ensure_future(pipe.execute("BLPOP", f"{key_prefix}pipe:never", 30))
        await asyncio.sleep(0.2)
        with redis.Redis.from_url(redis_url) as admin:
            victims = [c for c in admin.client_list() if c.get("name") == name]
            assert len(victims) == 1
            admin.client_kill(victims[0]["addr"])
        with pytest.raises(rexc.ConnectionError):
            await asyncio.wait_for(blocked, 10)
        assert await pipe.execute("PING") == "PONG"

    _run(redis_url, body)


def test_a_flushed_script_is_loaded_again(redis_url: str, key_prefix: str) -> None:
    async def body(pipe: Pipe, client: aioredis.Redis) -> None:
        scripts = Scripts(Commands(client, parse_url(redis_url)), Keys(key_prefix))
        args = ["w", "", "1"]
        keys = [f"{key_prefix}workers", f"{key_prefix}worker:w"]
        try:
            assert int(await scripts.plain("worker_seen", keys, args)) == 0
            await client.script_flush()
            assert int(await scripts.plain("worker_seen", keys, args)) == 0
        finally:
            await scripts.pipe.close()

    _run(redis_url, body)
