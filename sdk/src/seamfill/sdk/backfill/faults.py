"""Whose fault a failed chunk is, and a circuit breaker per dependency.

A chunk's own fault (bad rows, a terminal upstream answer, rows that did not show up) spends one
of its attempts: the worker reports it with Fail, and enough of them dead-letter the chunk. The
environment's fault (QuestDB or the upstream unreachable, a 5xx, a 429) is not the chunk's: the
worker gives the chunk back with Release (no attempt spent) and its breaker for that dependency
opens, so it stops taking work that needs the dependency until a probe succeeds.

Pure: no I/O, time comes in as an argument.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from seamfill.core.errors import (
    FetchError,
    SchemaMismatch,
    SeamfillError,
    StorageUnavailable,
    UpstreamUnavailable,
)

__all__ = ["STORAGE", "Breaker", "BreakerState", "Fault", "classify", "fail_reason", "upstream"]

STORAGE = "storage"
"""The dependency name of QuestDB (the breaker key, the metric label, the log field)."""

# Errors a fetcher may let escape that mean the network hiccuped, not that the chunk is wrong.
_TRANSIENT = (OSError, TimeoutError)


def upstream(source: str) -> str:
    """The dependency name of an upstream source, e.g. ``upstream:ccxt:binance``."""
    return f"upstream:{source}"


class Fault(enum.Enum):
    """Who is to blame for a failed chunk, and so what the worker does with it."""

    CHUNK = "chunk"
    """The chunk's own, worth another attempt (spends one)."""
    CHUNK_TERMINAL = "chunk-terminal"
    """The chunk's own, final: dead-letter it now."""
    STORAGE = "storage"
    """QuestDB is away: release the chunk, open the storage breaker."""
    UPSTREAM = "upstream"
    """The upstream is away or rate-limits: release the chunk, open that source's breaker."""

    @property
    def environment(self) -> bool:
        return self in (Fault.STORAGE, Fault.UPSTREAM)


def classify(error: BaseException) -> Fault:
    """The fault of a chunk that raised ``error`` in :func:`seamfill.sdk.backfill.run_chunk`."""
    if isinstance(error, StorageUnavailable):
        return Fault.STORAGE
    if isinstance(error, UpstreamUnavailable):
        return Fault.UPSTREAM
    if isinstance(error, FetchError):
        # A plugin's retryable answer (429, 5xx, timeout) is the upstream's state, not the chunk's.
        return Fault.UPSTREAM if error.retryable else Fault.CHUNK_TERMINAL
    if isinstance(error, SchemaMismatch):
        return Fault.CHUNK_TERMINAL
    if isinstance(error, SeamfillError):
        return Fault.CHUNK if error.grpc_code == "UNAVAILABLE" else Fault.CHUNK_TERMINAL
    return Fault.UPSTREAM if isinstance(error, _TRANSIENT) else Fault.CHUNK_TERMINAL


def fail_reason(error: BaseException, fault: Fault) -> str:
    """The reason Fail records (and a dead letter keeps): whose fault, then the error."""
    message = getattr(error, "message", None) or str(error) or "no detail"
    kind = "terminal" if fault is Fault.CHUNK_TERMINAL else "retryable"
    return f"chunk fault ({kind}) {type(error).__name__}: {message}"


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass
class Breaker:
    """Opens on an environment failure; after ``open_s`` lets one probe through (half-open);
    the probe's success closes it, its failure opens it again for twice as long (up to
    ``max_s``)."""

    base_s: float = 0.5
    max_s: float = 10.0
    open_s: float = 0.0
    until: float = 0.0
    opened: bool = False

    def state(self, now: float) -> BreakerState:
        if not self.opened:
            return BreakerState.CLOSED
        return BreakerState.OPEN if now < self.until else BreakerState.HALF_OPEN

    def failure(self, now: float) -> bool:
        """Record an environment failure; True when this opened a closed breaker."""
        was_open = self.opened
        self.open_s = min(self.max_s, self.open_s * 2) if was_open else self.base_s
        self.until = now + self.open_s
        self.opened = True
        return not was_open

    def success(self) -> bool:
        """Record a success through the dependency; True when this closed an open breaker."""
        was_open = self.opened
        self.opened, self.open_s, self.until = False, 0.0, 0.0
        return was_open
