"""The web console in a real headless Chromium (Debian's ``chromium``, driven by Playwright)
against a real coordinator process, real workers, Redis and QuestDB.

Screenshots of every page a test looks at are kept as test output under the test's tmp dir.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from seamfill.core.types import JobState, Series, TimeRange
from seamfill.sdk.client._coordinator import SyncCoordinatorClient
from tests.e2e.worker_support import MIN, T0, Fleet, sql, wait_for

pytestmark = pytest.mark.e2e
playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("SEAMFILL_CHROMIUM", "/usr/bin/chromium")
DS = "console.bars_1m"
READER, WORKER, ADMIN = "reader-token-console", "worker-token-console", "admin-token-console"
HOUR = 60 * MIN
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        msg = f"Chromium is needed at {CHROMIUM}: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def table(unique: str, questdb_url: str) -> Iterator[str]:
    name = f"console_{unique}"
    yield name
    sql(questdb_url, f'DROP TABLE IF EXISTS "{name}"')


@pytest.fixture
def fleet(
    tmp_path: Path, redis_url: str, questdb_url: str, key_prefix: str, table: str
) -> Iterator[tuple[Fleet, str]]:
    f = Fleet(tmp_path, redis_url, questdb_url, key_prefix)
    spec = {"table": table, "source": "scripted", "interval": "1m", "chunk_bars": 60}
    f.start_coordinator(
        {DS: spec},
        args=("--ui-port", "0"),
        auth={"reader": [READER], "worker": [WORKER], "admin": [ADMIN]},
    )
    assert f.coordinator is not None
    line = f.coordinator.wait_line("seamfill console on")
    yield f, line.rsplit(" ", 1)[-1].rstrip("/")
    f.close()


@pytest.fixture
def admin(fleet: tuple[Fleet, str]) -> Iterator[SyncCoordinatorClient]:
    c = SyncCoordinatorClient(fleet[0].address, token=ADMIN)
    yield c
    c.close()


class Screen:
    """A browser page logged in with a token; counts dialogs and saves screenshots."""

    def __init__(self, browser: Any, base: str, token: str, shots: Path) -> None:
        self.base, self.shots = base, shots
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(f"{base}/login")
        self.page.fill("input[name=token]", token)
        self.page.click("form[action='/login'] button")
        self.page.wait_for_url(f"{base}/")

    def open(self, path: str) -> Any:
        self.page.goto(self.base + path)
        return self.page

    def shot(self, name: str) -> Path:
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


def _ensure(c: SyncCoordinatorClient, symbol: str, start: int, end: int) -> str:
    job = c.ensure_range(Series(DS, symbol), TimeRange(start, end))
    assert job is not None
    return job.job_id


def _done(c: SyncCoordinatorClient, job_id: str) -> bool:
    return c.get_job(job_id).state is JobState.DONE


def test_a_known_gap_shows_at_its_place_on_the_timeline(
    browser: Any, fleet: tuple[Fleet, str], admin: SyncCoordinatorClient, tmp_path: Path
) -> None:
    f, base = fleet
    f.start_worker("w1", "--token", WORKER, "--concurrency", "2")
    # Covered [0h, 2h) and [3h, 5h): the gap is [2h, 3h), i.e. pixels [400, 600) of 1000.
    jobs = [
        _ensure(admin, "GAPPY", T0, T0 + 2 * HOUR),
        _ensure(admin, "GAPPY", T0 + 3 * HOUR, T0 + 5 * HOUR),
    ]
    wait_for(lambda: all(_done(admin, j) for j in jobs), 60, "both jobs to finish")
    screen = Screen(browser, base, READER, tmp_path / "screenshots")
    page = screen.open(
        f"/series?series={DS}/GAPPY&start=2024-01-01T00:00:00Z&end=2024-01-01T05:00:00Z&width=1000"
    )
    gap = page.locator("svg.timeline rect[data-state=gap]")
    assert gap.count() == 1
    assert int(gap.get_attribute("data-start")) == T0 + 2 * HOUR
    assert int(gap.get_attribute("data-end")) == T0 + 3 * HOUR
    label = int(page.locator("svg.timeline text.label").get_attribute("x"))
    x = int(gap.get_attribute("x")) - 180
    assert (x, int(gap.get_attribute("width"))) == (400, 200), label
    covered = page.locator("svg.timeline rect[data-state=covered]")
    assert covered.count() == 2
    assert "2024-01-01T02:00:00Z, 2024-01-01T03:00:00Z" in gap.locator("title").text_content()
    assert "[2024-01-01T02:00:00Z, 2024-01-01T03:00:00Z)" in page.locator("ul.ranges").inner_text()
    screen.shot("series-gap")
    screen.close()


def test_progress_advances_on_screen_and_cancel_from_the_page_cancels(
    browser: Any, fleet: tuple[Fleet, str], admin: SyncCoordinatorClient, tmp_path: Path
) -> None:
    f, base = fleet
    f.start_worker(
        "w1", "--token", WORKER, "--concurrency", "1", env={"SEAMFILL_TEST_FETCH_DELAY": "0.4"}
    )
    job_id = _ensure(admin, "SLOWJOB", T0, T0 + 48 * HOUR)  # 48 chunks, ~0.4 s each
    screen = Screen(browser, base, ADMIN, tmp_path / "screenshots")
    page = screen.open("/jobs")
    row = page.locator("table.jobs tr", has_text=job_id)

    def done_on_screen() -> int:
        return int(row.locator(".done").inner_text().split("/")[0])

    first = wait_for(lambda: done_on_screen() >= 1 and done_on_screen(), 60, "a chunk done")
    wait_for(lambda: done_on_screen() > first, 60, "progress to advance on screen")
    screen.shot("jobs-running")
    # The series while it fills: covered, leased and queued chunks on one timeline.
    timeline = screen.open(f"/series?series={DS}/SLOWJOB&start=2024-01-01&end=2024-01-03")
    assert timeline.locator("svg.timeline rect[data-state=queued]").count() >= 1
    screen.shot("series-running")
    page = screen.open("/jobs")
    row = page.locator("table.jobs tr", has_text=job_id)
    row.locator("button", has_text="cancel").click()
    wait_for(lambda: "cancelled" in row.locator(".state").inner_text(), 20, "cancelled on screen")
    assert admin.get_job(job_id).state is JobState.CANCELLED
    assert "cancelled" in page.locator("#flash").inner_text()
    screen.shot("jobs-cancelled")
    screen.close()


def test_a_hostile_symbol_renders_as_text_and_runs_nothing(
    browser: Any, fleet: tuple[Fleet, str], admin: SyncCoordinatorClient, tmp_path: Path
) -> None:
    f, base = fleet
    f.start_worker("w1", "--token", WORKER, "--concurrency", "2")
    job = _ensure(admin, HOSTILE, T0, T0 + 2 * HOUR)
    _ensure(admin, 'quote"s\nnew line', T0, T0 + HOUR)
    wait_for(lambda: _done(admin, job), 60, "the hostile symbol's job to finish")
    screen = Screen(browser, base, READER, tmp_path / "screenshots")
    for name, path in (
        ("jobs-hostile", "/jobs"),
        ("dataset-hostile", f"/dataset?dataset={DS}"),
        ("series-hostile", f"/series?series={DS}/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"),
    ):
        page = screen.open(path)
        page.wait_for_timeout(1800)  # one live refresh replaces the page's main part
        assert page.locator("img").count() == 0, path
        assert HOSTILE in page.locator("main").inner_text(), path
        screen.shot(name)
    assert screen.dialogs == []
    assert screen.errors == []
    screen.close()


def test_without_the_admin_token_an_action_is_refused_and_changes_nothing(
    browser: Any, fleet: tuple[Fleet, str], admin: SyncCoordinatorClient, tmp_path: Path
) -> None:
    _, base = fleet
    job_id = _ensure(admin, "NOWORKER", T0, T0 + 4 * HOUR)  # no worker: it stays running
    screen = Screen(browser, base, READER, tmp_path / "screenshots")
    page = screen.open("/jobs")
    row = page.locator("table.jobs tr", has_text=job_id)
    button = row.locator("button", has_text="cancel")
    assert button.is_disabled()
    # Press it anyway, as a page edited in the browser's tools would.
    page.evaluate("document.querySelectorAll('button.act').forEach(b => b.disabled = false)")
    button.click()
    wait_for(lambda: "403" in page.locator("#flash").inner_text(), 10, "the refusal on screen")
    assert "admin role" in page.locator("#flash").inner_text()
    screen.shot("jobs-refused")
    # Without any token at all, the same call is refused too.
    anon = browser.new_context()
    resp = anon.request.post(
        f"{base}/api/job/cancel",
        data=json.dumps({"job_id": job_id}),
        headers={"Content-Type": "application/json", "X-Seamfill-Console": "1"},
    )
    assert resp.status == 401
    anon.close()
    assert admin.get_job(job_id).state is JobState.RUNNING
    screen.close()
