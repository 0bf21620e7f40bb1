"""Every Redis key and channel the coordinator uses, in one place.

Layout (``P`` is the configured ``key_prefix``, ``D`` a dataset name, ``S`` a symbol, ``C`` a grid
cell start in microseconds, ``J`` a job's local id)::

    P{D}:cov:S          ZSET  coverage of one series: member "start:end", score end (coalesced)
    P{D}:chunk:S@C      HASH  one active chunk (queued, leased, backoff, parked or dead)
    P{D}:cjobs:S@C      SET   local ids of the jobs waiting on that chunk
    P{D}:ready          ZSET  chunks ready to lease; score = priority class * 1e12 + ordinal
    P{D}:leases         ZSET  leased chunks by deadline (the reaper's index)
    P{D}:delayed        ZSET  chunks waiting for their retry time, by retry time
    P{D}:parked         SET   chunks whose every job is paused
    P{D}:dead           ZSET  dead-lettered chunks, by time of death
    P{D}:token          STR   fencing-token counter (INCR on every grant)
    P{D}:stats          HASH  counters: chunks_done, rows_done, lease_expiries, retries, dead
    P{D}:rows_min       HASH  rows completed per minute (for rows/s), short-lived
    P{D}:job:J          HASH  a job
    P{D}:jpend:J        SET   chunks of job J not yet done or dead
    P{D}:jobs           ZSET  job local ids by creation time
    P{D}:fps:S          HASH  published fingerprints of a series by "start:end:as_of"
                              (the first per key kept, capped: a full hash refuses new keys)
    P{w}:workers        ZSET  worker ids by last seen
    P{w}:worker:W       HASH  a worker's record (sources, rows, draining)
    P{src:N}:bucket     HASH  token bucket of upstream source N
    P:wake              channel: "D" published when dataset D has work ready
    P:job               channel: "D:J" published when job J progressed or finished
    P:drain             channel: "W" published when worker W is asked to drain

Why a hash tag per dataset (``{D}``): Redis Cluster hashes only the text between the first ``{``
and the next ``}``. Dataset and source names are validated to contain no braces and the prefix may
not contain any, so the tag is always exactly the dataset — symbols, which are hostile data and may
contain braces, only ever follow the tag and cannot move a key to another slot. All keys one Lua
script touches (queue, leases, chunks, jobs and coverage of the dataset's series) therefore share
one slot, and datasets spread over the cluster. Scripts declare the dataset's fixed keys (queue,
leases, ...) in KEYS and derive chunk and job keys from the same ``P{D}:`` base inside Lua; a
cluster routes the call by the declared keys and serves the derived ones from the same slot.
A job belongs to one series, so its id carries its dataset (``D:J``) and can be routed without a
lookup. Chunk ids on the wire are ``D/S@C``.
"""

from __future__ import annotations

from dataclasses import dataclass

from seamfill.core.errors import InvalidArgument, JobNotFound, LeaseNotFound
from seamfill.core.types import Series


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """A chunk named by dataset, symbol and grid cell."""

    dataset: str
    symbol: str
    cell_us: int

    @property
    def local(self) -> str:
        """The id inside its dataset's keys: ``S@C``."""
        return f"{self.symbol}@{self.cell_us}"

    @property
    def chunk_id(self) -> str:
        """The id on the wire (also the lease id): ``D/S@C``."""
        return f"{self.dataset}/{self.symbol}@{self.cell_us}"

    @property
    def series(self) -> Series:
        return Series(self.dataset, self.symbol)

    @classmethod
    def parse(cls, chunk_id: str, field: str = "lease_id") -> ChunkRef:
        dataset, sep, rest = chunk_id.partition("/")
        symbol, at, cell = rest.rpartition("@")
        if not sep or not at or not symbol or not dataset or not cell.isdigit():
            raise LeaseNotFound(
                f"{field} {chunk_id!r} is not a chunk id: chunk ids look like "
                "DATASET/SYMBOL@CELL_START_US, as Acquire returned them"
            )
        return cls(dataset, symbol, int(cell))

    @classmethod
    def from_local(cls, dataset: str, local: str) -> ChunkRef:
        symbol, _, cell = local.rpartition("@")
        return cls(dataset, symbol, int(cell))


def split_job_id(job_id: str) -> tuple[str, str]:
    """``D:J`` -> (dataset, local job id)."""
    dataset, sep, local = job_id.rpartition(":")
    if not sep or not dataset or not local:
        raise JobNotFound(
            f"job_id {job_id!r} is not a job id: job ids look like "
            "DATASET:HEX, as EnsureRange returned them"
        )
    return dataset, local


class Keys:
    """Key names under one prefix. Methods taking a dataset return keys in its slot."""

    def __init__(self, prefix: str) -> None:
        if "{" in prefix or "}" in prefix:
            raise InvalidArgument(f"key_prefix {prefix!r} contains a brace: remove it")
        self.prefix = prefix

    def base(self, dataset: str) -> str:
        """Common start of every key of ``dataset`` (scripts append to it)."""
        return f"{self.prefix}{{{dataset}}}:"

    def coverage(self, dataset: str, symbol: str) -> str:
        return f"{self.base(dataset)}cov:{symbol}"

    def chunk(self, dataset: str, local: str) -> str:
        return f"{self.base(dataset)}chunk:{local}"

    def chunk_jobs(self, dataset: str, local: str) -> str:
        return f"{self.base(dataset)}cjobs:{local}"

    def ready(self, dataset: str) -> str:
        return f"{self.base(dataset)}ready"

    def leases(self, dataset: str) -> str:
        return f"{self.base(dataset)}leases"

    def delayed(self, dataset: str) -> str:
        return f"{self.base(dataset)}delayed"

    def parked(self, dataset: str) -> str:
        return f"{self.base(dataset)}parked"

    def dead(self, dataset: str) -> str:
        return f"{self.base(dataset)}dead"

    def token(self, dataset: str) -> str:
        return f"{self.base(dataset)}token"

    def stats(self, dataset: str) -> str:
        return f"{self.base(dataset)}stats"

    def rows_min(self, dataset: str) -> str:
        return f"{self.base(dataset)}rows_min"

    def job(self, dataset: str, local: str) -> str:
        return f"{self.base(dataset)}job:{local}"

    def job_pending(self, dataset: str, local: str) -> str:
        return f"{self.base(dataset)}jpend:{local}"

    def jobs(self, dataset: str) -> str:
        return f"{self.base(dataset)}jobs"

    def fingerprints(self, dataset: str, symbol: str) -> str:
        return f"{self.base(dataset)}fps:{symbol}"

    @property
    def workers(self) -> str:
        return f"{self.prefix}{{w}}:workers"

    def worker(self, worker_id: str) -> str:
        return f"{self.prefix}{{w}}:worker:{worker_id}"

    def bucket(self, source: str) -> str:
        return f"{self.prefix}{{src:{source}}}:bucket"

    @property
    def wake_channel(self) -> str:
        return f"{self.prefix}wake"

    @property
    def job_channel(self) -> str:
        return f"{self.prefix}job"

    @property
    def undrain_channel(self) -> str:
        """Worker ids whose drain was undone (replicas forget their cached drain)."""
        return f"{self.prefix}undrain"

    @property
    def drain_channel(self) -> str:
        return f"{self.prefix}drain"
