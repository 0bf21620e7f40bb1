"""``seamfill admin``: the operator's view of a fleet, as a client of the coordinator.

Every listing has ``--json`` (one JSON document on stdout). Errors print ``ErrorName: message``;
exit code 2 for bad usage, 1 for a failure. Times are ISO-8601 strings or epoch microseconds.
The coordinator's address comes from ``--coordinator`` or ``SEAMFILL_COORDINATOR``, the bearer
token from ``--token`` or ``SEAMFILL_TOKEN``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.live import Live

from seamfill.cli import render as _render
from seamfill.cli import top as _top
from seamfill.core.errors import SeamfillError
from seamfill.core.types import Job, JobState, Priority, Series, TimeRange

DEFAULT_COORDINATOR = "127.0.0.1:50051"
DAY_US = 86_400_000_000
_PIPE_WIDTH = 200

F = TypeVar("F", bound=Callable[..., Any])


class SeriesParam(click.ParamType[Series]):
    """``DATASET/SYMBOL``; a bad one is a usage error (exit 2) naming the fix."""

    name = "series"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Series:
        if isinstance(value, Series):
            return value
        try:
            return Series.parse(str(value))
        except SeamfillError as e:
            self.fail(e.message, param, ctx)


class TimeParam(click.ParamType[int]):
    """A time in any form :mod:`seamfill.core.timeconv` accepts; bare integers are epoch µs."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from seamfill.core.timeconv import to_us

        if isinstance(value, int):
            return value
        text = str(value).strip()
        name = param.name if param and param.name else "time"
        try:
            if text.lstrip("-").isdigit() and len(text.lstrip("-")) != 8:
                return to_us(int(text), name, unit="us")
            return to_us(text, name)
        except SeamfillError as e:
            self.fail(e.message, param, ctx)


SERIES = SeriesParam()
TIME = TimeParam()
PRIORITIES = {p.name.lower(): p for p in Priority}
STATES = {s.value: s for s in JobState}


@dataclass(frozen=True, slots=True)
class Settings:
    """What every subcommand needs: where the coordinator is and how to talk to it."""

    coordinator: str
    token: str | None
    timeout: float
    allow_plaintext_token: bool = False


def _range(start: int | None, end: int | None, *, default_days: int | None = None) -> TimeRange:
    if start is None or end is None:
        if default_days is None:
            raise click.UsageError("give both --start and --end (ISO time or epoch microseconds)")
        now = int(time.time() * 1_000_000)
        end = now if end is None else end
        start = end - default_days * DAY_US if start is None else start
    if end <= start:
        raise click.BadParameter(
            f"--end ({end}) is not after --start ({start}): ranges are half-open [start, end)",
            param_hint="--end",
        )
    try:
        return TimeRange(start, end).validate()
    except SeamfillError as e:
        raise click.BadParameter(e.message, param_hint="--start/--end") from e


class _LazyClient:
    """Connects on first use, so usage errors are reported before any network traffic."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            from seamfill.sdk.client._coordinator import SyncCoordinatorClient

            s = self._settings
            self._client = SyncCoordinatorClient(
                s.coordinator,
                token=s.token,
                timeout=s.timeout,
                allow_plaintext_token=s.allow_plaintext_token,
            )
        return getattr(self._client, name)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _client_cmd(f: F) -> F:
    """Hand the command a client (connected on first call) as its first argument.

    ``--coordinator``, ``--token`` and ``--timeout`` are taken after the subcommand too (as
    ``seamfill health`` takes them); given there, they win over the ones before it.
    """

    @click.pass_obj
    def wrapper(
        settings: Settings,
        /,
        *args: Any,
        late_coordinator: str | None,
        late_token: str | None,
        late_timeout: float | None,
        **kwargs: Any,
    ) -> Any:
        settings = Settings(
            late_coordinator or settings.coordinator,
            late_token or settings.token,
            late_timeout or settings.timeout,
        )
        client = _LazyClient(settings)
        try:
            return f(client, *args, **kwargs)
        finally:
            client.close()

    wrapper.__name__ = f.__name__
    wrapper.__doc__ = f.__doc__
    for option in (
        click.option(
            "--timeout",
            "late_timeout",
            type=click.FloatRange(0.1, 600),
            default=None,
            help="Seconds to wait for each call (also taken before the subcommand).",
        ),
        click.option(
            "--token",
            "late_token",
            default=None,
            help="Bearer token (also taken before the subcommand; env SEAMFILL_TOKEN).",
        ),
        click.option(
            "--coordinator",
            "late_coordinator",
            default=None,
            help="Coordinator HOST:PORT (also taken before the subcommand).",
        ),
    ):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def _json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


def _console(stderr: bool = False) -> Console:
    # Piped output (scripts, logs) gets wide lines instead of rich's 80-column default.
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else _PIPE_WIDTH
    return Console(highlight=False, stderr=stderr, width=width)


def _out(as_json: bool, data: Any, render: Callable[[], Any]) -> None:
    if as_json:
        click.echo(_render.dumps(data))
    else:
        _console().print(render())


FORMATS = (
    "SERIES is DATASET/SYMBOL, e.g. demo.ohlcv_1m/BTC-USDT (the symbol is everything after the "
    "first '/', so BTC/USDT works; quote it in the shell when it has spaces). TIME is ISO-8601 "
    "in UTC unless it names a zone (2024-01-31, 2024-01-31T12:00:00Z) or integer epoch "
    "microseconds (1706702400000000)."
)


@click.group("admin", epilog=FORMATS)
@click.option(
    "--coordinator",
    envvar="SEAMFILL_COORDINATOR",
    default=DEFAULT_COORDINATOR,
    show_default=True,
    help="Coordinator address HOST:PORT (env SEAMFILL_COORDINATOR).",
)
@click.option(
    "--token",
    envvar="SEAMFILL_TOKEN",
    default=None,
    help="Bearer token with the admin role (env SEAMFILL_TOKEN).",
)
@click.option(
    "--allow-plaintext-token",
    is_flag=True,
    envvar="SEAMFILL_ALLOW_PLAINTEXT_TOKEN",
    help="Send --token without TLS to a non-loopback coordinator (a warning is logged).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 600),
    default=10.0,
    show_default=True,
    help="Seconds to wait for each call.",
)
@click.pass_context
def admin(
    ctx: click.Context,
    coordinator: str,
    token: str | None,
    allow_plaintext_token: bool,
    timeout: float,
) -> None:
    """Inspect and steer the fleet: coverage, jobs, leases, workers, dead letters."""
    ctx.obj = Settings(coordinator, token or None, timeout, allow_plaintext_token)


@admin.command("coverage")
@click.argument("series", type=SERIES)
@click.option("--start", type=TIME, help="Start (default: 30 days before --end).")
@click.option("--end", type=TIME, help="End, exclusive (default: now).")
@click.option("--width", type=click.IntRange(10, 400), default=72, show_default=True)
@_json_option
@_client_cmd
def coverage_cmd(
    client: Any, series: Series, start: int | None, end: int | None, width: int, as_json: bool
) -> None:
    """Covered ranges, gaps and a compact timeline of SERIES."""
    span = _range(start, end, default_days=30)
    cov = client.get_coverage(series, span)
    _out(
        as_json,
        {**_render.jsonable(cov), "ratio": cov.ratio},
        lambda: _render.coverage_view(cov, width),
    )


@admin.command("backfill")
@click.argument("series", type=SERIES)
@click.option("--start", type=TIME, required=True)
@click.option("--end", type=TIME, required=True)
@click.option(
    "--priority", type=click.Choice(sorted(PRIORITIES)), default="normal", show_default=True
)
@click.option("--wait", is_flag=True, help="Show progress until the job ends; exit 0 when done.")
@_json_option
@_client_cmd
def backfill_cmd(
    client: Any, series: Series, start: int, end: int, priority: str, wait: bool, as_json: bool
) -> None:
    """Make SERIES cover [--start, --end): queue the gaps for the fleet."""
    span = _range(start, end)
    job = client.ensure_range(series, span, priority=PRIORITIES[priority])
    if job is None:
        _out(as_json, {"job": None, "covered": True}, lambda: "already covered: nothing to do")
        return
    if wait:
        job = _watch(client, job, quiet=as_json)
    _out(as_json, job, lambda: _render.job_view(job))
    if wait and job.state is not JobState.DONE:
        raise SystemExit(1)


def _until_interrupted(updates: Iterator[Job], job: Job) -> Iterator[Job]:
    """The job's updates until it ends or Ctrl-C, which stops watching, not the job."""
    try:
        yield from updates
    except (KeyboardInterrupt, RuntimeError) as e:
        # The sync client's stream cleanup can turn Ctrl-C into a RuntimeError raised from it.
        if not isinstance(e, KeyboardInterrupt) and not isinstance(
            e.__context__, KeyboardInterrupt
        ):
            raise
        click.echo(
            f"stopped watching; job {job.job_id} goes on (seamfill admin job {job.job_id})",
            err=True,
        )
        raise SystemExit(130) from None


def _watch(client: Any, job: Job, *, quiet: bool) -> Job:
    console = _console(stderr=quiet)
    with _render.progress(console) as bar:
        task = bar.add_task(str(job.series), total=max(1, job.progress.chunks_total))
        for update in _until_interrupted(client.watch_job(job.job_id), job):
            job = update
            p = job.progress
            bar.update(
                task,
                total=max(1, p.chunks_total),
                completed=p.chunks_done,
                rows=p.rows_done,
                rate=p.rows_per_second,
                eta=p.eta_seconds,
            )
            if job.finished:
                break
    return job


@admin.command("jobs")
@click.option(
    "--state",
    "states",
    type=click.Choice(sorted(STATES)),
    multiple=True,
    help="Only jobs in this state (repeatable).",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@_json_option
@_client_cmd
def jobs_cmd(client: Any, states: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Jobs, newest first."""
    jobs = client.list_jobs(states=[STATES[s] for s in states], limit=limit)
    _out(as_json, jobs, lambda: _render.jobs_table(jobs))


@admin.command("job")
@click.argument("job_id")
@_json_option
@_client_cmd
def job_cmd(client: Any, job_id: str, as_json: bool) -> None:
    """One job: its range, state and progress."""
    job = client.get_job(job_id)
    _out(as_json, job, lambda: _render.job_view(job))


def _job_action(name: str, method: str, help_text: str) -> None:
    @admin.command(name, help=help_text)
    @click.argument("job_id")
    @_json_option
    @_client_cmd
    def action(client: Any, job_id: str, as_json: bool) -> None:
        job = getattr(client, method)(job_id)
        _out(as_json, job, lambda: _render.job_view(job))


_job_action("pause", "pause_job", "Pause a job: its queued chunks wait, leases are told to stop.")
_job_action("resume", "resume_job", "Resume a paused job.")
_job_action("cancel", "cancel_job", "Cancel a job; chunks other jobs wait on are kept.")


@admin.command("leases")
@click.option("--dataset", default="", help="Only this dataset.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@_json_option
@_client_cmd
def leases_cmd(client: Any, dataset: str, limit: int, as_json: bool) -> None:
    """Chunks leased to workers right now."""
    leases = client.list_leases(dataset=dataset, limit=limit)
    now = int(time.time() * 1_000_000)
    _out(as_json, leases, lambda: _render.leases_table(leases, now))


@admin.command("workers")
@_json_option
@_client_cmd
def workers_cmd(client: Any, as_json: bool) -> None:
    """Workers seen recently, their leases and rows."""
    workers = client.list_workers()
    now = int(time.time() * 1_000_000)
    _out(as_json, workers, lambda: _render.workers_table(workers, now))


@admin.command("drain")
@click.argument("worker_id")
@_json_option
@_client_cmd
def drain_cmd(client: Any, worker_id: str, as_json: bool) -> None:
    """Drain WORKER_ID: it gets no new leases, finishes or releases what it holds, and the
    worker process exits (0) at its next heartbeat or Acquire. A drained worker id stays drained
    (restarting it with the same --id drains it again) until `seamfill admin undrain WORKER_ID`."""
    worker = client.drain_worker(worker_id)
    now = int(time.time() * 1_000_000)
    _out(as_json, worker, lambda: _render.workers_table([worker], now))


@admin.command("undrain")
@click.argument("worker_id")
@_json_option
@_client_cmd
def undrain_cmd(client: Any, worker_id: str, as_json: bool) -> None:
    """Undo `drain WORKER_ID`: the id may lease again (start the worker again if it exited)."""
    worker = client.drain_worker(worker_id, undo=True)
    now = int(time.time() * 1_000_000)
    _out(as_json, worker, lambda: _render.workers_table([worker], now))


@admin.command("dead-letters")
@click.option("--dataset", default="", help="Only this dataset.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=200, show_default=True)
@click.option("--requeue", is_flag=True, help="Put them back in the queue (all, or CHUNK_IDs).")
@click.argument("chunk_ids", nargs=-1)
@_json_option
@_client_cmd
def dead_letters_cmd(
    client: Any, dataset: str, limit: int, requeue: bool, chunk_ids: tuple[str, ...], as_json: bool
) -> None:
    """Chunks that failed too often, with their last error; --requeue retries them."""
    if chunk_ids and not requeue:
        raise click.UsageError("CHUNK_IDs are only taken with --requeue")
    if requeue:
        n = client.requeue_dead_letters(list(chunk_ids), all=not chunk_ids)
        _out(as_json, {"requeued": n}, lambda: f"requeued {n} chunks")
        return
    chunks = client.list_dead_letters(dataset=dataset, limit=limit)
    _out(as_json, chunks, lambda: _render.chunks_table("Dead letters", chunks))


@admin.command("datasets")
@_json_option
@_client_cmd
def datasets_cmd(client: Any, as_json: bool) -> None:
    """Datasets the coordinator is configured with."""
    datasets = client.list_datasets()
    _out(as_json, datasets, lambda: _render.datasets_table(datasets))


@admin.command("reconcile")
@click.argument("target")
@click.option("--start", type=TIME, required=True)
@click.option("--end", type=TIME, required=True)
@_json_option
@_client_cmd
def reconcile_cmd(client: Any, target: str, start: int, end: int, as_json: bool) -> None:
    """Rebuild coverage in [--start, --end) from what QuestDB really holds.

    TARGET is a SERIES (DATASET/SYMBOL), or a DATASET: then every symbol storage holds rows of
    in the range, or that has coverage there, is reconciled in turn, with progress on stderr."""
    span = _range(start, end)
    if "/" in target:
        series = SERIES.convert(target, None, None)
        result = client.reconcile(series, span)
        _out(as_json, result, lambda: _render.reconcile_view(result))
        return
    symbols = client.list_series(target, span)
    done: list[dict[str, Any]] = []
    for i, symbol in enumerate(symbols, 1):
        series = Series(target, symbol)
        result = client.reconcile(series, span)
        done.append({"series": str(series), "result": result})
        click.echo(
            f"[{i}/{len(symbols)}] {series}: {result.rows:,} rows, "
            f"{len(result.added)} ranges added, {len(result.removed)} removed",
            err=True,
        )
    _out(
        as_json,
        done,
        lambda: (
            f"reconciled {len(done)} series of {target} "
            f"({sum(d['result'].rows for d in done):,} rows in storage)"
        ),
    )


@admin.command("stats")
@_json_option
@_client_cmd
def stats_cmd(client: Any, as_json: bool) -> None:
    """Fleet-wide counts per dataset."""
    stats = client.get_stats()
    _out(as_json, stats, lambda: _top.stats_table(stats))


@admin.command("top")
@click.option(
    "--interval",
    type=click.FloatRange(0.2, 60),
    default=2.0,
    show_default=True,
    help="Seconds between refreshes (and between the two samples of --once).",
)
@click.option("--once", is_flag=True, help="Print one view (from two samples) and exit.")
@click.option(
    "--iterations", type=click.IntRange(1), default=None, help="Refresh this many times, then exit."
)
@click.option(
    "--sort",
    type=click.Choice(_top.SORTS),
    default="dataset",
    show_default=True,
    help="rows: highest rows/s first; queued: deepest queue first; progress: least done first; "
    "eta: soonest first.",
)
@click.option(
    "--filter",
    "match",
    default="",
    help="Only datasets, jobs (id or series) and workers whose name contains this text.",
)
@_json_option
@_client_cmd
def top_cmd(
    client: Any,
    interval: float,
    once: bool,
    iterations: int | None,
    sort: str,
    match: str,
    as_json: bool,
) -> None:
    """A live view of the fleet: per dataset queue depth, time to empty, leases, rows/s; jobs
    with progress and ETA; workers with leases and rows/s; recent errors; stuck and dead
    chunks."""
    if once:
        iterations = 1
    sampler = _top.Sampler(client, sort=sort, match=match)
    sampler.sample()
    console = _console()
    if as_json or iterations is not None:
        for _ in range(iterations or 1):
            time.sleep(interval)
            view = sampler.sample()
            if as_json:
                click.echo(_render.dumps(view))
            else:
                console.print(_top.render(view))
        return
    # Ctrl-C is how an operator leaves the live view: not an error.
    with (
        contextlib.suppress(KeyboardInterrupt),
        Live(console=console, auto_refresh=False, screen=False) as live,
    ):
        while True:
            time.sleep(interval)
            live.update(_top.render(sampler.sample()), refresh=True)


# Every subcommand's help ends with what SERIES and TIME look like.
for _command in admin.commands.values():
    _command.epilog = _command.epilog or FORMATS
