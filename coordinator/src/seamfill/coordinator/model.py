"""PURE reference model of one dataset's lease engine: the spec of ``lua/*.lua`` in code.

Coverage, chunks (with their want: the ranges of their cell some job still needs), leases,
jobs, the concurrency cap, pauses, cancels and dead letters, in plain Python. Every chunk
state change goes through :func:`seamfill.coordinator.leases.step`, the transition table.
The model-based test drives the real scripts and this model side by side and compares them
after every step. No I/O, no clock: expiry and retries come due only when the test says time
passed (:meth:`Engine.advance`).

The model is canonical where the scripts are lazy: a queued chunk whose every job is paused is
parked here at once (Acquire parks it when it meets it), one nobody wants is dropped at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from seamfill.coordinator.leases import Event, State, step

Ranges = list[tuple[int, int]]


def merge(rs: Ranges) -> Ranges:
    out: Ranges = []
    for a, b in sorted(r for r in rs if r[0] < r[1]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def minus(rs: Ranges, s: int, e: int) -> Ranges:
    out: Ranges = []
    for a, b in rs:
        out += [(a, min(b, s))] if a < s else []
        out += [(max(a, e), b)] if b > e else []
    return merge(out)


def meets(rs: Ranges, s: int, e: int) -> bool:
    return any(a < e and b > s for a, b in rs)


@dataclass
class Chunk:
    state: State
    want: Ranges
    s: int
    e: int
    jobs: set[str] = field(default_factory=set)
    attempts: int = 0
    token: int = 0
    worker: str = ""
    cancelled: bool = False


@dataclass
class Job:
    sym: str
    s: int
    e: int
    state: str = "running"
    total: int = 0
    done: int = 0
    failed: int = 0
    pending: set[str] = field(default_factory=set)


@dataclass
class Engine:
    """One dataset: ``span`` us per cell, at most ``cap`` leases at once (0: no cap)."""

    span: int
    cap: int = 0
    max_attempts: int = 3
    coverage: dict[str, Ranges] = field(default_factory=dict)
    chunks: dict[str, Chunk] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)

    # -- helpers -------------------------------------------------------------------------------

    def _move(self, lid: str, event: Event, to: State) -> None:
        c = self.chunks[lid]
        c.state = step(c.state, event, to)
        if to is State.ABSENT:
            del self.chunks[lid]

    def mode(self, lid: str) -> str:
        """'running', 'paused' or 'none', as ``jobs_mode`` in ``_lib.lua``."""
        c = self.chunks[lid]
        if c.cancelled:
            return "none"
        states = {self.jobs[j].state for j in c.jobs if j in self.jobs}
        if not c.jobs or "running" in states:
            return "running"
        return "paused" if "paused" in states else "none"

    def _requeue(self, lid: str, event: Event) -> None:
        where = {"running": State.QUEUED, "paused": State.PARKED, "none": State.ABSENT}
        self._move(lid, event, where[self.mode(lid)])

    def _finish(self, j: str) -> None:
        job = self.jobs[j]
        if not job.pending and job.state in ("running", "paused"):
            job.state = "failed" if job.failed else "done"

    def _settle(self, lid: str, j: str, outcome: str) -> None:
        job = self.jobs.get(j)
        if job is None:
            return
        if lid in job.pending:
            job.pending.discard(lid)
            if outcome == "done":
                job.done += 1
            else:
                job.failed += 1
        self._finish(j)

    def ready(self) -> list[str]:
        return sorted(lid for lid, c in self.chunks.items() if c.state is State.QUEUED)

    def leased(self) -> list[str]:
        return sorted(lid for lid, c in self.chunks.items() if c.state is State.LEASED)

    def room(self) -> int:
        return 10**9 if self.cap <= 0 else max(0, self.cap - len(self.leased()))

    def _canonical(self) -> None:
        for lid in self.ready():
            m = self.mode(lid)
            if m == "paused":
                self._move(lid, Event.PARK, State.PARKED)
            elif m == "none":
                self._move(lid, Event.DROP, State.ABSENT)

    # -- the engine's calls ----------------------------------------------------------------

    def ensure(self, j: str, sym: str, s: int, e: int) -> bool:
        """EnsureRange [s, e) as job ``j``; False when nothing was needed (no job)."""
        cov = self.coverage.get(sym, [])
        if s >= e or not _gaps(s, e, cov):
            return False
        job = self.jobs[j] = Job(sym, s, e)
        for cell in range(s - s % self.span, e, self.span):
            gaps = _gaps(max(cell, s), min(cell + self.span, e), cov)
            if not gaps:
                continue
            lid = f"{sym}@{cell}"
            c = self.chunks.get(lid)
            if c is None:
                c = self.chunks[lid] = Chunk(State.ABSENT, [], 0, 0)
                self._move(lid, Event.PLAN, State.QUEUED)
            elif c.state in (State.DEAD, State.PARKED):
                if c.state is State.DEAD:
                    c.attempts = 0
                self._move(lid, Event.PLAN, State.QUEUED)
            else:
                self._move(lid, Event.SHARE, c.state)
            c.cancelled = False
            c.want = merge(c.want + gaps)
            if c.state is not State.LEASED:
                c.s, c.e = c.want[0]  # the first gap: never the hull of two
            c.jobs.add(j)
            job.pending.add(lid)
            job.total += 1
        self._finish(j)
        self._canonical()
        return True

    def grant(self, lid: str, token: int, worker: str) -> None:
        c = self.chunks[lid]
        self._move(lid, Event.GRANT, State.LEASED)
        c.attempts += 1
        c.token, c.worker = token, worker

    def valid(self, lid: str, token: int, worker: str) -> bool:
        c = self.chunks.get(lid)
        return c is not None and c.state is State.LEASED and (c.token, c.worker) == (token, worker)

    def complete(self, lid: str) -> None:
        c = self.chunks[lid]
        cov = self.coverage.setdefault(lid.rpartition("@")[0], [])
        self.coverage[lid.rpartition("@")[0]] = merge([*cov, (c.s, c.e)])
        rest = minus(c.want, c.s, c.e)
        for j in sorted(c.jobs):
            job = self.jobs.get(j)
            if not rest or job is None or not meets(rest, job.s, job.e):
                self._settle(lid, j, "done")
                c.jobs.discard(j)
        if rest and c.jobs:
            c.want, (c.s, c.e), c.attempts = rest, rest[0], 0
            self._requeue(lid, Event.COMPLETE)
        else:
            self._move(lid, Event.COMPLETE, State.ABSENT)

    def fail(self, lid: str, retryable: bool) -> None:
        c = self.chunks[lid]
        if not retryable or c.attempts >= self.max_attempts:
            self._dead(lid, Event.FAIL_DEAD)
        else:
            self._move(lid, Event.FAIL_RETRY, State.BACKOFF)

    def _dead(self, lid: str, event: Event) -> None:
        c = self.chunks[lid]
        self._move(lid, event, State.DEAD)
        for j in sorted(c.jobs):
            self._settle(lid, j, "dead")

    def release(self, lid: str) -> None:
        self.chunks[lid].attempts -= 1
        self._requeue(lid, Event.RELEASE)

    def advance(self) -> None:
        """Time passes beyond every deadline and retry time: leases expire, retries come due."""
        for lid in self.leased():
            if self.chunks[lid].attempts >= self.max_attempts:
                self._dead(lid, Event.EXPIRE)
            else:
                self._requeue(lid, Event.EXPIRE)
        for lid in sorted(self.chunks):
            if self.chunks[lid].state is State.BACKOFF:
                self._requeue(lid, Event.RETRY_DUE)

    def control(self, j: str, action: str) -> bool:
        """Pause, resume or cancel job ``j``; False when its state refuses it."""
        job = self.jobs.get(j)
        allowed = {"pause": ("running",), "resume": ("paused",), "cancel": ("running", "paused")}
        if job is None or job.state not in allowed[action]:
            return False
        if action == "pause":
            job.state = "paused"
        elif action == "resume":
            job.state = "running"
            for lid in sorted(job.pending):
                if self.chunks[lid].state is State.PARKED:
                    self._move(lid, Event.RESUME, State.QUEUED)
        else:
            job.state = "cancelled"
            for lid in sorted(job.pending):
                c = self.chunks[lid]
                c.jobs.discard(j)
                if not c.jobs:
                    if c.state is State.LEASED:
                        c.cancelled = True
                    else:
                        self._move(lid, Event.DROP, State.ABSENT)
            job.pending.clear()
        self._canonical()
        return True


def _gaps(s: int, e: int, cov: Ranges) -> Ranges:
    out = [(s, e)]
    for a, b in cov:
        out = [p for r in out for p in minus([r], a, b)]
    return merge(out)
