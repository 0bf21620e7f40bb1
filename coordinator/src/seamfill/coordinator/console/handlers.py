"""Request handlers of the console: read through the store and the operator views, render with
:mod:`pages` and :mod:`timeline`. ``?fragment=1`` answers with the page's live part only (the
console's script polls it every 1.5 s)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from aiohttp import web

from seamfill.coordinator import views
from seamfill.coordinator.service import Role, Runtime
from seamfill.core import ranges
from seamfill.core.errors import InvalidArgument
from seamfill.core.logs import log_event
from seamfill.core.quoting import series_text, shown
from seamfill.core.types import Priority, Series, TimeRange

from . import pages, states, timeline

log = logging.getLogger("seamfill.coordinator")
RT_KEY = web.AppKey("rt", Runtime)
"""Where the application keeps the replica's runtime."""
ROLE_KEY = web.RequestKey("role", Role)
"""The caller's role (absent: no token, or one refused)."""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DEFAULT_VIEW_US = 7 * 86_400_000_000
_WIDTH = 960
_DATASET_ROWS = 50


def rt_of(request: web.Request) -> Runtime:
    return request.app[RT_KEY]


def is_admin(request: web.Request) -> bool:
    role = request.get(ROLE_KEY)
    return role is not None and role >= Role.ADMIN


def render(request: web.Request, title: str, body: str, live: bool = False) -> str:
    rt = rt_of(request)
    role = request.get(ROLE_KEY)
    name = role.name.lower() if role is not None else "none"
    refresh = pages.url(request.path, **dict(request.query), fragment="1") if live else ""
    return pages.layout(title, body, role=name, auth=rt.auth.enabled, live=refresh)


def html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html")


def page(request: web.Request, title: str, body: str) -> web.Response:
    if request.query.get("fragment"):
        return html(body)
    return html(render(request, title, body, live=True))


def error_page(request: web.Request, message: str) -> str:
    return render(request, "Error", f'<p class="error">{pages.esc(message)}</p>')


def login_body(rt: Runtime, error: str) -> str:
    return pages.login(error, rt.auth.enabled)


async def fleet(request: web.Request) -> web.Response:
    store = rt_of(request).store
    st = await views.stats(store)
    body = pages.fleet(st, await views.workers(store), store.clock())
    return page(request, "Fleet", body)


async def jobs(request: web.Request) -> web.Response:
    items = await rt_of(request).store.jobs(limit=200)
    return page(request, "Jobs", pages.jobs(items, is_admin(request)))


async def dead(request: web.Request) -> web.Response:
    store = rt_of(request).store
    chunks = await views.dead_letters(store, request.query.get("dataset", ""), 500)
    return page(request, "Dead letters", pages.dead(chunks, is_admin(request)))


def view_of(request: web.Request, default: TimeRange) -> TimeRange:
    """The range asked for in ``start``/``end`` (ISO-8601 or microseconds), else ``default``."""
    q = request.query
    if not q.get("start") and not q.get("end"):
        return default
    start = _when(q.get("start"), default.start_us, "start")
    end = _when(q.get("end"), default.end_us, "end")
    if end <= start:
        raise InvalidArgument(f"end ({q.get('end')!r}) is not after start ({q.get('start')!r})")
    return states.clamp(TimeRange(start, end))


def _when(text: str | None, default: int, field: str) -> int:
    """ISO-8601 (``2024-01-31``, ``2024-01-31T12:00:00Z``; UTC unless it names a zone) or
    epoch microseconds. Parsed with the standard library: the SDK's parser loads pandas, whose
    import would stall the coordinator's event loop for seconds on the first page."""
    if not text:
        return default
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        return int(stripped)
    try:
        t = dt.datetime.fromisoformat(stripped)
    except ValueError as e:
        raise InvalidArgument(
            f"{field} = {text!r} is not a time: write it like 2024-01-31 or 2024-01-31T12:00:00Z"
        ) from e
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return (t - _EPOCH) // dt.timedelta(microseconds=1)


def _width(request: web.Request) -> int:
    try:
        return min(max(int(request.query.get("width", _WIDTH)), 100), 4000)
    except ValueError as e:
        raise InvalidArgument("width must be a number of pixels, e.g. 960") from e


async def _default_view(rt: Runtime, dataset: str, symbols: set[str] | None) -> TimeRange:
    now = rt.store.clock()
    wanted = [
        j.range
        for j in await rt.store.jobs(limit=1000)
        if j.series.dataset == dataset and (symbols is None or j.series.symbol in symbols)
    ]
    if not wanted:
        return states.clamp(TimeRange(now - _DEFAULT_VIEW_US, now))
    return states.clamp(TimeRange(min(r.start_us for r in wanted), max(r.end_us for r in wanted)))


async def series(request: web.Request) -> web.Response:
    rt = rt_of(request)
    text = request.query.get("series", "")
    if not text:
        return page(request, "Series", pages.picker("", None) + pages.legend())
    s = Series.parse(text)
    rt.store.dataset(s.dataset, "series")
    view = view_of(request, await _default_view(rt, s.dataset, {s.symbol}))
    width = _width(request)
    by_state = await states.series_states(rt.store, s, view)
    row = timeline.Row(
        label=shown(s.symbol), states=dict(by_state), link=lambda r: _series_link(s, r, width)
    )
    svg = timeline.svg(view, width, [row], pages.range_text, states.ticks(view))
    admin = is_admin(request)

    def backfill(r: TimeRange) -> str:
        payload = {"dataset": s.dataset, "symbol": s.symbol, "start_us": r.start_us}
        return pages.action(
            "backfill this gap", "/api/ensure", {**payload, "end_us": r.end_us}, admin
        )

    zoom = pages.zoom_bar(lambda r: _series_link(s, r, width), view, states.zooms(view))
    body = (
        pages.picker(text, view)
        + zoom
        + f'<div class="chart">{svg}</div>'
        + pages.legend()
        + pages.interval_list("gaps", "gap", by_state.get("gap", []), backfill)
        + pages.interval_list("leased", "leased", by_state.get("leased", []))
        + pages.interval_list("backing off", "backoff", by_state.get("backoff", []))
        + pages.interval_list("dead letters", "dead", by_state.get("dead", []))
    )
    return page(request, f"Series {series_text(s)}", body)


def _series_link(s: Series, r: TimeRange, width: int) -> str:
    r = states.clamp(r)
    return pages.url(
        "/series",
        series=str(s),
        start=pages.iso(r.start_us),
        end=pages.iso(r.end_us),
        width=width if width != _WIDTH else None,
    )


async def dataset(request: web.Request) -> web.Response:
    rt = rt_of(request)
    name = request.query.get("dataset", "")
    ds = rt.store.dataset(name, "dataset")
    symbols = request.query.getall("symbol", [])
    if not symbols:
        seen = {
            j.series.symbol for j in await rt.store.jobs(limit=1000) if j.series.dataset == name
        }
        symbols = sorted(seen)[:_DATASET_ROWS]
    view = view_of(request, await _default_view(rt, name, set(symbols)))
    width = _width(request)
    rows = []
    for sym in symbols[:_DATASET_ROWS]:
        s = Series(ds.name, sym)
        by_state = await states.series_states(rt.store, s, view)
        rows.append(
            timeline.Row(
                label=shown(sym),
                states=dict(by_state),
                link=lambda r, s=s: _series_link(s, r, width),  # type: ignore[misc]
            )
        )
    svg = timeline.svg(view, width, rows, pages.range_text, states.ticks(view))
    note = "" if rows else "<p>No symbols yet: symbols appear here once a job asks for them.</p>"
    body = (
        f"<p>{pages.esc(pages.range_text(view))} · symbols of the newest jobs, "
        f"or pass <code>symbol=</code> in the address</p>"
        f'<div class="chart">{svg}</div>{note}' + pages.legend()
    )
    return page(request, f"Dataset {ds.name}", body)


# -- actions (admin role checked by the server's middleware) -----------------------------------


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError as e:
        raise InvalidArgument("the body must be a JSON object") from e
    if not isinstance(data, dict):
        raise InvalidArgument("the body must be a JSON object")
    return data


def _done(message: str, **extra: Any) -> web.Response:
    return web.json_response({"ok": True, "message": message, **extra})


async def job_action(request: web.Request) -> web.Response:
    action = request.match_info["action"]
    if action not in ("pause", "resume", "cancel"):
        raise InvalidArgument(f"action {action!r}: use pause, resume or cancel")
    job_id = str((await _body(request)).get("job_id", ""))
    if not job_id:
        raise InvalidArgument("job_id is empty: give a job id")
    job = await rt_of(request).store.control_job(job_id, action)
    return _done(f"{job.job_id}: {job.state.value}", state=job.state.value)


async def ensure(request: web.Request) -> web.Response:
    rt = rt_of(request)
    data = await _body(request)
    try:
        s = Series(str(data["dataset"]), str(data["symbol"]))
        r = TimeRange(int(data["start_us"]), int(data["end_us"])).validate()
    except (KeyError, TypeError, ValueError) as e:
        raise InvalidArgument("give dataset, symbol, start_us and end_us") from e
    ds = rt.store.dataset(s.dataset)
    r = ranges.align_outward(r, ds.interval_us)
    job = await rt.store.ensure(s, r, Priority.NORMAL, requested_by="console")
    if job is None:
        return _done("nothing to do: the range is covered or still forming")
    log_event(
        log,
        "seamless.job.created",
        job=job.job_id,
        series=str(s),
        chunks=job.progress.chunks_total,
        priority="normal",
    )
    return _done(f"job {job.job_id}: {job.progress.chunks_total} chunk(s)", job_id=job.job_id)


async def requeue(request: web.Request) -> web.Response:
    data = await _body(request)
    ids = data.get("chunk_ids", [])
    if not isinstance(ids, list) or not all(isinstance(x, str) for x in ids):
        raise InvalidArgument("chunk_ids must be a list of chunk ids")
    if not ids and data.get("all") is not True:
        raise InvalidArgument("give chunk_ids, or all: true")
    n = await views.requeue_dead(rt_of(request).store, ids, data.get("all") is True)
    return _done(f"requeued {n} chunk(s)", requeued=n)
