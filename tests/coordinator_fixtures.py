"""A real coordinator for tests: in-process (background thread, own loop) or as a subprocess.

Stable names other test modules use:

- fixture ``coordinator`` -> :class:`RunningCoordinator` with ``.address`` ("127.0.0.1:PORT"),
  ``.config`` (:class:`CoordinatorConfig`), ``.key_prefix``, ``.redis_url``, ``.port``,
  ``.dataset`` (the default test dataset's name, :data:`TEST_DATASET`), ``.client()`` (a
  :class:`SyncCoordinatorClient`, closed at teardown) and ``.stop()``. Its key prefix is the
  test's own (``key_prefix`` fixture), so its Redis keys are deleted afterwards.
- fixture ``coordinator_factory`` -> ``factory(datasets=None, **config_overrides)`` starting
  more coordinators (e.g. a second replica on the same prefix: pass ``key_prefix=...``).
- :func:`build_config` (redis_url, key_prefix, datasets, **overrides) -> CoordinatorConfig, where
  datasets maps names to YAML-style specs (``{"table": ..., "source": ..., "interval": "1m"}``).
- :func:`test_dataset_spec` (table) -> the default test dataset spec (1m bars, 60 bars a chunk).
- :func:`start_coordinator` (config) -> RunningCoordinator (in-process); stop it with ``.stop()``.
- :func:`write_config` (path, redis_url, key_prefix, datasets, **overrides) -> path of a YAML file.
- :func:`self_signed_cert` (directory, name) -> (cert, key) paths of a certificate for
  ``localhost`` and 127.0.0.1, made with openssl; pass ``tls={"cert": ..., "key": ...}`` to the
  factory for a TLS coordinator, and the cert as a client's root of trust.
- :func:`start_coordinator_process` (config_path, ...) -> :class:`CoordinatorProcess`: a real
  ``seamfill coordinator serve --port 0`` subprocess; ``.address``, ``.port``, ``.proc``,
  ``.stop()`` (SIGTERM, wait), ``.kill()`` (SIGKILL).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from seamfill.coordinator.config import CoordinatorConfig
from seamfill.coordinator.server import Coordinator
from seamfill.sdk.client._coordinator import SyncCoordinatorClient

TEST_DATASET = "test.bars_1m"
_LISTENING = re.compile(r"seamfill coordinator listening on (\S+):(\d+)")


def test_dataset_spec(table: str = "test_bars_1m") -> dict[str, Any]:
    """The default test dataset: 1-minute synthetic bars, 60 bars per chunk."""
    return {
        "table": table,
        "source": "synthetic",
        "interval": "1m",
        "chunk_bars": 60,
        "settle": "0s",
        "kind": "bars",
    }


test_dataset_spec.__test__ = False  # type: ignore[attr-defined]


def config_mapping(
    redis_url: str, key_prefix: str, datasets: dict[str, Any] | None = None, **overrides: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "redis_url": redis_url,
        "key_prefix": key_prefix,
        "datasets": datasets if datasets is not None else {TEST_DATASET: test_dataset_spec()},
    }
    data.update(overrides)
    return data


def build_config(
    redis_url: str, key_prefix: str, datasets: dict[str, Any] | None = None, **overrides: Any
) -> CoordinatorConfig:
    """A validated config (environment overrides ignored, so tests see what they wrote)."""
    return CoordinatorConfig.from_mapping(
        config_mapping(redis_url, key_prefix, datasets, **overrides), env={}
    )


def write_config(
    path: Path,
    redis_url: str,
    key_prefix: str,
    datasets: dict[str, Any] | None = None,
    **overrides: Any,
) -> Path:
    path.write_text(yaml.safe_dump(config_mapping(redis_url, key_prefix, datasets, **overrides)))
    return path


def self_signed_cert(directory: Path, name: str = "cert") -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1: (cert.pem, key.pem) paths."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make a test certificate")
    cert, key = directory / f"{name}.pem", directory / f"{name}.key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@dataclass
class RunningCoordinator:
    """A coordinator served from a background thread of this process."""

    config: CoordinatorConfig
    port: int
    server: Coordinator
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    clients: list[SyncCoordinatorClient] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def key_prefix(self) -> str:
        return self.config.key_prefix

    @property
    def redis_url(self) -> str:
        return self.config.redis_url

    @property
    def dataset(self) -> str:
        return (
            TEST_DATASET
            if TEST_DATASET in self.config.datasets
            else sorted(self.config.datasets)[0]
        )

    def client(self, token: str | None = None) -> SyncCoordinatorClient:
        c = SyncCoordinatorClient(self.address, token=token)
        self.clients.append(c)
        return c

    def run(self, coro: Any) -> Any:
        """Run ``coro`` on the coordinator's loop (e.g. to reach ``server.store``)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        for c in self.clients:
            c.close()
        self.clients.clear()
        if self.loop.is_closed():
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(grace=1.0), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def start_coordinator(config: CoordinatorConfig, **kw: Any) -> RunningCoordinator:
    """Start a coordinator on 127.0.0.1:0 in a background thread; returns once it serves."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True, name="test-coordinator")
    thread.start()

    async def make() -> tuple[Coordinator, int]:
        server = Coordinator(config, host="127.0.0.1", port=0, **kw)
        return server, await server.start()

    try:
        server, port = asyncio.run_coroutine_threadsafe(make(), loop).result(30)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        raise
    return RunningCoordinator(config, port, server, loop, thread)


@dataclass
class CoordinatorProcess:
    """A ``seamfill coordinator serve`` subprocess."""

    proc: subprocess.Popen[str]
    host: str
    port: int
    output: list[str]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(15)
        self._close()

    def _close(self) -> None:
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def start_coordinator_process(
    config_path: Path | str,
    *,
    env: dict[str, str] | None = None,
    extra_args: tuple[str, ...] = (),
    timeout: float = 30,
) -> CoordinatorProcess:
    """Run ``seamfill coordinator serve --config PATH --port 0``; returns when it listens."""
    cmd = [
        sys.executable,
        "-c",
        "from seamfill.cli.main import main; main()",
        "coordinator",
        "serve",
        "--config",
        str(config_path),
        "--port",
        "0",
        *extra_args,
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    lines: list[str] = []
    found: list[tuple[str, int]] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            m = _LISTENING.search(line)
            if m and not found:
                found.append((m.group(1), int(m.group(2))))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(
                f"coordinator did not start: exit={proc.returncode} output={''.join(lines)!r}"
            )
        time.sleep(0.02)
    return CoordinatorProcess(proc, found[0][0], found[0][1], lines)


def wait_for(cond: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01) -> Any:
    """Poll ``cond`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s: {cond}")
        time.sleep(interval)


@pytest.fixture
def coordinator_factory(
    redis_url: str, key_prefix: str, unique: str
) -> Iterator[Callable[..., RunningCoordinator]]:
    started: list[RunningCoordinator] = []

    def factory(datasets: dict[str, Any] | None = None, **overrides: Any) -> RunningCoordinator:
        overrides.setdefault("key_prefix", key_prefix)
        if datasets is None:
            datasets = {TEST_DATASET: test_dataset_spec(f"bars_{unique}")}
        url = overrides.pop("redis_url", redis_url)
        cfg = build_config(url, overrides.pop("key_prefix"), datasets, **overrides)
        running = start_coordinator(cfg)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.stop()


@pytest.fixture
def coordinator(coordinator_factory: Callable[..., RunningCoordinator]) -> RunningCoordinator:
    """A coordinator with the default test dataset on this test's own key prefix."""
    return coordinator_factory()
