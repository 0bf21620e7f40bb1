"""``seamfill admin`` against a real coordinator and a real worker process, real Redis and QuestDB.

The worker fills gaps from the synthetic source into a table unique to the test; the commands run
as an operator runs them (the ``seamfill`` executable) or in-process through click's runner.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from seamfill.cli.admin import admin
from tests.coordinator_fixtures import RunningCoordinator, test_dataset_spec

SEAMFILL = str(Path(sys.executable).with_name("seamfill"))
DATASET = "cli.bars_1m"
MIN = 60_000_000
DAY = 1440 * MIN
T0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z


def wait_for(what: str, cond: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``cond`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


class WorkerProcess:
    """``seamfill worker run`` as a child process, with its metrics on a free port."""

    def __init__(
        self, workdir: Path, coordinator: str, questdb_url: str, name: str, concurrency: int = 2
    ) -> None:
        self.out = workdir / f"{name}.out"
        self.err = workdir / f"{name}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    SEAMFILL,
                    "worker",
                    "run",
                    "--coordinator",
                    coordinator,
                    "--id",
                    name,
                    "--questdb-url",
                    questdb_url,
                    "--metrics-port",
                    "0",
                    "--acquire-wait-ms",
                    "1000",
                    "--concurrency",
                    str(concurrency),
                    "--grace-seconds",
                    "5",
                ],
                stdout=out,
                stderr=err,
            )
        line = wait_for(f"worker {name} to start", self._started, 30)
        m = re.search(r"metrics on :(\d+)", line)
        assert m, line
        self.metrics_port = int(m.group(1))

    def _started(self) -> str | None:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"worker exited {self.proc.returncode}: "
                f"{self.err.read_text(errors='replace')[-2000:]}"
            )
        for line in self.out.read_text(errors="replace").splitlines():
            if "started" in line:
                return line
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def drop_table(questdb_url: str, table: str) -> None:
    q = urllib.parse.urlencode({"query": f'DROP TABLE IF EXISTS "{table}"'})
    with urllib.request.urlopen(f"{questdb_url}/exec?{q}", timeout=30):
        pass


@pytest.fixture
def fleet_coordinator(
    coordinator_factory: Callable[..., RunningCoordinator], unique: str, questdb_url: str
) -> Iterator[RunningCoordinator]:
    table = f"cli_{unique}"
    yield coordinator_factory({DATASET: test_dataset_spec(table)})
    drop_table(questdb_url, table)


@pytest.fixture
def worker(
    fleet_coordinator: RunningCoordinator, tmp_path: Path, questdb_url: str
) -> Iterator[WorkerProcess]:
    w = WorkerProcess(tmp_path, fleet_coordinator.address, questdb_url, "w1")
    yield w
    w.stop()


def seamfill_admin(
    address: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEAMFILL, "admin", "--coordinator", address, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def invoke(address: str, *args: str) -> Any:
    """Run an admin listing in-process with --json; the output must parse."""
    result = CliRunner().invoke(admin, ["--coordinator", address, *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_backfill_wait_shows_progress_and_exits_0(
    fleet_coordinator: RunningCoordinator, worker: WorkerProcess
) -> None:
    series = f"{DATASET}/BTC-USDT"
    out = seamfill_admin(
        fleet_coordinator.address,
        "backfill",
        series,
        "--start",
        "2024-01-01",
        "--end",
        str(T0 + DAY // 2),
        "--wait",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # The bar's last frame: all 12 chunks, the rows, a rate and the job's final state.
    assert "12/12 chunks" in out.stdout and "720 rows" in out.stdout, out.stdout
    assert "rows/s" in out.stdout and "done" in out.stdout

    cov = invoke(
        fleet_coordinator.address,
        "coverage",
        series,
        "--start",
        "2024-01-01",
        "--end",
        str(T0 + DAY // 2),
    )
    assert cov["gaps"] == [] and cov["ratio"] == 1.0
    assert cov["covered"] == [
        {
            "start_us": T0,
            "end_us": T0 + DAY // 2,
            "start": "2024-01-01T00:00:00Z",
            "end": "2024-01-01T12:00:00Z",
        }
    ]
    again = seamfill_admin(
        fleet_coordinator.address,
        "backfill",
        series,
        "--start",
        "2024-01-01",
        "--end",
        str(T0 + DAY // 2),
        "--wait",
        "--json",
    )
    assert again.returncode == 0 and json.loads(again.stdout) == {"covered": True, "job": None}


def test_top_once_shows_rows_per_second_and_a_draining_queue(
    fleet_coordinator: RunningCoordinator, worker: WorkerProcess
) -> None:
    addr = fleet_coordinator.address
    job = invoke(
        addr,
        "backfill",
        f"{DATASET}/ETH-USDT",
        "--start",
        str(T0),
        "--end",
        str(T0 + 20 * DAY),
        "--priority",
        "bulk",
    )
    wait_for(
        "the worker to complete chunks",
        lambda: invoke(addr, "job", job["job_id"])["progress"]["chunks_done"] >= 5,
    )
    view = invoke(addr, "top", "--once", "--interval", "1")
    (row,) = [d for d in view["datasets"] if d["dataset"] == DATASET]
    assert row["rows_per_second"] > 0
    assert row["queue_change_per_second"] < 0, row  # the queue drains
    assert view["workers"] == 1 and view["jobs_running"] >= 1

    text = seamfill_admin(addr, "top", "--once", "--interval", "0.5")
    assert text.returncode == 0, text.stderr
    assert DATASET in text.stdout and "draining" in text.stdout and "rows/s" in text.stdout

    cancelled = invoke(addr, "cancel", job["job_id"])
    assert cancelled["state"] == "cancelled"


def test_every_listing_parses_as_json(
    fleet_coordinator: RunningCoordinator, worker: WorkerProcess
) -> None:
    addr = fleet_coordinator.address
    series = f"{DATASET}/SOL-USDT"
    # Large enough that the worker is still busy with it while the job is paused and listed.
    job = invoke(
        addr,
        "backfill",
        series,
        "--start",
        str(T0),
        "--end",
        str(T0 + 400 * DAY),
        "--priority",
        "bulk",
    )
    assert job["state"] == "running" and job["series"]["symbol"] == "SOL-USDT"
    assert [j["job_id"] for j in invoke(addr, "jobs", "--state", "running")] == [job["job_id"]]
    paused = invoke(addr, "pause", job["job_id"])
    assert paused["state"] == "paused"
    assert invoke(addr, "resume", job["job_id"])["state"] == "running"
    assert invoke(addr, "job", job["job_id"])["job_id"] == job["job_id"]
    (ds,) = invoke(addr, "datasets")
    assert ds["name"] == DATASET and ds["source"] == "synthetic"
    workers = wait_for("the worker to be listed", lambda: invoke(addr, "workers"))
    assert workers[0]["worker_id"] == "w1"
    assert isinstance(invoke(addr, "leases"), list)
    assert invoke(addr, "dead-letters") == []
    assert invoke(addr, "dead-letters", "--requeue") == {"requeued": 0}
    stats = invoke(addr, "stats")
    assert stats["workers"] == 1 and stats["datasets"][0]["dataset"] == DATASET
    assert invoke(addr, "cancel", job["job_id"])["state"] == "cancelled"
    rec = invoke(addr, "reconcile", series, "--start", str(T0), "--end", str(T0 + DAY))
    assert set(rec) == {"covered", "removed", "added", "rows"}
    drained = invoke(addr, "drain", "w1")
    assert drained["worker_id"] == "w1" and drained["draining"] is True


def test_failures_print_the_error_name_and_exit_1(fleet_coordinator: RunningCoordinator) -> None:
    out = seamfill_admin(fleet_coordinator.address, "job", "no-such-job")
    assert out.returncode == 1
    assert re.match(r"^\w*NotFound: ", out.stderr), out.stderr
    out = seamfill_admin(fleet_coordinator.address, "coverage", "nope.ds/X")
    assert out.returncode == 1 and "NotFound: " in out.stderr, out.stderr


def test_token_from_the_environment_and_role_errors(
    coordinator_factory: Callable[..., RunningCoordinator],
) -> None:
    running = coordinator_factory(auth={"admin": ["adm-s3cret"], "reader": ["rd-s3cret"]})
    runner = CliRunner()
    ok = runner.invoke(
        admin,
        ["--coordinator", running.address, "datasets", "--json"],
        env={"SEAMFILL_TOKEN": "adm-s3cret"},
    )
    assert ok.exit_code == 0 and json.loads(ok.stdout)[0]["name"] == running.dataset
    missing = seamfill_admin(running.address, "stats")
    assert missing.returncode == 1 and missing.stderr.startswith("Unauthenticated: ")
    reader = seamfill_admin(running.address, "--token", "rd-s3cret", "stats")
    assert reader.returncode == 1 and reader.stderr.startswith("PermissionDenied: ")


def test_dead_letters_are_listed_shown_in_top_and_requeued(
    coordinator_factory: Callable[..., RunningCoordinator],
    tmp_path: Path,
    questdb_url: str,
    unique: str,
) -> None:
    """A files dataset whose dump directory is empty: every chunk fails terminally."""
    ds = "cli.files_1m"
    spec = {
        **test_dataset_spec(f"clif_{unique}"),
        "source": "files",
        "options": {"root": str(tmp_path / "dumps")},
    }
    running = coordinator_factory({ds: spec}, max_attempts=2)
    w = WorkerProcess(tmp_path, running.address, questdb_url, "wdead")
    try:
        addr = running.address
        invoke(addr, "backfill", f"{ds}/BTCUSDT", "--start", str(T0), "--end", str(T0 + 120 * MIN))
        dead = wait_for(
            "two dead letters", lambda: len(d := invoke(addr, "dead-letters")) == 2 and d
        )
        assert all("no file for" in c["last_error"] and c["state"] == "dead" for c in dead)
        view = invoke(addr, "top", "--once", "--interval", "0.2")
        (row,) = [r for r in view["datasets"] if r["dataset"] == ds]
        assert row["dead"] == 2 and len(view["dead_letters"]) == 2
        text = seamfill_admin(addr, "dead-letters")
        assert text.returncode == 0 and "no file for" in text.stdout
        assert invoke(addr, "dead-letters", "--requeue", dead[0]["chunk_id"]) == {"requeued": 1}
    finally:
        w.stop()
