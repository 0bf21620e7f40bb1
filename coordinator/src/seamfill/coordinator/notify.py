"""Wake-ups across replicas: one Redis pub/sub connection per replica, fanned out in-process.

Scripts publish ``D`` on the wake channel when dataset D has work ready, and ``D:J`` on the job
channel when job J progressed. Waiting Acquire calls (and EnsureRange/WatchJob waits) sleep on an
asyncio event until a message for them arrives or their own deadline passes: no polling, and an
idle worker costs Redis nothing while it waits.

The hub also remembers which datasets were found empty since the subscription has been up, so an
Acquire on a replica that knows nothing changed does not ask Redis again. The memory is dropped
whenever the subscription drops (a message may have been missed) — it is an optimisation of this
replica, never state others depend on.

On a Redis Cluster the channels are classic (not sharded) pub/sub: a PUBLISH on any node, also one
made by a script, reaches subscribers on every node over the cluster bus, so the hub subscribes on
one primary and moves to the next when that one fails. (Sharded pub/sub would need one channel per
dataset and one subscription per shard; with three channels and messages of a few bytes the
broadcast costs the bus little, see ``make bench``.) With Sentinel the subscription follows the
current master like every other connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rexc
from redis.asyncio.cluster import RedisCluster

from seamfill.coordinator.keys import Keys

log = logging.getLogger("seamfill.coordinator.notify")


class Hub:
    """Per-replica fan-out of the wake and job channels."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._work: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._jobs: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._empty: dict[str, float] = {}  # dataset -> loop time the memory lapses
        self._epochs: dict[str, int] = defaultdict(int)
        self._generation = 0
        self.draining: set[str] = set()
        self.closing = False
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="seamfill-notify")

    def close_waiters(self) -> None:
        """The replica is stopping: every waiting call returns now (and no new one waits)."""
        self.closing = True
        for table in (self._work, self._jobs):
            for waiters in table.values():
                for ev in waiters:
                    ev.set()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(5):
                    await self._task
            self._task = None

    def known_empty(self, dataset: str) -> bool:
        until = self._empty.get(dataset)
        if until is None or not self.connected.is_set():
            return False
        if asyncio.get_running_loop().time() >= until:
            del self._empty[dataset]  # a retry came due: look again
            return False
        return True

    @property
    def generation(self) -> int:
        """Grows whenever the subscription was lost (anything remembered may be stale)."""
        return self._generation

    def epoch(self, dataset: str) -> tuple[int, int]:
        """Changes whenever ``dataset`` is woken (or the channel reconnects)."""
        return self._generation, self._epochs[dataset]

    def mark_empty(self, dataset: str, since: tuple[int, int], for_s: float | None = None) -> None:
        """Remember ``dataset`` had nothing (for ``for_s`` seconds, when a retry comes due
        then), unless it was woken after ``since`` was taken."""
        if self.connected.is_set() and self.epoch(dataset) == since:
            lapse = float("inf") if for_s is None else asyncio.get_running_loop().time() + for_s
            self._empty[dataset] = lapse

    def lapses_in(self, datasets: list[str]) -> float | None:
        """Seconds until the first remembered emptiness of ``datasets`` lapses (None: never)."""
        now = asyncio.get_running_loop().time()
        soonest = min((self._empty.get(d, float("inf")) for d in datasets), default=float("inf"))
        return None if soonest == float("inf") else max(0.0, soonest - now)

    def mark_busy(self, dataset: str) -> None:
        self._empty.pop(dataset, None)

    async def wait_work(self, since: dict[str, tuple[int, int]], timeout: float) -> bool:
        """Sleep until one of the datasets in ``since`` is woken after its epoch there was taken,
        or ``timeout`` seconds pass."""
        if any(self.epoch(ds) != ep for ds, ep in since.items()):
            return True
        return await self._wait(self._work, list(since), timeout)

    async def wait_job(self, job_id: str, timeout: float) -> bool:
        """Sleep until job ``job_id`` progresses or ``timeout`` seconds pass."""
        return await self._wait(self._jobs, [job_id], timeout)

    async def _wait(
        self, table: dict[str, set[asyncio.Event]], names: list[str], timeout: float
    ) -> bool:
        if timeout <= 0 or self.closing:
            return False
        ev = asyncio.Event()
        for n in names:
            table[n].add(ev)
        try:
            async with asyncio.timeout(timeout):
                await ev.wait()
            return True
        except TimeoutError:
            return False
        finally:
            for n in names:
                waiters = table.get(n)
                if waiters is not None:
                    waiters.discard(ev)
                    if not waiters:
                        del table[n]

    def _wake_all(self) -> None:
        self._empty.clear()
        self.draining.clear()
        self._generation += 1
        for table in (self._work, self._jobs):
            for waiters in table.values():
                for ev in waiters:
                    ev.set()

    def _dispatch(self, channel: str, data: str) -> None:
        if channel == self._keys.wake_channel:
            self._empty.pop(data, None)
            self._epochs[data] += 1
            for ev in self._work.get(data, ()):
                ev.set()
        elif channel == self._keys.job_channel:
            for ev in self._jobs.get(data, ()):
                ev.set()
        elif channel == self._keys.drain_channel:
            self.draining.add(data)
        elif channel == self._keys.undrain_channel:
            self.undrained(data)

    def undrained(self, worker_id: str) -> None:
        """Forget a drain that was undone. The replica's worker cache holds it too: a new
        generation forgets every entry (each worker's next call reads its record again;
        undoing a drain is rare)."""
        self.draining.discard(worker_id)
        self._generation += 1

    async def _run(self) -> None:
        delay = 0.1
        attempt = 0
        while True:
            try:
                pubsub = await self._pubsub(attempt)
            except (rexc.RedisError, OSError) as e:
                log.warning("notification channel: no node to subscribe on: %s", e)
                attempt += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            try:
                await pubsub.subscribe(
                    self._keys.wake_channel,
                    self._keys.job_channel,
                    self._keys.drain_channel,
                    self._keys.undrain_channel,
                )
                self.connected.set()
                delay = 0.1
                while True:
                    # Bounded reads: a cluster node's pub/sub read blocked without a timeout
                    # can hold on to a cancellation (the replica would not stop).
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is not None and msg["type"] == "message":
                        self._dispatch(str(msg["channel"]), str(msg["data"]))
            except (rexc.RedisError, OSError) as e:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from e  # a cancellation reported as an error
                attempt += 1
                if self.connected.is_set():
                    log.warning("notification channel lost: %s", e)
            finally:
                self.connected.clear()
                # Something may have been missed: every waiter looks again.
                self._wake_all()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _pubsub(self, attempt: int) -> Any:
        """A pub/sub connection: on a cluster on one primary, the next one after a failure
        (with the slot map read again, as that primary may be gone)."""
        client = self._client
        if not isinstance(client, RedisCluster):
            return client.pubsub(ignore_subscribe_messages=True)
        if attempt:
            await client.nodes_manager.initialize()
        else:
            await client.initialize()
        primaries = sorted(client.get_primaries(), key=lambda n: n.name)
        node = primaries[attempt % len(primaries)]
        return client.pubsub(node=node, ignore_subscribe_messages=True)
