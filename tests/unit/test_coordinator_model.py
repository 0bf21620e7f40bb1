"""The pure reference model of the lease engine: the promises of the issue's findings, held by
the spec itself (the model-based test then holds the scripts to it)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seamfill.coordinator.leases import Event, InvalidTransition, State, step
from seamfill.coordinator.model import Engine, merge, minus

MIN = 60_000_000
HOUR = 60 * MIN


def test_step_follows_the_table_and_refuses_the_rest() -> None:
    assert step(State.QUEUED, Event.GRANT, State.LEASED) is State.LEASED
    with pytest.raises(InvalidTransition, match="grant cannot move a chunk from dead"):
        step(State.DEAD, Event.GRANT, State.LEASED)


def test_widening_a_leased_chunk_twice_keeps_both_wants() -> None:
    m = Engine(HOUR)
    assert m.ensure("j0", "A", 30 * MIN, 40 * MIN)
    m.grant("A@0", 1, "w")
    m.ensure("j1", "A", 10 * MIN, 40 * MIN)
    m.ensure("j2", "A", 30 * MIN, 50 * MIN)
    m.complete("A@0")
    c = m.chunks["A@0"]
    assert c.state is State.QUEUED and c.want == [(10 * MIN, 30 * MIN), (40 * MIN, 50 * MIN)]
    assert m.jobs["j0"].state == "done"
    assert m.jobs["j1"].state == "running" and m.jobs["j2"].state == "running"


def test_a_capped_dataset_has_room_again_once_a_lease_ends() -> None:
    m = Engine(HOUR, cap=1)
    m.ensure("j", "A", 0, 2 * HOUR)
    assert m.room() == 1
    m.grant("A@0", 1, "w")
    assert m.room() == 0 and m.ready() == ["A@3600000000"]
    m.complete("A@0")
    assert m.room() == 1


def test_a_job_is_done_only_when_covered_and_failed_when_a_chunk_died() -> None:
    m = Engine(HOUR, max_attempts=1)
    m.ensure("j", "A", 0, 2 * HOUR)
    m.grant("A@0", 1, "w")
    m.complete("A@0")
    assert m.jobs["j"].state == "running"
    m.grant("A@3600000000", 2, "w")
    m.fail("A@3600000000", retryable=True)
    assert m.chunks["A@3600000000"].state is State.DEAD and m.jobs["j"].state == "failed"


def test_pause_parks_cancel_drops_resume_queues() -> None:
    m = Engine(HOUR)
    m.ensure("j", "A", 0, HOUR)
    assert m.control("j", "pause") and m.chunks["A@0"].state is State.PARKED
    assert m.control("j", "resume") and m.ready() == ["A@0"]
    assert m.control("j", "cancel") and not m.chunks
    assert not m.control("j", "resume")


ranges_ = st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), max_size=6)


@given(ranges_, st.integers(0, 50), st.integers(0, 50))
def test_minus_removes_exactly_the_range(rs: list[tuple[int, int]], s: int, e: int) -> None:
    points = {p for a, b in merge(rs) for p in range(a, b)}
    left = {p for a, b in minus(merge(rs), s, e) for p in range(a, b)}
    assert left == {p for p in points if not s <= p < e}
