"""The pure chunk state machine and lease rules (the specification the Lua scripts follow)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from seamfill.coordinator.leases import (
    TRANSITIONS,
    Event,
    State,
    after,
    backoff_us,
    lease_valid,
    reachable,
)


def test_only_planning_creates_a_chunk_and_only_a_grant_leases_one() -> None:
    for event, edges in TRANSITIONS.items():
        for frm, to in edges:
            if frm is State.ABSENT:
                assert event is Event.PLAN
            if to is State.LEASED and frm is not State.LEASED:
                assert event is Event.GRANT


def test_a_lease_ends_only_through_its_holder_or_its_deadline() -> None:
    leaving = {
        e
        for e, edges in TRANSITIONS.items()
        for frm, to in edges
        if frm is State.LEASED and to is not State.LEASED
    }
    assert leaving == {
        Event.COMPLETE,
        Event.RELEASE,
        Event.FAIL_RETRY,
        Event.FAIL_DEAD,
        Event.EXPIRE,
    }


def test_what_a_worker_call_can_reach() -> None:
    assert State.LEASED not in reachable(State.ABSENT, [Event.GRANT, Event.EXPIRE])
    assert reachable(State.BACKOFF, [Event.RETRY_DUE, Event.GRANT]) >= {State.LEASED}
    assert after(State.DEAD, Event.GRANT) == frozenset()


@given(
    st.integers(1, 10**6),
    st.integers(1, 10**6),
    st.sampled_from(list(State)),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
)
def test_only_the_current_token_before_its_deadline_is_valid(
    held: int, current: int, state: State, deadline: int, now: int
) -> None:
    ok = lease_valid(held, current, state, deadline, now)
    assert ok == (held == current and state is State.LEASED and now <= deadline)


@given(
    st.integers(1, 40),
    st.integers(1, 10**7),
    st.integers(1, 10**9),
    st.floats(0, 1, exclude_max=True),
)
def test_backoff_grows_is_capped_and_jittered_into_the_upper_half(
    attempts: int, base: int, cap: int, jitter: float
) -> None:
    d = backoff_us(attempts, base, cap, jitter)
    full = min(cap, base * 2 ** (attempts - 1))
    assert full // 2 <= d <= full
    assert backoff_us(attempts + 1, base, cap, jitter) >= d
