"""Loads the Lua scripts in ``lua/`` and runs them; script errors become seamfill errors.

Dataset scripts get the ``_lib.lua`` prelude prepended and the common KEYS/ARGV head (see the
prelude's header); ``take_tokens`` and ``worker_seen`` run alone. Scripts are sent by SHA
(EVALSHA; on NOSCRIPT, once more as EVAL, which also caches it on that node) through the
replica's :class:`~.redis_conn.Commands`, routed by the declared keys' slot on a cluster. The
grant (``acquire``) is durable: it is handed out only once the replicas ``redis_url`` asks for
hold it (fencing across a failover, see the package README).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis import exceptions as rexc

from seamfill.coordinator.keys import Keys
from seamfill.coordinator.redis_conn import Commands, unavailable
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
# Scripts that grant a fencing token: their write must reach a replica before the reply is used.
DURABLE_SCRIPTS = frozenset({"acquire"})
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
    if isinstance(e, rexc.BusyLoadingError):
        return errors.CoordinatorUnavailable("Redis is loading its data: retry with backoff")
    if isinstance(e, rexc.ConnectionError | rexc.TimeoutError | OSError):
        return errors.CoordinatorUnavailable(f"Redis is unreachable ({e}): retry with backoff")
    if isinstance(e, rexc.MovedError | rexc.AskError):
        # A cluster client follows these itself: seen here, redis_url names one cluster node.
        return errors.CoordinatorUnavailable(
            f"Redis answered MOVED/ASK ({e}): the key is on another node of a Redis Cluster; "
            "retry, and point redis_url at the cluster with redis+cluster://HOST:PORT,..."
        )
    if unavailable(e):  # a cluster re-routing or failing over, a master demoted
        return errors.CoordinatorUnavailable(
            f"Redis cannot serve this now ({type(e).__name__}: {e}): a failover or resharding "
            "is under way; retry with backoff"
        )
    return errors.SeamfillError(f"Redis error: {e}")


@dataclass(frozen=True, slots=True)
class _Head:
    """A dataset's common KEYS and its key base (the first ARGV), built once per dataset."""

    keys: tuple[str, ...]
    base: str


class Scripts:
    """The coordinator's scripts registered on one Redis client."""

    def __init__(
        self, commands: Commands, keys: Keys, caps: Mapping[str, int] | None = None
    ) -> None:
        self._keys = keys
        self._caps = dict(caps or {})
        self._heads: dict[str, _Head] = {}
        self.pipe = commands
        self._text = {name: script_text(name) for name in DATASET_SCRIPTS + PLAIN_SCRIPTS}
        self._sha = {
            name: hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()
            for name, text in self._text.items()
        }

    async def dataset(
        self,
        name: str,
        dataset: str,
        keys: Sequence[str] = (),
        args: Sequence[Any] = (),
    ) -> Any:
        """Run dataset script ``name`` with the common KEYS/ARGV head plus ``keys``/``args``.
        The script takes its time from Redis; the dataset's concurrency cap goes in the head."""
        head = self._heads.get(dataset) or self._head(dataset)
        k = self._keys
        return await self.plain(
            name,
            [*head.keys, *keys],
            [head.base, self._caps.get(dataset, 0), k.job_channel, k.wake_channel, dataset, *args],
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
        run = self.pipe.durable if name in DURABLE_SCRIPTS else self._run
        try:
            try:
                return await run(keys[0], "EVALSHA", self._sha[name], len(keys), *keys, *args)
            except rexc.NoScriptError:  # a fresh, flushed or promoted node: send the text
                return await run(keys[0], "EVAL", self._text[name], len(keys), *keys, *args)
        except (rexc.RedisError, OSError) as e:
            raise translate(e) from e

    async def _run(self, _key: str, *args: Any) -> Any:
        return await self.pipe.execute(*args)
