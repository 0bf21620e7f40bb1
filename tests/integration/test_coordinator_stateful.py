"""A stateful property test: random acquire / heartbeat / complete / fail / release / expire /
pause / cancel against the real Lua scripts in a real Redis, with the invariants checked after
every step. Time is an argument of the store, so expiry is driven by the test, not by sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import uuid
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from seamfill.coordinator.keys import ChunkRef
from seamfill.coordinator.leases import Event, State, reachable
from seamfill.coordinator.leasing import Directive, Leasing, Progress
from seamfill.coordinator.store import Store
from seamfill.core import errors, ranges
from seamfill.core.types import Priority, Series, TimeRange
from tests.coordinator_fixtures import TEST_DATASET, build_config, test_dataset_spec

HOUR = 3_600_000_000
TTL_MS = 1_000
REDIS_URL = os.environ.get("SEAMFILL_REDIS_URL", "redis://127.0.0.1:6379/0")
pytestmark = pytest.mark.integration


class LeaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.prefix = f"sftest:sm{uuid.uuid4().hex[:10]}:"
        cfg = build_config(
            REDIS_URL,
            self.prefix,
            {TEST_DATASET: test_dataset_spec()},
            lease_ttl_ms=TTL_MS,
            max_attempts=3,
            backoff_base_ms=1,
            backoff_max_ms=10,
        )
        self.now = 10_000 * HOUR
        self.loop = asyncio.new_event_loop()
        self.store = Store(cfg, clock=lambda: self.now)
        self.leasing = Leasing(self.store)
        self.r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        self.held: dict[str, int] = {}  # lease id -> token this "fleet" believes it holds
        self.stale: list[tuple[str, int]] = []
        self.last_token: dict[str, int] = {}
        self.completed: list[tuple[str, TimeRange]] = []
        self.jobs: list[str] = []
        self.events: set[Event] = set()
        self.states: dict[str, State] | None = None

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        keys = list(self.r.scan_iter(match=self.prefix + "*", count=1000))
        if keys:
            self.r.delete(*keys)
        self.r.close()
        self.run(self.store.close())
        self.loop.close()

    def snapshot(self) -> dict[str, Any]:
        return {k: self.r.dump(k) for k in sorted(self.r.scan_iter(match=self.prefix + "*"))}

    # -- rules -------------------------------------------------------------------------------

    @rule(
        sym=st.sampled_from(["A", "B"]),
        first=st.integers(0, 5),
        n=st.integers(1, 4),
        prio=st.sampled_from(list(Priority)),
    )
    def ensure(self, sym: str, first: int, n: int, prio: Priority) -> None:
        self.events = {Event.PLAN, Event.SHARE}
        job = self.run(
            self.store.ensure(
                Series(TEST_DATASET, sym), TimeRange(first * HOUR, (first + n) * HOUR), prio
            )
        )
        if job is not None:
            self.jobs.append(job.job_id)

    @rule(n=st.integers(1, 3))
    def acquire(self, n: int) -> None:
        self.events = {Event.EXPIRE, Event.RETRY_DUE, Event.GRANT, Event.PARK, Event.DROP}
        datasets = self.leasing.datasets_for([])
        got = self.run(self.leasing.acquire("w", datasets, n))
        for lease in got.leases:
            assert lease.token > self.last_token.get(lease.lease_id, 0)
            assert lease.lease_id not in self.held, "granted while another lease is valid"
            self.last_token[lease.lease_id] = lease.token
            self.held[lease.lease_id] = lease.token

    def _pick(self, data: st.DataObject) -> tuple[str, int]:
        lid = data.draw(st.sampled_from(sorted(self.held)))
        return lid, self.held[lid]

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def heartbeat(self, data: st.DataObject) -> None:
        self.events = {Event.HEARTBEAT}
        lid, tok = self._pick(data)
        (status,) = self.run(self.leasing.heartbeat([Progress(lid, tok, 0, 1)]))
        assert status.directive is not Directive.LOST

    @precondition(lambda self: self.held)
    @rule(data=st.data(), rows=st.integers(0, 100))
    def complete(self, data: st.DataObject, rows: int) -> None:
        self.events = {Event.COMPLETE}
        lid, tok = self._pick(data)
        sym, rng = self.run(self._chunk_range(lid))
        self.run(self.leasing.complete(lid, tok, rows))
        self.completed.append((sym, rng))
        self._drop(lid, tok)

    async def _chunk_range(self, lid: str) -> tuple[str, TimeRange]:
        ref = ChunkRef.parse(lid)
        s, e = await self.store.redis.hmget(self.store.keys.chunk(ref.dataset, ref.local), "s", "e")
        return ref.symbol, TimeRange(int(s), int(e))

    @precondition(lambda self: self.held)
    @rule(data=st.data(), retryable=st.booleans())
    def fail(self, data: st.DataObject, retryable: bool) -> None:
        self.events = {Event.FAIL_RETRY, Event.FAIL_DEAD}
        lid, tok = self._pick(data)
        self.run(self.leasing.fail(lid, tok, "boom", retryable))
        self._drop(lid, tok)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        self.events = {Event.RELEASE}
        lid, tok = self._pick(data)
        self.run(self.leasing.release(lid, tok))
        self._drop(lid, tok)

    def _drop(self, lid: str, tok: int) -> None:
        del self.held[lid]
        self.stale.append((lid, tok))

    @precondition(lambda self: self.stale)
    @rule(data=st.data(), op=st.sampled_from(["complete", "fail", "release", "heartbeat"]))
    def stale_token_changes_nothing(self, data: st.DataObject, op: str) -> None:
        self.events = set()
        lid, tok = data.draw(st.sampled_from(self.stale))
        before = self.snapshot()
        if op == "heartbeat":
            (status,) = self.run(self.leasing.heartbeat([Progress(lid, tok, 0, 0)]))
            assert status.directive is Directive.LOST
        else:
            call = {
                "complete": lambda: self.leasing.complete(lid, tok, 1),
                "fail": lambda: self.leasing.fail(lid, tok, "late", True),
                "release": lambda: self.leasing.release(lid, tok),
            }[op]
            with pytest.raises(errors.LeaseLost):
                self.run(call())
        assert self.snapshot() == before

    @rule(ms=st.sampled_from([10, 500, 1_200, 5_000]))
    def advance_time_and_reap(self, ms: int) -> None:
        self.events = {Event.EXPIRE, Event.RETRY_DUE}
        self.now += ms * 1_000
        self.run(self.leasing.reap(TEST_DATASET))
        for lid, tok in list(self.held.items()):
            key = self.store.keys.chunk(TEST_DATASET, lid.partition("/")[2])
            if self.r.hmget(key, "state", "token") != ["leased", str(tok)]:
                self._drop(lid, tok)

    @precondition(lambda self: self.jobs)
    @rule(data=st.data(), action=st.sampled_from(["pause", "resume", "cancel"]))
    def control(self, data: st.DataObject, action: str) -> None:
        self.events = {Event.RESUME, Event.DROP}
        job = data.draw(st.sampled_from(self.jobs))
        with contextlib.suppress(errors.JobNotRunning):
            self.run(self.store.control_job(job, action))

    # -- invariants --------------------------------------------------------------------------

    def chunk_states(self) -> dict[str, State]:
        prefix = self.store.keys.chunk(TEST_DATASET, "")
        return {
            key[len(prefix) :]: State(self.r.hget(key, "state"))
            for key in self.r.scan_iter(match=prefix + "*")
        }

    @invariant()
    def every_change_is_an_edge_of_the_state_machine(self) -> None:
        now = self.chunk_states()
        if self.states is not None:
            for lid in set(now) | set(self.states):
                frm, to = self.states.get(lid, State.ABSENT), now.get(lid, State.ABSENT)
                assert to in reachable(frm, self.events), (lid, frm, to, self.events)
        self.states = now

    @invariant()
    def indexes_match_chunk_states(self) -> None:
        k = self.store.keys
        d = TEST_DATASET
        ready = set(self.r.zrange(k.ready(d), 0, -1))
        leases = dict(self.r.zrange(k.leases(d), 0, -1, withscores=True))
        delayed = set(self.r.zrange(k.delayed(d), 0, -1))
        parked = set(self.r.smembers(k.parked(d)))
        dead = set(self.r.zrange(k.dead(d), 0, -1))
        sets = [ready, set(leases), delayed, parked, dead]
        for i, a in enumerate(sets):
            for b in sets[i + 1 :]:
                assert not a & b, "a chunk is in two places"
        expect = {
            "queued": ready,
            "leased": set(leases),
            "backoff": delayed,
            "parked": parked,
            "dead": dead,
        }
        prefix = k.chunk(d, "")
        for key in self.r.scan_iter(match=prefix + "*"):
            lid = key[len(prefix) :]
            h = self.r.hgetall(key)
            assert lid in expect[h["state"]], (lid, h["state"])
            if h["state"] == "leased":
                assert int(leases[lid]) == int(h["deadline"])
        for members in sets:
            for lid in members:
                assert self.r.exists(k.chunk(d, lid))
        # the fleet's view: what it holds is exactly what is leased
        assert {lid.partition("/")[2] for lid in self.held} == set(leases)

    @invariant()
    def coverage_is_coalesced_and_exactly_what_was_completed(self) -> None:
        for sym in ("A", "B"):
            key = self.store.keys.coverage(TEST_DATASET, sym)
            got = []
            for m, score in self.r.zrange(key, 0, -1, withscores=True):
                a, b = (int(x) for x in m.split(":"))
                assert int(score) == b and a < b
                got.append(TimeRange(a, b))
            for x, y in itertools.pairwise(got):
                assert x.end_us < y.start_us
            assert got == ranges.merge(r for s, r in self.completed if s == sym)

    @invariant()
    def jobs_account_for_every_chunk(self) -> None:
        for job_id in self.jobs:
            job = self.run(self.store.job(job_id))
            p = job.progress
            pending = self.r.scard(
                self.store.keys.job_pending(TEST_DATASET, job_id.rpartition(":")[2])
            )
            if job.state.value != "cancelled":
                assert p.chunks_done + p.chunks_failed + pending == p.chunks_total
            if job.state.value == "done":
                assert pending == 0 and p.chunks_failed == 0


TestLeaseMachine = LeaseMachine.TestCase
TestLeaseMachine.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
