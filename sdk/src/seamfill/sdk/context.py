"""The execution context of a read: which world, which domain (backtest, dryrun, live), as of when.

A ``backtest`` never reads the forming edge; pinned to an ``as_of`` it reads only rows ingested
by then and checks them against the fingerprint published for that range and as-of (see
:mod:`seamfill.sdk.read.asof`). ``dryrun`` and ``live`` may read the forming edge from the live
fetcher. The context is part of the cache key, so two contexts never share an entry.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from seamfill.core.errors import ConfigError, InvalidArgument


class ExecutionDomain(enum.Enum):
    """Where the strategy runs."""

    BACKTEST = "backtest"
    """Replays history: settled bars only, reproducible when pinned to an ``as_of``."""
    DRYRUN = "dryrun"
    """Runs on live data without trading: may read the forming edge."""
    LIVE = "live"
    """Trades: may read the forming edge."""


@dataclass(frozen=True, slots=True)
class ComputeContext:
    """``fetch(..., context=ComputeContext(...))`` or ``SeamlessSettings(context=...)``."""

    world_id: str = ""
    """The world (strategy deployment) the read belongs to; recorded, and part of the cache key."""
    execution_domain: ExecutionDomain = ExecutionDomain.LIVE
    """See :class:`ExecutionDomain` (a string such as ``"backtest"`` is accepted)."""
    as_of: int | None = None
    """Microseconds since the epoch; a datetime, pandas Timestamp or ISO string is converted
    at construction. Only a ``backtest`` may be pinned to one."""

    def __post_init__(self) -> None:
        if not isinstance(self.world_id, str):
            raise ConfigError(f"context.world_id = {self.world_id!r} is not a string")
        if not isinstance(self.execution_domain, ExecutionDomain):
            object.__setattr__(self, "execution_domain", _domain(self.execution_domain))
        if self.as_of is not None and not (
            isinstance(self.as_of, int) and not isinstance(self.as_of, bool)
        ):
            from seamfill.core.timeconv import to_us

            try:
                object.__setattr__(self, "as_of", to_us(self.as_of, "context.as_of"))
            except InvalidArgument as e:
                raise ConfigError(e.message) from None
        if self.as_of is not None and self.execution_domain is not ExecutionDomain.BACKTEST:
            raise ConfigError(
                f"context.as_of is set for execution_domain {self.execution_domain.value!r}: "
                "only a backtest is pinned to an as-of; drop as_of or use backtest"
            )

    @property
    def may_read_edge(self) -> bool:
        """Whether the forming edge may be served (never in a backtest)."""
        return self.execution_domain is not ExecutionDomain.BACKTEST

    @property
    def key(self) -> tuple[str, str, int | None]:
        """What the cache keys on besides series and range."""
        return (self.world_id, self.execution_domain.value, self.as_of)

    def to_dict(self) -> dict[str, Any]:
        return {
            "world_id": self.world_id,
            "execution_domain": self.execution_domain.value,
            "as_of_us": self.as_of,
        }

    @classmethod
    def from_value(cls, data: Any, where: str = "context") -> ComputeContext | None:
        """From ``None``, a context, or a mapping of ``world_id``, ``execution_domain``,
        ``as_of``."""
        if data is None or isinstance(data, ComputeContext):
            return data
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"{where} must be a mapping with world_id, execution_domain and as_of, "
                f"not {type(data).__name__}"
            )
        allowed = {"world_id", "execution_domain", "as_of"}
        for key in data:
            if key not in allowed:
                raise ConfigError(
                    f"{where}.{key} is not a setting: use one of {', '.join(sorted(allowed))}"
                )
        return cls(**dict(data))


def _domain(value: Any) -> ExecutionDomain:
    try:
        return ExecutionDomain(str(getattr(value, "value", value)).strip().lower())
    except ValueError:
        choices = ", ".join(d.value for d in ExecutionDomain)
        raise ConfigError(f"context.execution_domain = {value!r} is not one of {choices}") from None
