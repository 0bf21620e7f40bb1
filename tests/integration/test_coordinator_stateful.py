"""Model-based test: random interleavings of overlapping EnsureRange, Acquire, Heartbeat,
Complete, Fail, Release, expiry, pause/resume/cancel and rate-limit calls, through several
replicas with skewed clocks, against the real Lua scripts on real Redis; after every step the
state in Redis is compared with the pure reference model (:mod:`seamfill.coordinator.model`).

Time: the scripts read Redis's clock; the test moves it forward (past every deadline and retry
time) through the dataset's ``clock_offset_us``, and each replica's own clock is skewed on top
(which must not matter). ``SEAMFILL_MODEL_EXAMPLES`` sets the number of examples (``make
test-model`` runs a longer profile); a failure prints the falsifying steps and its seed blob.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import time
import uuid
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from seamfill.coordinator.leases import State
from seamfill.coordinator.leasing import Leasing, Progress
from seamfill.coordinator.model import Engine
from seamfill.coordinator.store import Store, now_us
from seamfill.core import errors
from seamfill.core.types import Directive, Priority, Series, TimeRange
from tests.coordinator_fixtures import build_config, test_dataset_spec

MIN = 60_000_000
HOUR = 60 * MIN
TTL_MS = 60_000
STEP_US = (TTL_MS + 1_000) * 1_000  # one "advance" passes every deadline and retry time
RATE, BURST = 2.0, 2
SKEWS_US = (0, 2_000_000, -1_500_000)  # the replicas' clocks
DATASETS = {"free.bars_1m": 0, "capped.bars_1m": 2}  # name -> max_concurrency
REDIS_URL = os.environ.get("SEAMFILL_REDIS_URL", "redis://127.0.0.1:6379/0")
EXAMPLES = int(os.environ.get("SEAMFILL_MODEL_EXAMPLES", "20"))
pytestmark = pytest.mark.integration


def _with_worker(fn: Any, *args: Any, worker: str) -> Any:
    """Call a Leasing method with the worker id where it takes one."""
    if "worker_id" in inspect.signature(fn).parameters:
        return fn(*args, worker_id=worker)
    return fn(*args)


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.prefix = f"sftest:model{uuid.uuid4().hex[:10]}:"
        datasets = {
            name: {**test_dataset_spec(f"t_{i}"), "max_concurrency": cap}
            for i, (name, cap) in enumerate(DATASETS.items())
        }
        cfg = build_config(
            REDIS_URL,
            self.prefix,
            datasets,
            lease_ttl_ms=TTL_MS,
            max_attempts=2,
            backoff_base_ms=30_000,
            backoff_max_ms=30_000,
            sources={"synthetic": {"rate_per_second": RATE, "burst": BURST}},
        )
        self.offset = 0
        self.loop = asyncio.new_event_loop()
        self.stores = [
            Store(cfg, clock=lambda skew=skew: now_us() + self.offset + skew) for skew in SKEWS_US
        ]
        self.leasing = [Leasing(s) for s in self.stores]
        self.keys = self.stores[0].keys
        self.r = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        self.sub = self.r.pubsub(ignore_subscribe_messages=True)
        self.sub.subscribe(self.keys.wake_channel)
        self.model = {name: Engine(HOUR, cap, max_attempts=2) for name, cap in DATASETS.items()}
        self.held: dict[str, tuple[str, int, str]] = {}  # lease id -> (dataset, token, worker)
        self.stale: list[tuple[str, int, str]] = []
        self.granted: set[tuple[str, int]] = set()
        self.jobs: list[tuple[str, str]] = []  # (dataset, local id)
        self.tokens_granted = 0
        self.t0 = self._redis_s()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def _redis_s(self) -> float:
        sec, usec = self.r.time()
        return float(sec) + usec / 1e6

    def teardown(self) -> None:
        self.sub.close()
        keys = list(self.r.scan_iter(match=self.prefix + "*", count=1000))
        if keys:
            self.r.delete(*keys)
        self.r.close()
        for s in self.stores:
            self.run(s.close())
        self.loop.close()

    def _drain_wakes(self) -> set[str]:
        got = set()
        while (m := self.sub.get_message(timeout=0.001)) is not None:
            got.add(str(m["data"]))
        return got

    def _expect_wake(self, ds: str) -> None:
        """A slot of a capped dataset was freed with work ready: a wake must be published."""
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            m = self.sub.get_message(timeout=0.05)
            if m is not None and str(m["data"]) == ds:
                return
        raise AssertionError(f"a slot of capped {ds} freed with work ready, and no wake-up")

    # -- rules -------------------------------------------------------------------------------

    @rule(
        ds=st.sampled_from(sorted(DATASETS)),
        sym=st.sampled_from(["A", "B"]),
        first=st.integers(0, 17),
        n=st.integers(1, 12),
        prio=st.sampled_from(list(Priority)),
        replica=st.integers(0, len(SKEWS_US) - 1),
    )
    def ensure(self, ds: str, sym: str, first: int, n: int, prio: Priority, replica: int) -> None:
        s, e = first * 10 * MIN, (first + n) * 10 * MIN
        job = self.run(self.stores[replica].ensure(Series(ds, sym), TimeRange(s, e), prio))
        local = job.job_id.rpartition(":")[2] if job is not None else None
        made = self.model[ds].ensure(local or "-", sym, s, e)
        assert (job is not None) == made, f"real job {job}, model planned {made}"
        if local is not None:
            self.jobs.append((ds, local))

    @rule(
        ds=st.sampled_from(sorted(DATASETS)),
        worker=st.sampled_from(["w1", "w2"]),
        want=st.integers(1, 3),
        replica=st.integers(0, len(SKEWS_US) - 1),
    )
    def acquire(self, ds: str, worker: str, want: int, replica: int) -> None:
        m = self.model[ds]
        dataset = self.stores[0].dataset(ds)
        ready_before, room = m.ready(), m.room()
        got = self.run(self.leasing[replica].acquire(worker, [dataset], want))
        expect = min(want, room, len(ready_before))
        assert len(got.leases) == expect, (
            f"{len(got.leases)} granted; the model has {len(ready_before)} ready, room {room}"
        )
        for lease in got.leases:
            lid = lease.lease_id.partition("/")[2]
            assert lid in ready_before, f"{lid} granted but not ready in the model"
            assert (lease.lease_id, lease.token) not in self.granted, "granted twice"
            self.granted.add((lease.lease_id, lease.token))
            m.grant(lid, lease.token, worker)
            self.held[lease.lease_id] = (ds, lease.token, worker)
        if len(got.leases) < want and m.ready():
            assert ds not in got.short, "ready work reported as empty: long polls would skip it"
        backoff = any(c.state is State.BACKOFF for c in m.chunks.values())
        if backoff:  # a long poll must learn when the first retry comes due
            assert getattr(got, "due_in_s", None) is not None, "a retry waits, none reported"

    def _pick(self, data: st.DataObject) -> tuple[str, str, int, str]:
        lease_id = data.draw(st.sampled_from(sorted(self.held)))
        ds, tok, worker = self.held[lease_id]
        return lease_id, ds, tok, worker

    def _lost(self, lease_id: str) -> None:
        _ds, tok, worker = self.held.pop(lease_id)
        self.stale.append((lease_id, tok, worker))

    def _freed(self, ds: str, wakes_before: bool) -> None:
        if DATASETS[ds] > 0 and self.model[ds].ready() and not wakes_before:
            self._expect_wake(ds)

    @precondition(lambda self: self.held)
    @rule(data=st.data(), by_owner=st.booleans())
    def heartbeat(self, data: st.DataObject, by_owner: bool) -> None:
        lease_id, ds, tok, worker = self._pick(data)
        who = worker if by_owner else ("w2" if worker == "w1" else "w1")
        progress = [Progress(lease_id, tok, 0, 1)]
        leasing = self.leasing[0]
        if "worker_id" in inspect.signature(leasing.heartbeat).parameters:
            (status,) = self.run(leasing.heartbeat(who, progress))
        else:
            (status,) = self.run(leasing.heartbeat(progress))
        ok = self.model[ds].valid(lease_id.partition("/")[2], tok, who)
        assert (status.directive is not Directive.LOST) == ok, (status, who, worker)

    @precondition(lambda self: self.held)
    @rule(
        data=st.data(),
        outcome=st.sampled_from(["complete", "fail_retry", "fail_terminal", "release"]),
        by_owner=st.booleans(),
        rows=st.integers(0, 60),
    )
    def finish(self, data: st.DataObject, outcome: str, by_owner: bool, rows: int) -> None:
        lease_id, ds, tok, worker = self._pick(data)
        lid = lease_id.partition("/")[2]
        who = worker if by_owner else ("w2" if worker == "w1" else "w1")
        lea = self.leasing[data.draw(st.integers(0, len(SKEWS_US) - 1))]
        # A worker reports at most the bars of the span it was granted (more is refused).
        s, e = self.r.hmget(self.keys.chunk(ds, lid), "s", "e")
        if s is not None and e is not None:
            rows = min(rows, -(-(int(e) - int(s)) // MIN))
        self._drain_wakes()
        call = {
            "complete": lambda: _with_worker(lea.complete, lease_id, tok, rows, worker=who),
            "fail_retry": lambda: _with_worker(lea.fail, lease_id, tok, "x", True, worker=who),
            "fail_terminal": lambda: _with_worker(lea.fail, lease_id, tok, "x", False, worker=who),
            "release": lambda: _with_worker(lea.release, lease_id, tok, worker=who),
        }[outcome]
        if not self.model[ds].valid(lid, tok, who):
            with pytest.raises((errors.FailedPrecondition, errors.PermissionDenied)):
                self.run(call())
            return
        self.run(call())
        m = self.model[ds]
        if outcome == "complete":
            m.complete(lid)
        elif outcome == "release":
            m.release(lid)
        else:
            m.fail(lid, outcome == "fail_retry")
        self._lost(lease_id)
        self._freed(ds, False)

    @precondition(lambda self: self.stale)
    @rule(data=st.data())
    def stale_token_is_refused(self, data: st.DataObject) -> None:
        lease_id, tok, worker = data.draw(st.sampled_from(self.stale))
        ds = lease_id.partition("/")[0]
        if self.model[ds].valid(lease_id.partition("/")[2], tok, worker):
            return  # cannot be: a token is never granted twice; checked in acquire
        with pytest.raises((errors.FailedPrecondition, errors.PermissionDenied)):
            self.run(_with_worker(self.leasing[0].complete, lease_id, tok, 0, worker=worker))

    @rule(replica=st.integers(0, len(SKEWS_US) - 1))
    def time_passes(self, replica: int) -> None:
        """Every deadline and retry time passes; a reaper runs."""
        self.offset += STEP_US
        for ds in DATASETS:
            self.r.hset(self.keys.stats(ds), "clock_offset_us", self.offset)
            self.run(self.leasing[replica].reap(ds))
            self.model[ds].advance()
        for lease_id in list(self.held):
            self._lost(lease_id)

    @precondition(lambda self: self.jobs)
    @rule(data=st.data(), action=st.sampled_from(["pause", "resume", "cancel"]))
    def control(self, data: st.DataObject, action: str) -> None:
        ds, local = data.draw(st.sampled_from(self.jobs))
        ok = self.model[ds].control(local, action)
        try:
            self.run(self.stores[0].control_job(f"{ds}:{local}", action))
            assert ok, f"{action} accepted by the scripts, refused by the model"
        except errors.JobNotRunning:
            assert not ok, f"{action} refused by the scripts, accepted by the model"

    @rule(replica=st.integers(0, len(SKEWS_US) - 1))
    def take_token(self, replica: int) -> None:
        granted, _ = self.run(self.leasing[replica].take_tokens("synthetic", 1))
        self.tokens_granted += granted
        elapsed = self._redis_s() - self.t0
        bound = RATE * elapsed + BURST
        assert self.tokens_granted <= bound, (
            f"{self.tokens_granted} tokens in {elapsed:.2f}s across skewed replicas; "
            f"at most {bound:.1f}"
        )

    # -- comparison with the model -----------------------------------------------------------

    def _real_mode(self, ds: str, local: str, h: dict[str, str]) -> str:
        if h.get("cancelled"):
            return "none"
        jobs = self.r.smembers(self.keys.chunk_jobs(ds, local))
        states = {self.r.hget(self.keys.job(ds, j), "state") for j in jobs}
        if not jobs or "running" in states:
            return "running"
        return "paused" if "paused" in states else "none"

    def _real_chunks(self, ds: str) -> dict[str, tuple[str, int, int, str]]:
        prefix = self.keys.chunk(ds, "")
        out = {}
        for key in self.r.scan_iter(match=prefix + "*"):
            local = key[len(prefix) :]
            h = self.r.hgetall(key)
            state = h["state"]
            if state == "queued":  # parking and dropping are lazy in the scripts
                mode = self._real_mode(ds, local, h)
                state = {"running": "queued", "paused": "parked", "none": "absent"}[mode]
            if state != "absent":
                out[local] = (state, int(h["s"]), int(h["e"]), h.get("want"))
        return out

    @invariant()
    def scripts_agree_with_the_model(self) -> None:
        for ds, m in self.model.items():
            real = self._real_chunks(ds)
            want = {  # (scripts that keep no want of ranges are compared on the rest)
                lid: (
                    c.state.value,
                    c.s,
                    c.e,
                    ",".join(f"{a}:{b}" for a, b in c.want) if real.get(lid, "1234")[3] else None,
                )
                for lid, c in m.chunks.items()
            }
            assert real == want, f"{ds}: chunks differ from the model"
            for lid, c in m.chunks.items():
                if c.state is State.LEASED:
                    h = self.r.hmget(self.keys.chunk(ds, lid), "token", "worker")
                    assert h == [str(c.token), c.worker]
            for sym in ("A", "B"):
                key = self.keys.coverage(ds, sym)
                got = [tuple(int(x) for x in v.split(":")) for v in self.r.zrange(key, 0, -1)]
                assert got == m.coverage.get(sym, []), f"{ds}/{sym}: coverage differs"

    @invariant()
    def jobs_agree_and_keep_their_promises(self) -> None:
        for ds, local in self.jobs:
            h = self.r.hgetall(self.keys.job(ds, local))
            job = self.model[ds].jobs[local]
            got = (h["state"], int(h["total"]), int(h["done"]), int(h["failed"]))
            assert got == (job.state, job.total, job.done, job.failed), (ds, local)
            assert job.done + job.failed <= job.total, "progress over 100%"
            if job.state == "done":  # done only when its whole range is covered
                cov = self.model[ds].coverage.get(job.sym, [])
                assert any(a <= job.s and job.e <= b for a, b in cov), (ds, local, cov)

    @invariant()
    def indexes_match_chunk_states(self) -> None:
        k = self.keys
        for d in DATASETS:
            where = {
                "queued": set(self.r.zrange(k.ready(d), 0, -1)),
                "leased": set(self.r.zrange(k.leases(d), 0, -1)),
                "backoff": set(self.r.zrange(k.delayed(d), 0, -1)),
                "parked": set(self.r.smembers(k.parked(d))),
                "dead": set(self.r.zrange(k.dead(d), 0, -1)),
            }
            for a, b in itertools.combinations(where.values(), 2):
                assert not a & b, "a chunk is in two places"
            prefix = k.chunk(d, "")
            for key in self.r.scan_iter(match=prefix + "*"):
                assert key[len(prefix) :] in where[self.r.hget(key, "state")]


TestEngineMachine = EngineMachine.TestCase
TestEngineMachine.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=30,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
with contextlib.suppress(AttributeError):
    TestEngineMachine.__test__ = True  # type: ignore[attr-defined]
