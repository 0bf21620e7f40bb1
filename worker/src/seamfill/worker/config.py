"""Worker configuration: one frozen dataclass, filled from CLI flags or the environment here.

Environment (used where a flag is not given): ``SEAMFILL_COORDINATOR``, ``SEAMFILL_WORKER_ID``,
``SEAMFILL_WORKER_SOURCES`` (comma-separated), ``SEAMFILL_WORKER_CONCURRENCY``,
``SEAMFILL_QUESTDB_URL``, ``SEAMFILL_WORKER_METRICS_PORT``, ``SEAMFILL_WORKER_GRACE_SECONDS``,
``SEAMFILL_WORKER_TOKEN``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from seamfill.core.errors import ConfigError

__all__ = ["WorkerConfig", "default_worker_id"]


def default_worker_id() -> str:
    """``host-pid``: unique per process, and it says where to look."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """Everything a worker process needs; validated on construction."""

    coordinator: str
    """Coordinator address, ``host:port``."""
    worker_id: str = ""
    """Name in leases, logs and ``seamfill admin workers``; empty means ``host-pid``."""
    sources: tuple[str, ...] = ()
    """Upstream sources this worker serves (e.g. ``synthetic``, ``ccxt:binance``); empty: any."""
    concurrency: int = 4
    """Leases in flight at once. Memory is about this many chunks."""
    questdb_url: str = "http://127.0.0.1:9000"
    """QuestDB HTTP endpoint for ILP/HTTP writes and visibility checks."""
    metrics_port: int | None = None
    """Port for Prometheus ``/metrics``; None: not served; 0: any free port."""
    grace_seconds: float = 30.0
    """After SIGTERM, how long chunks that are already writing may take to finish."""
    token: str = ""
    """Bearer token of the worker role (empty when the coordinator is open)."""
    allow_plaintext_token: bool = False
    """Send ``token`` without TLS to a coordinator not on this machine (refused otherwise)."""
    acquire_wait_ms: int = 30_000
    """Long-poll time of one Acquire when nothing is ready (new work wakes it at once, so an
    idle worker costs a couple of calls a minute)."""
    visibility_timeout_s: float = 60.0
    """How long a written chunk may take to become visible before it fails retryable."""
    reconnect_max_s: float = 10.0
    """Ceiling of the exponential backoff while the coordinator is away."""
    breaker_max_s: float = 5.0
    """Longest a dependency's circuit breaker stays open before it lets a probe chunk through
    (it opens for 0.5 s first, then twice as long after each failed probe)."""

    def __post_init__(self) -> None:
        if not self.coordinator or ":" not in self.coordinator:
            raise ConfigError(
                f"coordinator {self.coordinator!r} is not host:port: pass "
                "--coordinator 127.0.0.1:50051 or set SEAMFILL_COORDINATOR"
            )
        if self.concurrency < 1:
            raise ConfigError(f"concurrency {self.concurrency} is below 1: give 1 or more")
        if self.grace_seconds < 0:
            raise ConfigError(f"grace_seconds {self.grace_seconds} is negative: give 0 or more")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"metrics_port {self.metrics_port} is not a port number")
        if self.acquire_wait_ms < 0 or self.visibility_timeout_s <= 0:
            raise ConfigError("acquire_wait_ms must be >= 0 and visibility_timeout_s > 0")
        if not self.worker_id:
            object.__setattr__(self, "worker_id", default_worker_id())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> WorkerConfig:
        """Build from ``SEAMFILL_*`` variables; ``overrides`` that are not None win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "coordinator": env.get("SEAMFILL_COORDINATOR", "127.0.0.1:50051"),
            "worker_id": env.get("SEAMFILL_WORKER_ID", ""),
            "sources": _split(env.get("SEAMFILL_WORKER_SOURCES", "")),
            "questdb_url": env.get("SEAMFILL_QUESTDB_URL", "http://127.0.0.1:9000"),
            "token": env.get("SEAMFILL_WORKER_TOKEN", ""),
        }
        for key, name, kind in (
            ("concurrency", "SEAMFILL_WORKER_CONCURRENCY", int),
            ("metrics_port", "SEAMFILL_WORKER_METRICS_PORT", int),
            ("grace_seconds", "SEAMFILL_WORKER_GRACE_SECONDS", float),
        ):
            if env.get(name):
                try:
                    values[key] = kind(env[name])
                except ValueError:
                    raise ConfigError(f"{name}={env[name]!r} is not a number") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values["sources"], str):
            values["sources"] = _split(values["sources"])
        return cls(**values)


def _split(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())
