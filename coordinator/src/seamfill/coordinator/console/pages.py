"""HTML of the console's pages. Every value that comes from data goes through :func:`esc`
(symbols, job ids, worker ids and errors are hostile text); nothing here runs a script inline,
so the Content-Security-Policy can forbid it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any
from urllib.parse import urlencode

from seamfill.core.quoting import series_text
from seamfill.core.types import Chunk, Job, JobState, Stats, TimeRange, WorkerInfo

from .timeline import LEGEND, STATES

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
NAV = (("/", "Fleet"), ("/jobs", "Jobs"), ("/series", "Series"), ("/dead", "Dead letters"))


def esc(value: Any) -> str:
    """The one quoting function of the console: text safe in element content and attributes."""
    return escape(str(value), quote=True)


def url(path: str, **query: Any) -> str:
    """``path?k=v`` with every value percent-encoded (then :func:`esc` it in an attribute)."""
    q = {k: v for k, v in query.items() if v is not None and v != ""}
    return f"{path}?{urlencode(q)}" if q else path


def iso(us: int) -> str:
    t = _EPOCH + dt.timedelta(microseconds=us)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{t.microsecond:06d}Z" if t.microsecond else "Z")


def duration(us: float) -> str:
    """``950ms``, ``3.5s``, ``4m10s``, ``2h05m``, ``3d04h``."""
    if us < 1_000_000:
        return f"{int(us // 1000)}ms"
    s = us / 1e6
    if s < 60:
        return f"{s:.1f}s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m}m{sec:02d}s"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m"
    d, h = divmod(h, 24)
    return f"{d}d{h:02d}h"


def range_text(r: TimeRange) -> str:
    return f"[{iso(r.start_us)}, {iso(r.end_us)}) {duration(r.duration_us)}"


def eta(job: Job) -> str:
    """The ETA of a running job; paused, cancelled and finished jobs have none."""
    if job.state is not JobState.RUNNING or job.progress.eta_seconds < 0:
        return "-"
    return duration(job.progress.eta_seconds * 1e6)


def action(label: str, endpoint: str, payload: dict[str, Any], admin: bool) -> str:
    """A button the console's script posts (the admin role is checked again on the server)."""
    disabled = "" if admin else ' disabled title="needs the admin role"'
    return (
        f'<button type="button" class="act" data-url="{esc(endpoint)}" '
        f'data-body="{esc(json.dumps(payload))}"{disabled}>{esc(label)}</button>'
    )


def layout(title: str, body: str, *, role: str, auth: bool, live: str = "") -> str:
    nav = "".join(f'<a href="{esc(h)}">{esc(t)}</a>' for h, t in NAV)
    who = f"role: {esc(role)}" if auth else "auth off (open on loopback)"
    login = '<a href="/login">log in</a>' if auth else ""
    if auth and role != "none":
        login = '<form method="post" action="/logout"><button>log out</button></form>'
    main = f'<main id="live" data-refresh="{esc(live)}">{body}</main>' if live else body
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} · seamfill</title>"
        '<link rel="stylesheet" href="/static/console.css">'
        '<script src="/static/console.js" defer></script></head><body>'
        f'<header><b>seamfill</b><nav>{nav}</nav><span class="who">{who} {login}</span></header>'
        f'<p id="flash" role="status"></p><h1>{esc(title)}</h1>{main}</body></html>'
    )


def table(columns: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table of cells that are already HTML (escape values before passing them)."""
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{esc(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def fleet(stats: Stats, workers: Sequence[WorkerInfo], now_us: int) -> str:
    ds_rows = [
        [
            f'<a href="{esc(url("/dataset", dataset=d.dataset))}">{esc(d.dataset)}</a>',
            esc(d.queued),
            esc(d.leased),
            esc(d.backoff),
            f'<a href="{esc(url("/dead", dataset=d.dataset))}">{esc(d.dead)}</a>',
            esc(f"{d.rows_per_second:,.0f}"),
            esc(f"{d.rows_done:,}"),
        ]
        for d in stats.datasets
    ]
    w_rows = [
        [
            esc(w.worker_id),
            esc(", ".join(w.sources) or "any"),
            esc(w.leases),
            esc(duration(max(0, now_us - w.last_seen_us))) + " ago",
            "draining" if w.draining else "active",
            esc(f"{w.rows:,}"),
        ]
        for w in workers
    ]
    summary = (
        f'<p class="summary">jobs running: <b id="jobs-running">{esc(stats.jobs_running)}</b> · '
        f"workers seen: <b>{esc(stats.workers)}</b> · as of {esc(iso(stats.as_of_us))}</p>"
    )
    return (
        summary
        + "<h2>Datasets</h2>"
        + table(
            ["dataset", "queued", "leased", "backoff", "dead", "rows/s", "rows done"],
            ds_rows,
            "datasets",
        )
        + "<h2>Workers</h2>"
        + table(["worker", "sources", "leases", "last seen", "state", "rows"], w_rows, "workers")
    )


def jobs(items: Sequence[Job], admin: bool) -> str:
    rows = []
    for j in items:
        p = j.progress
        total = max(p.chunks_total, 1)
        buttons = []
        if j.state is JobState.RUNNING:
            buttons.append(action("pause", "/api/job/pause", {"job_id": j.job_id}, admin))
        if j.state is JobState.PAUSED:
            buttons.append(action("resume", "/api/job/resume", {"job_id": j.job_id}, admin))
        if not j.finished:
            buttons.append(action("cancel", "/api/job/cancel", {"job_id": j.job_id}, admin))
        rows.append(
            [
                esc(j.job_id),
                f'<a href="{esc(series_url(j.series.dataset, j.series.symbol, j.range))}">'
                f"{esc(series_text(j.series))}</a>",
                f'<span class="state st-{esc(j.state.value)}">{esc(j.state.value)}</span>',
                f'<progress max="{total}" value="{p.chunks_done}"></progress> '
                f'<span class="done">{esc(p.chunks_done)}/{esc(p.chunks_total)}</span>',
                esc(f"{p.rows_per_second:,.0f}"),
                esc(eta(j)),
                esc(j.error),
                " ".join(buttons),
            ]
        )
    return table(
        ["job", "series", "state", "progress (chunks)", "rows/s", "ETA", "error", ""],
        rows,
        "jobs",
    )


def series_url(dataset: str, symbol: str, r: TimeRange | None = None) -> str:
    if r is None:
        return url("/series", series=f"{dataset}/{symbol}")
    return url("/series", series=f"{dataset}/{symbol}", start=iso(r.start_us), end=iso(r.end_us))


def legend() -> str:
    items = "".join(
        f'<span class="key"><svg width="12" height="12"><rect class="s-{esc(s)}" width="12" '
        f'height="12"/></svg> {esc(LEGEND[s])}</span>'
        for s in STATES
        if s != "covered-empty"
    )
    return f'<p class="legend">{items}</p>'


def picker(series: str, view: TimeRange | None) -> str:
    start, end = (iso(view.start_us), iso(view.end_us)) if view else ("", "")
    return (
        '<form class="picker" method="get" action="/series">'
        f'<label>series <input name="series" value="{esc(series)}" '
        'placeholder="DATASET/SYMBOL, e.g. demo.ohlcv_1m/BTC-USDT" size="40"></label> '
        f'<label>from <input name="start" value="{esc(start)}" '
        'placeholder="2024-01-01T00:00:00Z"></label> '
        f'<label>to <input name="end" value="{esc(end)}" placeholder="2024-02-01"></label> '
        "<button>show</button></form>"
    )


def zoom_bar(make: Any, view: TimeRange, steps: dict[str, TimeRange]) -> str:
    links = " ".join(
        f'<a class="zoom" href="{esc(make(r))}">{esc(k)}</a>' for k, r in steps.items()
    )
    return f'<p class="zoombar">{esc(range_text(view))} · {links}</p>'


def interval_list(title: str, state: str, items: Sequence[TimeRange], extra: Any = None) -> str:
    if not items:
        return ""
    shown = items[:50]
    lis = "".join(
        f'<li class="s-{esc(state)}">{esc(range_text(r))} {extra(r) if extra else ""}</li>'
        for r in shown
    )
    more = f"<li>… {len(items) - len(shown)} more: zoom in</li>" if len(items) > len(shown) else ""
    return f'<h3>{esc(title)} ({len(items)})</h3><ul class="ranges">{lis}{more}</ul>'


def dead(chunks: Sequence[Chunk], admin: bool) -> str:
    rows = [
        [
            esc(c.chunk_id),
            f'<a href="{esc(series_url(c.series.dataset, c.series.symbol, c.range))}">'
            f"{esc(series_text(c.series))}</a>",
            esc(range_text(c.range)),
            esc(c.attempts),
            f'<pre class="err">{esc(c.last_error)}</pre>',
            action("requeue", "/api/dead/requeue", {"chunk_ids": [c.chunk_id]}, admin),
        ]
        for c in chunks
    ]
    every = action("requeue all", "/api/dead/requeue", {"all": True}, admin) if chunks else ""
    return (
        table(["chunk", "series", "range", "attempts", "last error", ""], rows, "dead")
        + f"<p>{every}</p>"
    )


def login(error: str, auth: bool) -> str:
    if not auth:
        return "<p>This coordinator has no auth tokens configured: the console is open.</p>"
    msg = f'<p class="error">{esc(error)}</p>' if error else ""
    return (
        f"{msg}<p>Paste a token from the coordinator's auth config: a <i>reader</i> token shows "
        "the pages, an <i>admin</i> token also allows pause, resume, cancel, backfill and "
        "requeue. It is kept in an HttpOnly cookie of this site only.</p>"
        '<form method="post" action="/login"><label>token <input type="password" name="token" '
        'autocomplete="current-password" size="40"></label> <button>log in</button></form>'
    )
