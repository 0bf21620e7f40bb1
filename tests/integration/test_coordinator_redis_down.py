"""Redis unreachable: calls answer UNAVAILABLE and health says NOT_SERVING; recovery when it
returns. Uses a private redis-server on a free port (the shared one is never stopped)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from seamfill.core import errors
from seamfill.core.types import Series, TimeRange
from tests.coordinator_fixtures import RunningCoordinator, wait_for

HOUR = 3_600_000_000
pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed: run `make services`")
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return True
            except OSError:
                return False

        wait_for(up)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    r = PrivateRedis(_free_port())
    yield r
    r.stop()


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        return int(stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status)


def test_closed_port_is_unavailable(coordinator_factory: Callable[..., RunningCoordinator]) -> None:
    co = coordinator_factory(redis_url=f"redis://127.0.0.1:{_free_port()}/0")
    c = co.client()
    t0 = time.monotonic()
    with pytest.raises(errors.CoordinatorUnavailable, match="Redis"):
        c.ensure_range(Series(co.dataset, "BTC"), TimeRange(0, HOUR))
    with pytest.raises(errors.CoordinatorUnavailable):
        c.acquire("w1")
    assert time.monotonic() - t0 < 30  # fails fast rather than hanging
    wait_for(lambda: _health(co.address) == health_pb2.HealthCheckResponse.NOT_SERVING)


def test_recovers_when_redis_returns(
    coordinator_factory: Callable[..., RunningCoordinator], private_redis: PrivateRedis
) -> None:
    private_redis.start()
    co = coordinator_factory(redis_url=f"redis://127.0.0.1:{private_redis.port}/0")
    c = co.client()
    s = Series(co.dataset, "BTC")
    assert c.ensure_range(s, TimeRange(0, HOUR)) is not None
    private_redis.stop()
    with pytest.raises(errors.CoordinatorUnavailable):
        c.get_coverage(s, TimeRange(0, HOUR))
    wait_for(lambda: _health(co.address) == health_pb2.HealthCheckResponse.NOT_SERVING)
    private_redis.start()  # empty again: a fresh Redis
    wait_for(lambda: _health(co.address) == health_pb2.HealthCheckResponse.SERVING)

    def ensured() -> bool:
        try:
            return c.ensure_range(s, TimeRange(0, HOUR)) is not None
        except errors.CoordinatorUnavailable:
            return False

    wait_for(ensured)
    assert len(c.acquire("w1", wait_ms=1000).leases) == 1
