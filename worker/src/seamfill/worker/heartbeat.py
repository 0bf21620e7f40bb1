"""Heartbeats: extend every held lease at a third of the TTL, carrying progress.

The answer may tell a lease to stop (its jobs were cancelled or paused) or say it is lost (stale
token, expired): that chunk's task is cancelled, and a lost lease is never completed. While the
coordinator cannot be reached the worker keeps working, but a lease whose last known deadline
has passed is treated as lost — another worker may hold it by now.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from seamfill.core.errors import SeamfillError
from seamfill.core.logs import log_event
from seamfill.worker.leases import Directive, Progress

if TYPE_CHECKING:
    from seamfill.worker.loop import Held, Worker

__all__ = ["beat_once", "heartbeat_loop"]

log = logging.getLogger("seamfill.worker")
# A chunk that is completing has its rows visible already; stopping it would only waste them.
_UNSTOPPABLE = ("done", "completing")


async def heartbeat_loop(worker: Worker) -> None:
    """Beat every third of the TTL until cancelled; the TTL may change with any answer."""
    last = time.monotonic()
    while True:
        due = last + worker.ttl_ms / 3000 - time.monotonic()
        if due > 0:
            # Wake up often enough to notice a shorter TTL from the coordinator.
            await asyncio.sleep(min(due, 0.2))
            continue
        last = time.monotonic()
        try:
            await beat_once(worker)
        except Exception as e:  # one bad answer must not end the heartbeats of every lease
            log_event(
                log,
                "seamless.coordinator.unavailable",
                logging.ERROR,
                worker=worker.config.worker_id,
                error=f"{type(e).__name__}: {e}",
            )


async def beat_once(worker: Worker) -> None:
    """One heartbeat for every held lease, and act on the answer."""
    held = list(worker.held.values())
    if not held:
        return
    progress = [
        Progress(h.lease.lease_id, h.lease.token, h.progress.until_us, h.progress.rows)
        for h in held
    ]
    try:
        answer = await worker.leases.heartbeat(worker.config.worker_id, progress)
    except SeamfillError as e:
        log_event(
            log,
            "seamless.coordinator.unavailable",
            logging.WARNING,
            worker=worker.config.worker_id,
            error=f"{type(e).__name__}: {e.message}",
        )
        now_us = int(time.time() * 1e6)
        for h in held:
            if now_us > h.deadline_us:
                _stop(h, Directive.LOST, "lease expired while the coordinator was away")
        return
    if answer.ttl_ms > 0:
        worker.ttl_ms = answer.ttl_ms
    for status in answer.statuses:
        mine = worker.held.get(status.lease_id)
        if mine is None:
            continue
        if status.directive is Directive.CONTINUE:
            if status.deadline_us:
                mine.deadline_us = status.deadline_us
        else:
            _stop(mine, status.directive, status.reason)
    if answer.drain and not worker.stopping:
        log_event(
            log,
            "seamless.worker.stopped",
            worker=worker.config.worker_id,
            reason="the coordinator asked this worker to drain",
        )
        worker.stop()


def _stop(h: Held, directive: Directive, reason: str) -> None:
    if h.progress.stage in _UNSTOPPABLE or h.task is None or h.task.done():
        return
    h.stop, h.stop_reason = directive, reason
    h.task.cancel()
