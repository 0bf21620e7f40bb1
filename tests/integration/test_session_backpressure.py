"""A Session whose caller never reads its answers does not queue them without bound."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
import pytest

from seamfill.coordinator.service_leases import MAX_SESSION_CALLS
from seamfill.v1 import leases_pb2, leases_pb2_grpc
from tests.coordinator_fixtures import RunningCoordinator

pytestmark = pytest.mark.integration
CALLS = 60000


def _queued(coordinator: RunningCoordinator) -> int:
    leases = coordinator.server._leases
    assert leases is not None
    return sum(len(s._answers) + len(s._tasks) for s in list(leases._sessions))


def test_a_caller_that_never_reads_its_answers_keeps_the_session_queue_bounded(
    coordinator: RunningCoordinator,
) -> None:
    sent = 0
    go_on = threading.Event()

    def requests() -> Iterator[leases_pb2.SessionRequest]:
        nonlocal sent
        for i in range(CALLS):
            # Refused without reaching Redis (worker_id too long): answers are cheap and quick.
            acquire = leases_pb2.AcquireRequest(worker_id="w" * 300)
            yield leases_pb2.SessionRequest(id=i + 1, acquire=acquire)
            sent += 1
        go_on.wait()

    # Without BDP probing the client's receive window stays at its 64 KiB default, so the
    # answers it does not read back up into the server soon, on a loaded machine too.
    with grpc.insecure_channel(coordinator.address, options=[("grpc.http2.bdp_probe", 0)]) as ch:
        answers = leases_pb2_grpc.LeasesStub(ch).Session(requests())
        peak, held_since, last_sent = 0, time.monotonic(), -1
        deadline = time.monotonic() + 120.0  # an upper bound for a stuck run, not a timing check
        # Watch until the caller has been held (nothing more sent for 1 s: the server stopped
        # reading, flow control holds its writes) with the queue filled, or it sent everything.
        while time.monotonic() < deadline and peak <= MAX_SESSION_CALLS and sent < CALLS:
            peak = max(peak, _queued(coordinator))
            if sent != last_sent:
                held_since, last_sent = time.monotonic(), sent
            elif time.monotonic() - held_since > 1.0 and peak >= MAX_SESSION_CALLS // 2:
                break
            time.sleep(0.01)
        assert MAX_SESSION_CALLS // 2 <= peak <= MAX_SESSION_CALLS, (peak, sent)
        assert sent < CALLS, "the caller was never held: the server read everything it sent"
        go_on.set()
        ids = [a.id for a in answers]  # reading again: every call is answered, none lost
    assert ids == list(range(1, CALLS + 1))
