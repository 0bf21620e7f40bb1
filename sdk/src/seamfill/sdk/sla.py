"""SLA policy and the pure arithmetic of a read's time budget.

Deadlines are enforced while waiting: the provider asks :meth:`Budget.remaining` for the time it may
still spend in a stage and hands that to ``asyncio.wait_for`` (or a deadline-bounded stream), so a
wait is cut off at the deadline rather than measured after it. Time comes in as an argument
(monotonic seconds); nothing here reads a clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Any

from seamfill.core.errors import ConfigError

STAGES = ("storage", "backfill", "live", "total")


class HoldMode(enum.Enum):
    """What a read does when a coverage or freshness bound (``min_coverage``, ``max_lag_ms``,
    ``max_sync_gap_bars``) is breached."""

    HOLD = "hold"
    """Return no rows: the frame is empty, ``meta.hold`` is true and ``meta.breaches`` names
    the bound (``coverage_breach``, ``freshness_breach``); the strategy should hold."""
    DOWNGRADE = "downgrade"
    """Return the rows, marked downgraded, with the breach named in the reason."""


class OnBreach(enum.Enum):
    """What a read does when a stage's deadline passes."""

    STRATEGY = "strategy"
    """Let the strategy decide: ``AUTO_BACKFILL`` raises, ``SEAMLESS`` downgrades."""
    RAISE = "raise"
    """Raise :class:`~seamfill.core.errors.SeamlessSLAExceeded` naming the stage."""
    DOWNGRADE = "downgrade"
    """Return what is there, marked downgraded, with the gaps and the reason."""


@dataclass(frozen=True, slots=True)
class SLAPolicy:
    """Per-stage deadlines of one read, in milliseconds (``None``: no deadline of its own)."""

    total_deadline_ms: int | None = 60_000
    """Whole read, every stage included."""
    storage_deadline_ms: int | None = 10_000
    """One read of QuestDB (and the coverage question to the coordinator)."""
    backfill_deadline_ms: int | None = 30_000
    """Waiting for gaps to be filled, by the fleet or inline."""
    live_deadline_ms: int | None = 2_000
    """The live fetcher's answer for the forming edge."""
    on_breach: OnBreach = OnBreach.STRATEGY
    """What a passed deadline does; see :class:`OnBreach`."""
    min_coverage: float | None = None
    """Least share (0..1] of the read's settled range that must be covered; below it the read
    breaches with ``coverage_breach``."""
    max_lag_ms: int | None = None
    """How far the newest bar's end may trail now; past it, ``freshness_breach``."""
    max_sync_gap_bars: int | None = None
    """How many bars the newest row may trail the read's settled edge; past it,
    ``freshness_breach``."""
    on_hold_breach: HoldMode = HoldMode.HOLD
    """What a coverage or freshness breach does; see :class:`HoldMode`."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "on_breach":
                if not isinstance(value, OnBreach):
                    object.__setattr__(self, "on_breach", _on_breach(value))
                continue
            if f.name == "on_hold_breach":
                if not isinstance(value, HoldMode):
                    object.__setattr__(self, "on_hold_breach", _hold_mode(value))
                continue
            if value is None:
                continue
            if f.name == "min_coverage":
                _check_ratio(value)
                continue
            if f.name == "max_sync_gap_bars" and isinstance(value, int) and value == 0:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(
                    f"sla.{f.name} = {value!r} is not a positive int of "
                    "milliseconds: give e.g. 5000, or null for no deadline"
                )

    def deadline_s(self, stage: str) -> float | None:
        """The stage's own deadline in seconds."""
        if stage not in STAGES:
            raise ConfigError(f"SLA stage {stage!r} is not one of {', '.join(STAGES)}")
        ms: int | None = getattr(self, f"{stage}_deadline_ms")
        return None if ms is None else ms / 1000.0

    @classmethod
    def from_mapping(cls, data: Any, where: str = "sla") -> SLAPolicy:
        """Build from a YAML mapping (or a preset name); unknown keys fail naming the key."""
        if isinstance(data, str):
            return cls.preset(data)
        if isinstance(data, SLAPolicy):
            return data
        if not isinstance(data, dict):
            raise ConfigError(
                f"{where} must be a mapping of deadlines or a preset name "
                f"(strict, tolerant), not {type(data).__name__}"
            )
        data = dict(data)
        base = cls.preset(data.pop("preset")) if "preset" in data else cls()
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(
                    f"{where}.{key} is not a setting: use one of "
                    f"{', '.join(sorted(known | {'preset'}))}"
                )
        merged = {f.name: getattr(base, f.name) for f in fields(cls)} | data
        return cls(**merged)

    @classmethod
    def preset(cls, name: str) -> SLAPolicy:
        """A shipped preset (``strict`` or ``tolerant``), read only when asked for."""
        from seamfill.sdk.presets import load_preset

        return cls.from_mapping(load_preset(name).get("sla", {}), where=f"preset {name}: sla")


def _check_ratio(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ConfigError(
            f"sla.min_coverage = {value!r} is not a ratio in (0, 1]: give e.g. 0.9, "
            "or null for no bound"
        )


def _hold_mode(value: Any) -> HoldMode:
    try:
        return HoldMode(value)
    except ValueError:
        choices = ", ".join(m.value for m in HoldMode)
        raise ConfigError(f"sla.on_hold_breach = {value!r} is not one of {choices}") from None


def _on_breach(value: Any) -> OnBreach:
    try:
        return OnBreach(value)
    except ValueError:
        choices = ", ".join(b.value for b in OnBreach)
        raise ConfigError(f"sla.on_breach = {value!r} is not one of {choices}") from None


@dataclass(slots=True)
class Budget:
    """The time left of one read; ``started`` is a monotonic time in seconds."""

    policy: SLAPolicy
    started: float

    def total_left(self, now: float) -> float | None:
        total = self.policy.deadline_s("total")
        return None if total is None else max(0.0, self.started + total - now)

    def remaining(self, stage: str, now: float) -> float | None:
        """Seconds the stage may still take: its own deadline capped by the total's remainder."""
        own = self.policy.deadline_s(stage)
        left = self.total_left(now)
        if own is None:
            return left
        return own if left is None else min(own, left)

    def cutoff(self, stage: str, now: float, reserve: float = 0.0) -> tuple[float | None, str]:
        """The time ``stage`` may wait from ``now`` and the deadline that will end it.

        ``reserve`` seconds of the total are kept back for the steps after the wait (e.g. reading
        the covered part when the wait ends). Asked when the wait starts: after it, less of the
        total is left and the total would look binding though the stage's own deadline fired.
        """
        own = self.policy.deadline_s(stage)
        left = self.total_left(now)
        if left is None:
            return own, stage
        room = max(0.0, left - reserve)
        if own is not None and own <= room:
            return own, stage
        return room, "total"

    def binding_stage(self, stage: str, now: float) -> str:
        """Which deadline would cut ``stage`` off now: the stage's own or the total's."""
        own = self.policy.deadline_s(stage)
        left = self.total_left(now)
        if left is not None and (own is None or left < own):
            return "total"
        return stage
