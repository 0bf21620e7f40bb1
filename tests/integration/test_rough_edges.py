"""Rough edges a new user met following the README, each against a real coordinator."""

from __future__ import annotations

import http.server
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from seamfill.cli._health_checks import check_metrics
from seamfill.cli._health_coordinator import Coordinator, check_coordinator
from seamfill.cli.admin import admin
from seamfill.core.errors import Unauthenticated
from seamfill.core.types import Series, TimeRange
from tests.coordinator_fixtures import RunningCoordinator, wait_for

pytestmark = pytest.mark.integration
TOKENS = {"admin": ["adm-s3cret"], "reader": ["rd-s3cret"]}


def test_coordinator_and_token_are_accepted_after_the_subcommand(
    coordinator_factory: Callable[..., RunningCoordinator],
) -> None:
    running = coordinator_factory(auth=TOKENS)
    out = CliRunner().invoke(
        admin,
        ["datasets", "--json", "--coordinator", running.address, "--token", "adm-s3cret"],
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)[0]["name"] == running.dataset


def test_a_wrong_token_is_said_to_be_refused_with_the_fix(
    coordinator_factory: Callable[..., RunningCoordinator],
) -> None:
    running = coordinator_factory(auth=TOKENS)
    out = CliRunner().invoke(admin, ["--coordinator", running.address, "--token", "nope", "stats"])
    assert isinstance(out.exception, Unauthenticated)
    text = out.exception.message
    assert "refused" in text and "--token" in text and "SEAMFILL_TOKEN" in text, text
    assert "needs a bearer token" not in text
    missing = CliRunner().invoke(admin, ["--coordinator", running.address, "stats"])
    assert isinstance(missing.exception, Unauthenticated)
    assert "needs a bearer token" in missing.exception.message
    assert "--token" in missing.exception.message


def test_health_with_a_wrong_token_reports_failure(
    coordinator_factory: Callable[..., RunningCoordinator],
) -> None:
    running = coordinator_factory(auth=TOKENS)
    bad = check_coordinator(Coordinator(running.address, token="nope"), 5.0)
    assert bad.ok is False and "refused" in bad.detail, bad
    assert "--token" in bad.fix
    good = check_coordinator(Coordinator(running.address, token="rd-s3cret"), 5.0)
    assert good.ok is True, good


class _Redirect(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/elsewhere":  # a real metrics page, but not at the URL given
            from prometheus_client import REGISTRY, generate_latest

            import seamfill.sdk.metrics  # noqa: F401 - registers the SDK's series

            body = generate_latest(REGISTRY)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(301)
        self.send_header("Location", "/elsewhere")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def redirecting() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirect)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    server.shutdown()
    server.server_close()


def test_health_metrics_does_not_follow_a_redirect(redirecting: str) -> None:
    r = check_metrics(redirecting, 5.0)
    assert r.ok is False
    assert "301" in r.detail and "/elsewhere" in r.detail, r


def test_the_coordinator_logs_every_completed_chunk_at_info(
    coordinator: RunningCoordinator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="seamfill.coordinator")
    c = coordinator.client()
    s = Series(coordinator.dataset, "BTC,USDT")
    hour = 3_600_000_000
    assert c.ensure_range(s, TimeRange(0, hour)) is not None
    (lease,) = c.acquire("w1", max=10).leases
    c.complete("w1", lease.lease_id, lease.token, rows=60)
    (rec,) = [r for r in caplog.records if getattr(r, "event", "") == "seamless.lease.completed"]
    assert rec.levelno == logging.INFO
    fields = rec.fields  # type: ignore[attr-defined]
    assert fields["dataset"] == coordinator.dataset and fields["symbol"] == "BTC,USDT"
    assert fields["start"] == "1970-01-01T00:00:00Z"
    assert fields["rows"] == 60 and fields["worker"] == "w1" and fields["lease"] == lease.lease_id


def test_a_busy_worker_is_seen_at_its_last_heartbeat(coordinator: RunningCoordinator) -> None:
    from seamfill.sdk.client._coordinator import Progress

    c = coordinator.client()
    s = Series(coordinator.dataset, "BUSY")
    hour = 3_600_000_000
    assert c.ensure_range(s, TimeRange(0, 2 * hour)) is not None
    leases = c.acquire("busy-w", max=10).leases
    assert len(leases) == 2
    first = c.list_workers()[0].last_seen_us
    wait_for(lambda: time.time() * 1e6 > first + 1_500_000, 5)  # let the clock move on
    before = int(time.time() * 1e6)
    c.heartbeat("busy-w", [Progress(x.lease_id, x.token) for x in leases])
    (w,) = [w for w in c.list_workers() if w.worker_id == "busy-w"]
    assert w.leases == 2
    assert w.last_seen_us >= before - 100_000, w.last_seen_us - before


def test_a_drain_can_be_undone_and_the_worker_leases_again(
    coordinator: RunningCoordinator,
) -> None:
    c = coordinator.client()
    s = Series(coordinator.dataset, "UNDRAIN")
    assert c.ensure_range(s, TimeRange(0, 2 * 3_600_000_000)) is not None
    first = c.acquire("ud-w", max=1)
    assert first.drain is False and len(first.leases) == 1
    assert c.drain_worker("ud-w").draining is True
    assert c.acquire("ud-w", max=1).drain is True
    out = CliRunner().invoke(
        admin, ["undrain", "ud-w", "--json", "--coordinator", coordinator.address]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["draining"] is False
    got = c.acquire("ud-w", max=1)
    assert got.drain is False and len(got.leases) == 1
    help_text = CliRunner().invoke(admin, ["drain", "--help"], terminal_width=200).output
    assert "exits" in help_text and "undrain" in help_text


def test_top_shows_jobs_workers_errors_and_the_queue_time_to_empty(
    coordinator: RunningCoordinator,
) -> None:
    c = coordinator.client()
    hour = 3_600_000_000
    running = c.ensure_range(Series(coordinator.dataset, "TOPRUN"), TimeRange(0, 6 * hour))
    paused = c.ensure_range(Series(coordinator.dataset, "TOPPAUSE"), TimeRange(0, 2 * hour))
    assert running is not None and paused is not None
    c.pause_job(paused.job_id)
    got = c.acquire("top-w", max=2).leases
    for lease in got:
        c.complete("top-w", lease.lease_id, lease.token, rows=60)
    # Replicas add workers' rows to Redis once a second.
    wait_for(lambda: any(w.rows == 120 for w in c.list_workers()), 10)

    def top(*extra: str) -> Any:
        out = CliRunner().invoke(
            admin,
            [
                *("top", "--once", "--interval", "0.3", "--json"),
                *("--coordinator", coordinator.address, *extra),
            ],
        )
        assert out.exit_code == 0, out.output
        return json.loads(out.stdout)

    view = top()
    jobs = {j["job_id"]: j for j in view["jobs"]}
    assert jobs[paused.job_id]["state"] == "paused" and jobs[paused.job_id]["eta_seconds"] is None
    assert jobs[running.job_id]["chunks_done"] == 2 and jobs[running.job_id]["chunks_total"] == 6
    (w,) = [w for w in view["worker_rows"] if w["worker_id"] == "top-w"]
    assert w["leases"] == 0 and w["rows"] == 120
    (row,) = view["datasets"]
    assert "queue_time_to_empty_s" in row
    only = top("--filter", "TOPPAUSE", "--sort", "progress")
    assert [j["job_id"] for j in only["jobs"]] == [paused.job_id]
