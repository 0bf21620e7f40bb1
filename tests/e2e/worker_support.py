"""The fleet as real processes for the worker e2e tests: a coordinator and workers, started
through the ``seamfill`` command, talking to the real Redis and QuestDB.

Each test gets its own key prefix, table names and ports (0), so tests run in parallel.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import yaml

from seamfill.v1 import admin_pb2, admin_pb2_grpc, common_pb2, coverage_pb2, coverage_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
SEAMFILL = str(Path(sys.executable).with_name("seamfill"))
MIN = 60_000_000
DAY = 1440 * MIN
T0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


def wait_for(cond: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``cond`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def sql(questdb_url: str, query: str) -> list[list[Any]]:
    url = f"{questdb_url}/exec?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=30) as resp:
        rows: list[list[Any]] = json.load(resp).get("dataset", [])
    return rows


class Proc:
    """A child process whose stdout and stderr go to files under the test's directory."""

    def __init__(self, name: str, args: list[str], workdir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.out = workdir / f"{name}.out"
        self.err = workdir / f"{name}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.popen = subprocess.Popen(args, stdout=out, stderr=err, env=env, cwd=REPO)

    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        """The JSON log records with event ``name``."""
        out = []
        for line in self.err.read_text(errors="replace").splitlines():
            if f'"{name}"' in line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def wait_line(self, text: str, timeout: float = 30) -> str:
        def found() -> str | None:
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited {self.popen.returncode}: "
                    f"{self.err.read_text(errors='replace')[-2000:]}"
                )
            for line in self.stdout().splitlines():
                if text in line:
                    return line
            return None

        line: str = wait_for(found, timeout, f"{self.name} to print {text!r}")
        return line

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


class Fleet:
    """A coordinator process plus workers; ``close()`` stops them all."""

    def __init__(self, workdir: Path, redis_url: str, questdb_url: str, key_prefix: str) -> None:
        self.workdir = workdir
        self.redis_url = redis_url
        self.questdb_url = questdb_url
        self.key_prefix = key_prefix
        self.procs: list[Proc] = []
        self.address = ""
        self.coordinator: Proc | None = None
        self._channel: grpc.Channel | None = None
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "SEAMFILL_REDIS_URL": redis_url}

    def start_coordinator(
        self,
        datasets: dict[str, dict[str, Any]],
        port: int = 0,
        args: tuple[str, ...] = (),
        **settings: Any,
    ) -> str:
        config = {
            "redis_url": self.redis_url,
            "key_prefix": self.key_prefix,
            "lease_ttl_ms": 30_000,
            "max_attempts": 3,
            "backoff_base_ms": 50,
            "backoff_max_ms": 200,
            "storage": {"default": {"http": self.questdb_url}},
            "datasets": datasets,
            **settings,
        }
        path = self.workdir / "coordinator.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = Proc(
            f"coordinator{len(self.procs)}",
            [SEAMFILL, "coordinator", "serve", "--config", str(path), "--port", str(port), *args],
            self.workdir,
            self.env,
        )
        self.procs.append(proc)
        self.coordinator = proc
        line = proc.wait_line("listening on")
        self.address = line.rsplit(" ", 1)[-1]
        if self._channel is not None:
            self._channel.close()
        self._channel = grpc.insecure_channel(self.address)
        return self.address

    def start_worker(self, name: str, *extra: str, env: dict[str, str] | None = None) -> Proc:
        args = [
            SEAMFILL,
            "worker",
            "run",
            "--coordinator",
            self.address,
            "--id",
            name,
            "--questdb-url",
            self.questdb_url,
            "--acquire-wait-ms",
            "2000",
            "--fetcher",
            "scripted=tests.e2e.worker_fetchers:Scripted",
            *extra,
        ]
        proc = Proc(name, args, self.workdir, {**self.env, **(env or {})})
        self.procs.append(proc)
        proc.wait_line(f"seamfill worker {name} started")
        return proc

    # -- the coordinator's API -------------------------------------------------------------

    @property
    def channel(self) -> grpc.Channel:
        assert self._channel is not None, "start the coordinator first"
        return self._channel

    def ensure(self, dataset: str, symbol: str, start_us: int, end_us: int) -> str:
        stub = coverage_pb2_grpc.CoverageStub(self.channel)
        resp = stub.EnsureRange(
            coverage_pb2.EnsureRangeRequest(
                series=common_pb2.Series(dataset=dataset, symbol=symbol),
                range=common_pb2.TimeRange(start_us=start_us, end_us=end_us),
            ),
            timeout=10,
        )
        job_id: str = resp.job_id
        return job_id

    def gaps(self, dataset: str, symbol: str, start_us: int, end_us: int) -> list[tuple[int, int]]:
        stub = coverage_pb2_grpc.CoverageStub(self.channel)
        resp = stub.GetCoverage(
            coverage_pb2.GetCoverageRequest(
                series=common_pb2.Series(dataset=dataset, symbol=symbol),
                range=common_pb2.TimeRange(start_us=start_us, end_us=end_us),
            ),
            timeout=10,
        )
        return [(g.start_us, g.end_us) for g in resp.gaps]

    def job_state(self, job_id: str) -> int:
        stub = admin_pb2_grpc.AdminStub(self.channel)
        state: int = stub.GetJob(admin_pb2.JobRequest(job_id=job_id), timeout=10).state
        return state

    def dead_letters(self, dataset: str) -> list[common_pb2.Chunk]:
        stub = admin_pb2_grpc.AdminStub(self.channel)
        resp = stub.ListDeadLetters(
            admin_pb2.ListDeadLettersRequest(dataset=dataset, limit=100), timeout=10
        )
        return list(resp.chunks)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        if self._channel is not None:
            self._channel.close()
