"""The worker loop's decisions, driven by a scripted Leases service (no servers).

The coordinator's side is scripted here so each decision — complete, fail with the right class,
release on stop, never complete a lost lease, back off while the coordinator is away — can be
checked in milliseconds. The real coordinator, Redis and QuestDB are exercised by the
integration and e2e tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pytest

from seamfill.core.errors import (
    CoordinatorUnavailable,
    FetchError,
    LeaseLost,
    StorageUnavailable,
    UpstreamUnavailable,
)
from seamfill.core.types import Chunk, Dataset, Lease, Series, TimeRange
from seamfill.sdk.backfill.faults import BreakerState
from seamfill.sdk.backfill.sink import QuestDBSink
from seamfill.worker.aio import Backoff
from seamfill.worker.config import WorkerConfig
from seamfill.worker.heartbeat import beat_once
from seamfill.worker.leases import (
    AcquireResult,
    Directive,
    FailResult,
    HeartbeatResult,
    LeaseStatus,
    Progress,
)
from seamfill.worker.loop import Worker

MIN = 60_000_000
T0 = 1_700_000_000_000_000 // MIN * MIN
FAR = 2**62


def _lease(n: int, source: str = "script") -> Lease:
    ds = Dataset("test.bars", "never_written", source, MIN)
    chunk = Chunk(f"c{n}", Series(ds.name, f"S{n}"), TimeRange(T0, T0 + 10 * MIN))
    return Lease(f"c{n}", token=n + 100, chunk=chunk, dataset=ds, deadline_us=FAR)


class ScriptedLeases:
    def __init__(self, grants: list[Any], beats: list[Any] | None = None) -> None:
        self.grants = list(grants)
        self.beats = list(beats or [])
        self.calls: list[tuple[Any, ...]] = []
        self.tokens: list[bool] = []

    async def acquire(
        self, worker_id: str, sources: Sequence[str], max: int, wait_ms: int
    ) -> AcquireResult:
        self.calls.append(("acquire", max))
        if self.grants:
            step = self.grants.pop(0)
            if isinstance(step, Exception):
                raise step
            return AcquireResult(tuple(step), ttl_ms=300)
        await asyncio.sleep(wait_ms / 1000)
        return AcquireResult((), ttl_ms=300)

    async def heartbeat(self, worker_id: str, progress: Sequence[Progress]) -> HeartbeatResult:
        self.calls.append(("heartbeat", tuple(p.lease_id for p in progress)))
        step = self.beats.pop(0) if self.beats else HeartbeatResult((), 300)
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, HeartbeatResult)
        return step

    async def complete(
        self, worker_id: str, lease_id: str, token: int, rows: int, fingerprint: str = ""
    ) -> None:
        self.calls.append(("complete", lease_id, token, rows))

    async def fail(
        self, worker_id: str, lease_id: str, token: int, reason: str, retryable: bool
    ) -> FailResult:
        self.calls.append(("fail", lease_id, token, reason, retryable))
        return FailResult(1, not retryable, 0)

    async def release(self, worker_id: str, lease_id: str, token: int) -> None:
        self.calls.append(("release", lease_id, token))

    async def take_tokens(self, worker_id: str, source: str, tokens: int) -> tuple[bool, int]:
        granted = self.tokens.pop(0) if self.tokens else True
        return granted, 1

    async def close(self) -> None:
        return None

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == kind]


class Empty:
    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        return pd.DataFrame(columns=["ts", "open", "high", "low", "close", "volume"])


class Slow:
    started = 0

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        Slow.started += 1
        await asyncio.sleep(60)
        raise AssertionError("unreachable")


class Raising:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
        raise self.error


def _worker(leases: ScriptedLeases, fetcher: Any, **cfg: Any) -> Worker:
    config = WorkerConfig(
        coordinator="127.0.0.1:1", worker_id="w1", acquire_wait_ms=20, reconnect_max_s=0.05, **cfg
    )
    return Worker(
        config, leases, QuestDBSink("http://127.0.0.1:1"), fetchers={"script": lambda **_: fetcher}
    )


async def _until(cond: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_completes_covered_empty_chunks_with_their_tokens() -> None:
    leases = ScriptedLeases([[_lease(1), _lease(2)]])
    w = _worker(leases, Empty())
    run = asyncio.create_task(w.run())
    await _until(lambda: len(leases.of("complete")) == 2)
    w.stop()
    await asyncio.wait_for(run, 5)
    assert sorted(leases.of("complete")) == [("complete", "c1", 101, 0), ("complete", "c2", 102, 0)]
    assert leases.of("acquire")[0] == ("acquire", 4)


async def test_a_terminal_fetch_error_is_failed_with_reason_and_class() -> None:
    leases = ScriptedLeases([[_lease(1)]])
    w = _worker(leases, Raising(FetchError("upstream said 400 Bad Request", retryable=False)))
    run = asyncio.create_task(w.run())
    await _until(lambda: leases.of("fail"))
    w.stop()
    await asyncio.wait_for(run, 5)
    ((_, lease_id, token, reason, was_retryable),) = leases.of("fail")
    assert (lease_id, token, was_retryable) == ("c1", 101, False)
    assert reason == "chunk fault (terminal) FetchError: upstream said 400 Bad Request"
    assert not leases.of("complete") and not leases.of("release")


@pytest.mark.parametrize(
    ("error", "dependency"),
    [
        (FetchError("upstream said 429 Too Many Requests", retryable=True), "upstream:script"),
        (UpstreamUnavailable("upstream answered 503"), "upstream:script"),
        (ConnectionRefusedError("refused"), "upstream:script"),
        (StorageUnavailable("QuestDB at http://127.0.0.1:1 cannot be reached"), "storage"),
    ],
)
async def test_an_outage_releases_the_chunk_without_penalty_and_opens_the_breaker(
    error: Exception, dependency: str
) -> None:
    leases = ScriptedLeases([[_lease(1)]])
    w = _worker(leases, Raising(error))
    run = asyncio.create_task(w.run())
    await _until(lambda: leases.of("release"))
    assert (
        w.breakers.state(dependency, asyncio.get_running_loop().time()) is not BreakerState.CLOSED
    )
    w.stop()
    await asyncio.wait_for(run, 5)
    assert leases.of("release") == [("release", "c1", 101)]
    assert not leases.of("fail") and not leases.of("complete")


async def test_an_open_breaker_holds_acquiring_until_a_probe_succeeds() -> None:
    leases = ScriptedLeases([[_lease(1)]])

    class DownOnce:
        calls = 0

        async def fetch(self, series: Series, range: TimeRange, dataset: Dataset) -> pd.DataFrame:
            DownOnce.calls += 1
            if DownOnce.calls == 1:
                raise UpstreamUnavailable("upstream answered 503")
            return await Empty().fetch(series, range, dataset)

    w = _worker(leases, DownOnce(), concurrency=4)
    w.breakers.base_s = 0.2
    run = asyncio.create_task(w.run())
    await _until(lambda: leases.of("release"))
    released_at = len(leases.calls)
    leases.grants.append([_lease(2)])
    await _until(lambda: leases.of("complete"))
    w.stop()
    await asyncio.wait_for(run, 5)
    after = [c for c in leases.calls[released_at:] if c[0] == "acquire"]
    # While open nothing is asked for; the half-open probe asks for one lease only.
    assert after[0] == ("acquire", 1)
    assert w.breakers.state("upstream:script", 0) is BreakerState.CLOSED


async def test_a_bug_in_a_fetcher_is_terminal_and_named() -> None:
    leases = ScriptedLeases([[_lease(1)]])
    w = _worker(leases, Raising(KeyError("close")))
    run = asyncio.create_task(w.run())
    await _until(lambda: leases.of("fail"))
    w.stop()
    await asyncio.wait_for(run, 5)
    reason, retryable = leases.of("fail")[0][3:]
    assert "Raising raised KeyError" in reason and retryable is False


@pytest.mark.parametrize(
    ("directive", "released"),
    [(Directive.STOP_CANCELLED, True), (Directive.STOP_PAUSED, True), (Directive.LOST, False)],
)
async def test_heartbeat_directives_stop_the_chunk(directive: Directive, released: bool) -> None:
    leases = ScriptedLeases(
        [[_lease(1)]], beats=[HeartbeatResult((LeaseStatus("c1", directive),), 300)]
    )
    w = _worker(leases, Slow())
    run = asyncio.create_task(w.run())
    await _until(lambda: w.held and next(iter(w.held.values())).progress.stage == "fetching")
    await beat_once(w)
    await _until(lambda: not w.held)
    w.stop()
    await asyncio.wait_for(run, 5)
    assert leases.of("heartbeat") == [("heartbeat", ("c1",))]
    assert bool(leases.of("release")) is released
    assert not leases.of("complete") and not leases.of("fail")


async def test_stop_releases_chunks_that_wrote_nothing_at_once() -> None:
    leases = ScriptedLeases([[_lease(1), _lease(2)]])
    w = _worker(leases, Slow(), grace_seconds=30)
    run = asyncio.create_task(w.run())
    await _until(
        lambda: len(w.held) == 2 and all(h.progress.stage == "fetching" for h in w.held.values())
    )
    w.stop()
    await asyncio.wait_for(run, 5)  # far less than the grace period
    assert sorted(c[1] for c in leases.of("release")) == ["c1", "c2"]


async def test_a_lease_past_its_deadline_while_the_coordinator_is_away_is_lost() -> None:
    lease = _lease(1)
    expired = Lease(lease.lease_id, lease.token, lease.chunk, lease.dataset, deadline_us=1)
    leases = ScriptedLeases([[expired]], beats=[CoordinatorUnavailable("down")])
    w = _worker(leases, Slow())
    run = asyncio.create_task(w.run())
    await _until(lambda: w.held and next(iter(w.held.values())).progress.stage == "fetching")
    await beat_once(w)
    await _until(lambda: not w.held)
    w.stop()
    await asyncio.wait_for(run, 5)
    assert not leases.of("release") and not leases.of("complete")


async def test_acquire_backs_off_while_the_coordinator_is_away() -> None:
    down = CoordinatorUnavailable("connection refused")
    leases = ScriptedLeases([down, down, down, [_lease(1)]])
    w = _worker(leases, Empty())
    run = asyncio.create_task(w.run())
    await _until(lambda: leases.of("complete"))
    w.stop()
    await asyncio.wait_for(run, 5)
    assert len(leases.of("acquire")) >= 4


async def test_a_lost_lease_at_completion_is_not_retried() -> None:
    class LostOnComplete(ScriptedLeases):
        async def complete(self, *args: Any, **kwargs: Any) -> None:
            self.calls.append(("complete", *args))
            raise LeaseLost("token 101 is stale")

    leases = LostOnComplete([[_lease(1)]])
    w = _worker(leases, Empty())
    run = asyncio.create_task(w.run())
    await _until(lambda: leases.of("complete"))
    w.stop()
    await asyncio.wait_for(run, 5)
    assert len(leases.of("complete")) == 1 and not leases.of("fail")


async def test_rate_limit_waits_until_granted() -> None:
    leases = ScriptedLeases([])
    leases.tokens = [False, False, True]
    w = _worker(leases, Empty())
    await asyncio.wait_for(w.fetchers.take_tokens("ccxt:binance", 1), 5)
    assert leases.tokens == []


def test_backoff_grows_to_its_ceiling_with_jitter() -> None:
    b = Backoff(0.1, 1.0)
    waits = [b.next() for _ in range(8)]
    assert 0.05 <= waits[0] <= 0.1 and all(0.5 <= w <= 1.0 for w in waits[4:])
    b.reset()
    assert b.next() <= 0.1


async def test_drain_lets_writing_chunks_finish_within_the_grace_period() -> None:
    from seamfill.worker.loop import Held

    w = _worker(ScriptedLeases([]), Empty(), grace_seconds=0.3)
    outcome: dict[str, str] = {}

    async def job(name: str, seconds: float) -> None:
        try:
            await asyncio.sleep(seconds)
            outcome[name] = "finished"
        except asyncio.CancelledError:
            outcome[name] = "cancelled"

    for n, (stage, seconds) in enumerate([("fetching", 60), ("writing", 0.05), ("writing", 60)]):
        held = Held(_lease(n), FAR)
        held.progress.stage = stage
        held.task = asyncio.create_task(job(f"{stage}{n}", seconds))
        w.held[held.lease.lease_id] = held
    await asyncio.wait_for(w._drain(), 5)
    assert outcome == {"fetching0": "cancelled", "writing1": "finished", "writing2": "cancelled"}


async def test_chunks_waiting_for_visibility_take_no_slot_but_are_bounded() -> None:
    from seamfill.worker.loop import VERIFYING_PER_SLOT, Held

    w = _worker(ScriptedLeases([]), Empty(), concurrency=2)
    for n in range(2):
        w.held[f"c{n}"] = Held(_lease(n), FAR)
    assert w._free_slots() == 0
    for h in w.held.values():
        h.written = True
    assert w._free_slots() == 2
    for n in range(2, 2 * (1 + VERIFYING_PER_SLOT)):
        w.held[f"c{n}"] = Held(_lease(n), FAR, written=True)
    assert w._free_slots() == 0
