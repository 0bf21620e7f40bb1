"""Loads the Lua scripts in ``lua/`` and runs them; script errors become seamfill errors.

Dataset scripts get the ``_lib.lua`` prelude prepended and the common KEYS/ARGV head (see the
prelude's header); ``take_tokens`` and ``worker_seen`` run alone. Scripts are sent by SHA
(EVALSHA, with a load and one retry on NOSCRIPT) over the replica's shared :class:`Pipe`, so a
call costs a share of one round trip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rexc

from seamfill.coordinator.keys import Keys
from seamfill.coordinator.pipe import Pipe
from seamfill.core import errors

DATASET_SCRIPTS = (
    "ensure",
    "acquire",
    "heartbeat",
    "complete",
    "fail",
    "release",
    "reap",
    "job_control",
    "requeue_dead",
    "reconcile",
)
PLAIN_SCRIPTS = ("take_tokens", "worker_seen")
_LUA = Path(__file__).parent / "lua"


def _source(name: str) -> str:
    return (_LUA / f"{name}.lua").read_text("utf-8")


def script_text(name: str) -> str:
    """The full text Redis runs for script ``name``."""
    if name in DATASET_SCRIPTS:
        return _source("_lib") + "\n" + _source(name)
    return _source(name)


def translate(e: Exception) -> errors.SeamfillError:
    """A Redis error as the seamfill error it stands for."""
    if isinstance(e, rexc.ResponseError) and str(e).startswith("SEAMFILL "):
        _, name, message = str(e).split(" ", 2)
        cls = errors.by_name(name) or errors.FailedPrecondition
        return cls(message)
    if isinstance(e, rexc.ConnectionError | rexc.TimeoutError | OSError):
        return errors.CoordinatorUnavailable(f"Redis is unreachable ({e}): retry with backoff")
    if isinstance(e, rexc.BusyLoadingError):
        return errors.CoordinatorUnavailable("Redis is loading its data: retry with backoff")
    return errors.SeamfillError(f"Redis error: {e}")


@dataclass(frozen=True, slots=True)
class _Head:
    """A dataset's common KEYS and its key base (the first ARGV), built once per dataset."""

    keys: tuple[str, ...]
    base: str


class Scripts:
    """The coordinator's scripts registered on one Redis client."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._keys = keys
        self._heads: dict[str, _Head] = {}
        self.pipe = Pipe(client.connection_pool)
        self._text = {name: script_text(name) for name in DATASET_SCRIPTS + PLAIN_SCRIPTS}
        self._sha = {
            name: hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
            for name, text in self._text.items()
        }

    async def dataset(
        self,
        name: str,
        dataset: str,
        now_us: int,
        keys: Sequence[str] = (),
        args: Sequence[Any] = (),
    ) -> Any:
        """Run dataset script ``name`` with the common KEYS/ARGV head plus ``keys``/``args``."""
        head = self._heads.get(dataset) or self._head(dataset)
        k = self._keys
        return await self.plain(
            name,
            [*head.keys, *keys],
            [head.base, now_us, k.job_channel, k.wake_channel, dataset, *args],
        )

    def _head(self, dataset: str) -> _Head:
        k = self._keys
        head = _Head(
            (
                k.ready(dataset),
                k.leases(dataset),
                k.delayed(dataset),
                k.parked(dataset),
                k.dead(dataset),
                k.token(dataset),
                k.stats(dataset),
            ),
            k.base(dataset),
        )
        if len(self._heads) < 10_000:  # datasets come from the config; bounded all the same
            self._heads[dataset] = head
        return head

    async def plain(self, name: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        try:
            try:
                return await self.pipe.execute("EVALSHA", self._sha[name], len(keys), *keys, *args)
            except rexc.NoScriptError:  # a fresh or flushed Redis: load it, then once more
                await self.pipe.execute("SCRIPT", "LOAD", self._text[name])
                return await self.pipe.execute("EVALSHA", self._sha[name], len(keys), *keys, *args)
        except (rexc.RedisError, OSError) as e:
            raise translate(e) from e
