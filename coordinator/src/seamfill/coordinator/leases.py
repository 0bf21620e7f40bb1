"""PURE: the chunk state machine the Lua scripts implement, as a table, and the lease rules.

The scripts in ``lua/`` are the implementation; this module is their specification in a form
the reference model (:mod:`.model`) moves every chunk through :func:`step`, so the table drives
the model, and the model-based test holds the scripts to the model after every call. No I/O, no
clock: time comes in as an argument.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class State(enum.Enum):
    """Where a chunk is. ABSENT: no chunk record (never planned, done, or dropped)."""

    ABSENT = "absent"
    QUEUED = "queued"
    PARKED = "parked"
    LEASED = "leased"
    BACKOFF = "backoff"
    DEAD = "dead"


A, Q, P, L, B, D = (
    State.ABSENT,
    State.QUEUED,
    State.PARKED,
    State.LEASED,
    State.BACKOFF,
    State.DEAD,
)


class Event(enum.Enum):
    PLAN = "plan"  # EnsureRange: a new chunk, or a dead/parked one wanted again
    SHARE = "share"  # EnsureRange: another job waits on a chunk already in flight
    GRANT = "grant"  # Acquire: a new fencing token, a deadline
    PARK = "park"  # Acquire met a chunk whose every job is paused
    DROP = "drop"  # nobody wants the chunk any more (cancelled)
    HEARTBEAT = "heartbeat"
    COMPLETE = "complete"  # covered; or the rest of a wider request queued again
    RELEASE = "release"  # back at once, no penalty
    FAIL_RETRY = "fail_retry"
    FAIL_DEAD = "fail_dead"  # terminal, or out of attempts
    EXPIRE = "expire"  # deadline passed: back to the queue, or dead after max attempts
    RETRY_DUE = "retry_due"
    RESUME = "resume"
    REQUEUE_DEAD = "requeue_dead"


# Where a chunk no longer leased goes: the queue, parked (its jobs paused) or away (cancelled).
_REQUEUE = {Q, P, A}

TRANSITIONS: dict[Event, frozenset[tuple[State, State]]] = {
    Event.PLAN: frozenset({(A, Q), (D, Q), (P, Q)}),
    Event.SHARE: frozenset({(Q, Q), (L, L), (B, B)}),
    Event.GRANT: frozenset({(Q, L)}),
    Event.PARK: frozenset({(Q, P)}),
    Event.DROP: frozenset({(Q, A), (P, A), (B, A), (D, A)}),
    Event.HEARTBEAT: frozenset({(L, L)}),
    Event.COMPLETE: frozenset({(L, s) for s in _REQUEUE}),
    Event.RELEASE: frozenset({(L, s) for s in _REQUEUE}),
    Event.FAIL_RETRY: frozenset({(L, B)}),
    Event.FAIL_DEAD: frozenset({(L, D)}),
    Event.EXPIRE: frozenset({(L, s) for s in _REQUEUE} | {(L, D)}),
    Event.RETRY_DUE: frozenset({(B, s) for s in _REQUEUE}),
    Event.RESUME: frozenset({(P, Q)}),
    Event.REQUEUE_DEAD: frozenset({(D, s) for s in _REQUEUE}),
}


class InvalidTransition(Exception):
    """A chunk changed state in a way no event allows."""


def step(state: State, event: Event, to: State) -> State:
    """``to``, when ``event`` may move a chunk from ``state`` there; else InvalidTransition."""
    if (state, to) not in TRANSITIONS[event]:
        raise InvalidTransition(
            f"{event.value} cannot move a chunk from {state.value} to {to.value}"
        )
    return to


def after(state: State, event: Event) -> frozenset[State]:
    """The states ``event`` may move a chunk in ``state`` to (empty: not allowed)."""
    return frozenset(to for frm, to in TRANSITIONS[event] if frm is state)


def reachable(state: State, events: Iterable[Event], max_steps: int = 3) -> frozenset[State]:
    """States reachable from ``state`` by up to ``max_steps`` of ``events`` (itself included)."""
    evs = tuple(events)
    seen = {state}
    frontier = {state}
    for _ in range(max_steps):
        frontier = {to for s in frontier for e in evs for to in after(s, e)} - seen
        if not frontier:
            break
        seen |= frontier
    return frozenset(seen)


def lease_valid(
    held_token: int, current_token: int, state: State, deadline_us: int, now_us: int
) -> bool:
    """Whether a holder of ``held_token`` may still heartbeat, complete, fail or release: the
    chunk is leased, under that very token, and its deadline has not passed."""
    return state is State.LEASED and held_token == current_token and now_us <= deadline_us


def backoff_us(attempts: int, base_us: int, cap_us: int, jitter: float) -> int:
    """Delay before retry ``attempts`` (1-based): exponential, capped, then jittered into
    ``[delay/2, delay)`` — the rule ``fail.lua`` applies."""
    delay = min(cap_us, base_us * 2 ** max(0, attempts - 1))
    return int(delay / 2 + delay / 2 * jitter)
