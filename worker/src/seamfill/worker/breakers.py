"""The worker's circuit breakers, one per dependency (``storage``, ``upstream:SOURCE``).

An environment failure of a chunk opens its dependency's breaker; while a breaker is open the
worker takes no work that needs it, and when it half-opens one chunk goes through as a probe. A
worker that serves any source (no ``--sources``) cannot ask the coordinator for "any but this
one", so an open upstream breaker pauses its acquiring altogether until the probe.

Every open and close is a log event (``seamless.breaker.opened`` / ``.closed``) and shows in the
metrics (``seamfill_worker_breaker_open``, ``seamfill_worker_breaker_transitions_total``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from seamfill.core.logs import log_event
from seamfill.sdk.backfill.faults import STORAGE, Breaker, BreakerState, upstream
from seamfill.worker import metrics

__all__ = ["Breakers", "Gate"]

log = logging.getLogger("seamfill.worker")


@dataclass(frozen=True)
class Gate:
    """What the next Acquire may ask for: ``sources`` (empty: any) and at most ``limit`` leases;
    ``limit == 0`` means wait ``wait_s`` (or until a chunk ends) and look again."""

    sources: tuple[str, ...]
    limit: int
    wait_s: float = 0.0


class Breakers:
    """The breakers of one worker; time comes in as an argument."""

    def __init__(self, worker_id: str, base_s: float = 0.5, max_s: float = 5.0) -> None:
        self.worker_id = worker_id
        self.base_s, self.max_s = base_s, max_s
        self._by_dep: dict[str, Breaker] = {}

    def _get(self, dependency: str) -> Breaker:
        b = self._by_dep.get(dependency)
        if b is None:
            b = self._by_dep[dependency] = Breaker(self.base_s, self.max_s)
        return b

    def state(self, dependency: str, now: float) -> BreakerState:
        b = self._by_dep.get(dependency)
        return BreakerState.CLOSED if b is None else b.state(now)

    def failure(self, dependency: str, now: float, error: str) -> None:
        b = self._get(dependency)
        if b.failure(now):
            metrics.BREAKER_OPEN.labels(dependency).set(1)
            metrics.BREAKER_TRANSITIONS.labels(dependency, "open").inc()
            log_event(
                log,
                "seamless.breaker.opened",
                logging.WARNING,
                worker=self.worker_id,
                dependency=dependency,
                for_s=b.open_s,
                error=error,
            )

    def success(self, dependency: str) -> None:
        b = self._by_dep.get(dependency)
        if b is not None and b.success():
            metrics.BREAKER_OPEN.labels(dependency).set(0)
            metrics.BREAKER_TRANSITIONS.labels(dependency, "closed").inc()
            log_event(log, "seamless.breaker.closed", worker=self.worker_id, dependency=dependency)

    def gate(
        self, sources: Sequence[str], free: int, held_sources: Iterable[str], now: float
    ) -> Gate:
        """What to ask for with ``free`` slots while chunks of ``held_sources`` are in flight."""
        held = list(held_sources)
        storage = self.state(STORAGE, now)
        if storage is BreakerState.OPEN or (storage is BreakerState.HALF_OPEN and held):
            return Gate((), 0, self._wait(now))
        limit = 1 if storage is BreakerState.HALF_OPEN else free
        if sources:
            allowed = []
            for s in sources:
                st = self.state(upstream(s), now)
                if st is BreakerState.CLOSED:
                    allowed.append(s)
                elif st is BreakerState.HALF_OPEN and s not in held:
                    allowed.append(s)
                    limit = 1
            return Gate(tuple(allowed), limit if allowed else 0, self._wait(now))
        states = [b.state(now) for d, b in self._by_dep.items() if d != STORAGE]
        if BreakerState.OPEN in states or (BreakerState.HALF_OPEN in states and held):
            return Gate((), 0, self._wait(now))
        if BreakerState.HALF_OPEN in states:
            limit = 1
        return Gate((), limit)

    def _wait(self, now: float) -> float:
        ends = [b.until - now for b in self._by_dep.values() if b.opened and b.until > now]
        return max(0.02, min(ends, default=self.base_s))
