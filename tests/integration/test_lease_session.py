"""The lease calls over one ``Leases.Session`` stream: same answers and errors as unary calls,
calls answered independently, a broken stream reopened, credentials checked when it opens."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from seamfill.core import errors
from seamfill.core.types import Series, TimeRange
from seamfill.sdk.client._coordinator import (
    CoordinatorClient,
    Directive,
    LeaseSession,
    Progress,
    SyncCoordinatorClient,
)
from seamfill.v1 import leases_pb2
from tests.coordinator_fixtures import (
    TEST_DATASET,
    RunningCoordinator,
    start_coordinator_process,
    test_dataset_spec,
    write_config,
)

MIN = 60_000_000
HOUR = 60 * MIN
pytestmark = pytest.mark.integration


def _run(co: RunningCoordinator, body: Callable[[CoordinatorClient, LeaseSession], Any]) -> Any:
    async def main() -> Any:
        async with CoordinatorClient(co.address, timeout_s=10) as client:
            session = client.lease_session()
            try:
                return await body(client, session)
            finally:
                await session.close()

    return asyncio.run(main())


def test_session_cycle_covers_the_range_and_refuses_a_stale_token(
    coordinator: RunningCoordinator,
) -> None:
    s = Series(coordinator.dataset, "BTC-USDT")
    r = TimeRange(0, 3 * HOUR)
    coordinator.client().ensure_range(s, r)

    async def body(_: CoordinatorClient, leases: LeaseSession) -> None:
        got = await leases.acquire("w1", ["synthetic"], max=10)
        assert sorted(x.chunk.range.start_us for x in got.leases) == [0, HOUR, 2 * HOUR]
        first = got.leases[0]
        await leases.release("w1", first.lease_id, first.token)
        with pytest.raises(errors.LeaseLost):
            await leases.complete("w1", first.lease_id, first.token, rows=1)
        # The refused call leaves the stream usable.
        hb = await leases.heartbeat("w1", [Progress(first.lease_id, first.token, 0, 0)])
        assert hb.statuses[0].directive is Directive.LOST
        again = await leases.acquire("w1", max=10)
        assert [x.lease_id for x in again.leases] == [first.lease_id]
        assert again.leases[0].token > first.token
        for lease in (*got.leases[1:], *again.leases):
            await leases.complete("w1", lease.lease_id, lease.token, rows=60)

    _run(coordinator, body)
    cov = coordinator.client().get_coverage(s, r)
    assert cov.covered == (r,) and cov.gaps == ()


def test_a_long_poll_holds_back_no_other_call(coordinator: RunningCoordinator) -> None:
    s = Series(coordinator.dataset, "ETH")
    coordinator.client().ensure_range(s, TimeRange(0, HOUR))

    async def body(_: CoordinatorClient, leases: LeaseSession) -> None:
        lease = (await leases.acquire("w1")).leases[0]
        waiting = asyncio.create_task(leases.acquire("w1", wait_ms=30_000))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        # Answered while the acquire still waits; completing queues nothing, so it keeps waiting.
        assert await leases.complete("w1", lease.lease_id, lease.token, rows=60) != []
        assert not waiting.done()
        waiting.cancel()

    _run(coordinator, body)


def test_bad_calls_get_their_status_and_the_stream_goes_on(
    coordinator: RunningCoordinator,
) -> None:
    async def body(client: CoordinatorClient, leases: LeaseSession) -> None:
        with pytest.raises(errors.InvalidArgument, match="max = -1"):
            await leases.acquire("w1", max=-1)
        with pytest.raises(errors.LeaseNotFound):
            await leases.complete("w1", "nope/BTC@0", 1, rows=1)
        with pytest.raises(errors.InvalidArgument, match="worker_id"):
            await leases.acquire("")
        # A request that names no call is answered with the field to set.
        call = client._leases.Session()
        await call.write(leases_pb2.SessionRequest(id=7))
        m = await call.read()
        assert m.id == 7 and m.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
        assert "set one of acquire" in m.error.message
        await call.done_writing()
        assert await call.read() is grpc.aio.EOF  # type: ignore[attr-defined]
        assert (await leases.acquire("w1")).leases == ()

    _run(coordinator, body)


def test_credentials_are_checked_when_the_stream_opens(
    coordinator_factory: Callable[..., RunningCoordinator],
) -> None:
    co = coordinator_factory(auth={"reader": ["r-tok"], "worker": ["w-tok"]})

    async def main() -> None:
        for token, error, text in (
            (None, errors.Unauthenticated, "bearer token"),
            ("forged", errors.Unauthenticated, "bearer token"),
            ("r-tok", errors.PermissionDenied, "worker role"),
        ):
            async with CoordinatorClient(co.address, token=token) as client:
                leases = client.lease_session()
                with pytest.raises(error, match=text):
                    await leases.acquire("w1")
                with pytest.raises(error):  # every call, on a stream opened again each time
                    await leases.take_tokens("w1", "synthetic", 1)
                await leases.close()
        async with CoordinatorClient(co.address, token="w-tok") as client:
            leases = client.lease_session()
            assert (await leases.acquire("w1")).leases == ()
            await leases.close()

    asyncio.run(main())


def test_a_broken_stream_fails_its_calls_and_the_next_call_reopens(
    tmp_path: Path, redis_url: str, key_prefix: str, unique: str
) -> None:
    cfg = write_config(
        tmp_path / "c.yaml",
        redis_url,
        key_prefix,
        {TEST_DATASET: test_dataset_spec(f"bars_{unique}")},
    )
    first = start_coordinator_process(cfg)

    async def main() -> None:
        async with CoordinatorClient(first.address, timeout_s=10) as client:
            leases = client.lease_session()
            waiting = asyncio.create_task(leases.acquire("w1", wait_ms=30_000))  # nothing queued
            await asyncio.sleep(0.3)
            await asyncio.to_thread(first.kill)  # no goodbye: the stream just breaks
            with pytest.raises(errors.CoordinatorUnavailable):
                await waiting
            with pytest.raises(errors.CoordinatorUnavailable):
                await leases.acquire("w1")
            await leases.close()

    try:
        asyncio.run(main())
    finally:
        first.kill()
    # Another replica: a new session on a new client works at once.
    second = start_coordinator_process(cfg)
    try:
        with SyncCoordinatorClient(second.address) as c:
            c.ensure_range(Series(TEST_DATASET, "SOL"), TimeRange(0, 2 * HOUR))

        async def again() -> int:
            async with CoordinatorClient(second.address, timeout_s=10) as client:
                leases = client.lease_session()
                got = await leases.acquire("w1", max=10)
                await leases.close()
                return len(got.leases)

        assert asyncio.run(again()) == 2
    finally:
        second.stop()


def test_a_stopping_replica_ends_its_sessions_instead_of_holding_them(
    coordinator: RunningCoordinator,
) -> None:
    """Open sessions would otherwise keep a stopping replica for its whole grace period: they
    end once their calls in flight are answered, and the worker's next call moves on."""

    async def body(_: CoordinatorClient, leases: LeaseSession) -> None:
        assert (await leases.acquire("w1")).leases == ()
        waiting = asyncio.create_task(leases.acquire("w1", wait_ms=30_000))
        await asyncio.sleep(0.2)
        stopping = asyncio.run_coroutine_threadsafe(
            coordinator.server.stop(grace=60), coordinator.loop
        )
        # Far less than the grace: the open session did not hold the replica.
        await asyncio.wrap_future(stopping)  # the test's own timeout bounds this
        assert (await waiting).leases == ()  # a long poll is answered (empty) when stopping
        with pytest.raises(errors.CoordinatorUnavailable):
            await leases.acquire("w1")

    async def bounded(client: CoordinatorClient, leases: LeaseSession) -> None:
        await asyncio.wait_for(body(client, leases), 20)

    _run(coordinator, bounded)
