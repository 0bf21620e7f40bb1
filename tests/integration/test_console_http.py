"""The console over plain HTTP against a real coordinator and Redis: roles, CSRF header, CSP,
escaping, dead letters and requeue, backfill of a gap."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from seamfill.core.types import JobState, Series, TimeRange
from tests.coordinator_fixtures import RunningCoordinator, build_config, start_coordinator

pytestmark = pytest.mark.integration
READER, WORKER, ADMIN = "r-console", "w-console", "a-console"
HOUR = 3_600_000_000


@pytest.fixture
def console(redis_url: str, key_prefix: str, unique: str) -> Iterator[RunningCoordinator]:
    from tests.coordinator_fixtures import TEST_DATASET, test_dataset_spec

    cfg = build_config(
        redis_url,
        key_prefix,
        {TEST_DATASET: test_dataset_spec(f"bars_{unique}")},
        auth={"reader": [READER], "worker": [WORKER], "admin": [ADMIN]},
        max_attempts=1,
    )
    running = start_coordinator(cfg, ui_port=0)
    yield running
    running.stop()


def _call(
    co: RunningCoordinator, path: str, token: str = "", body: Any = None, csrf: bool = False
) -> tuple[int, dict[str, str], str]:
    port = co.server.ui_port
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Cookie"] = f"seamfill_token={token}"
    if csrf:
        headers["X-Seamfill-Console"] = "1"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_pages_need_a_reader_token_and_carry_a_strict_csp(console: RunningCoordinator) -> None:
    status, _, _ = _call(console, "/jobs?fragment=1")
    assert status == 401
    status, headers, body = _call(console, "/", READER)
    assert status == 200 and "Workers" in body
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert '<script src="/static/console.js"' in body and "<script>" not in body
    status, _, js = _call(console, "/static/console.js", READER)
    assert status == 200 and "X-Seamfill-Console" in js


def test_actions_need_the_admin_role_and_the_console_header(console: RunningCoordinator) -> None:
    c = console.client(ADMIN)
    job = c.ensure_range(Series(console.dataset, "ACT"), TimeRange(0, 2 * HOUR))
    assert job is not None
    body = {"job_id": job.job_id}
    assert _call(console, "/api/job/cancel", READER, body, csrf=True)[0] == 403
    assert _call(console, "/api/job/cancel", ADMIN, body)[0] == 403  # no console header
    assert c.get_job(job.job_id).state is JobState.RUNNING
    status, _, out = _call(console, "/api/job/pause", ADMIN, body, csrf=True)
    assert status == 200 and json.loads(out)["state"] == "paused"
    status, _, out = _call(console, "/api/job/nap", ADMIN, body, csrf=True)
    assert status == 400 and "pause, resume or cancel" in json.loads(out)["error"]
    assert c.get_job(job.job_id).state is JobState.PAUSED


def test_dead_letters_show_their_error_escaped_and_requeue(console: RunningCoordinator) -> None:
    c = console.client(ADMIN)
    w = console.client(WORKER)
    assert c.ensure_range(Series(console.dataset, "<b>DEAD</b>"), TimeRange(0, HOUR)) is not None
    (lease,) = w.acquire("wd", max=1).leases
    w.fail("wd", lease.lease_id, lease.token, "upstream said <script>x</script>", False)
    status, _, page = _call(console, "/dead", READER)
    assert status == 200
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x" not in page
    assert "&lt;b&gt;DEAD&lt;/b&gt;" in page and "<b>DEAD" not in page
    status, _, out = _call(
        console, "/api/dead/requeue", ADMIN, {"chunk_ids": [lease.lease_id]}, csrf=True
    )
    assert status == 200 and json.loads(out)["requeued"] == 1
    assert c.list_dead_letters() == []


def test_backfill_this_gap_queues_a_job_for_the_gap(console: RunningCoordinator) -> None:
    c = console.client(ADMIN)
    status, _, page = _call(
        console,
        f"/series?series={console.dataset}/GAP&start=1970-01-01&end=1970-01-01T02:00",
        ADMIN,
    )
    assert status == 200 and "backfill this gap" in page
    body = {"dataset": console.dataset, "symbol": "GAP", "start_us": 0, "end_us": 2 * HOUR}
    status, _, out = _call(console, "/api/ensure", ADMIN, body, csrf=True)
    assert status == 200, out
    job = c.get_job(json.loads(out)["job_id"])
    assert job.range == TimeRange(0, 2 * HOUR) and job.progress.chunks_total == 2
    assert job.requested_by == "console"


def test_a_bad_time_is_a_400_naming_the_field(console: RunningCoordinator) -> None:
    status, _, page = _call(console, f"/series?series={console.dataset}/X&start=yesterday", READER)
    assert status == 400 and "start = &#x27;yesterday&#x27; is not a time" in page, page
    status, _, page = _call(console, "/series?series=no-slash", READER)
    assert status == 400 and "DATASET/SYMBOL" in page


def test_a_taken_console_port_is_a_precise_error(
    console: RunningCoordinator, redis_url: str, key_prefix: str
) -> None:
    from seamfill.core.errors import SeamfillError

    cfg = build_config(redis_url, key_prefix + "b:")
    with pytest.raises(SeamfillError) as e:
        start_coordinator(cfg, ui_port=console.server.ui_port)
    assert "pick another --ui-port" in e.value.message
