"""The checks ``seamfill health`` runs, each a function returning a :class:`Result`: the
configuration file, Redis, QuestDB (HTTP and PGWire) and a metrics endpoint. (The coordinator's
check, with its TLS handling, is :mod:`seamfill.cli._health_coordinator`.)

A check never raises: whatever goes wrong becomes a failed result naming what was found and the
fix.
"""

from __future__ import annotations

import dataclasses
import importlib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "EXPECTED_SERIES",
    "Failed",
    "Result",
    "check_config",
    "check_metrics",
    "check_questdb_http",
    "check_questdb_pgwire",
    "check_redis",
    "redact",
    "run_check",
]

# Series a component's metrics endpoint must expose (its HELP lines appear even before the first
# observation). A test checks each name against what the code registers.
EXPECTED_SERIES: dict[str, tuple[str, ...]] = {
    "coordinator": (
        "seamfill_queue_depth",
        "seamfill_leases_in_flight",
        "seamfill_dead_letters",
        "backfill_completion_ratio",
        "seamfill_lease_expiries_total",
        "seamfill_rpc_latency_seconds",
    ),
    "worker": (
        "seamfill_worker_rows_written_total",
        "seamfill_worker_chunks_total",
        "seamfill_worker_leases_in_flight",
        "seamfill_worker_fetch_seconds",
    ),
    "sdk": (
        "seamless_sla_deadline_seconds",
        "seamless_backfill_wait_ms",
        "seamless_reads_total",
    ),
}
# The series that tells which component an endpoint belongs to.
_MARKERS = {
    "coordinator": "seamfill_queue_depth",
    "worker": "seamfill_worker_rows_written_total",
    "sdk": "seamless_sla_deadline_seconds",
}


@dataclasses.dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one check: ``ok`` None means skipped (nothing to check)."""

    name: str
    ok: bool | None
    detail: str
    fix: str = ""


class Failed(Exception):
    """Raised by a check's probe: what was found, and what to do about it."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


def run_check(name: str, check: Callable[[], str]) -> Result:
    """``check()``'s answer as a passed result, or whatever it raised as a failed one."""
    try:
        return Result(name, True, check())
    except Failed as e:
        return Result(name, False, e.detail, e.fix)
    except Exception as e:  # a health check reports every failure, whatever raised it
        return Result(name, False, f"{type(e).__name__}: {e}", "see the error above")


def check_config(path: str | None) -> tuple[Result, dict[str, Any]]:
    """Parse the YAML file; validate it with the coordinator's loader when that is installed."""
    if not path:
        return Result("config", None, "no file given (--config or SEAMFILL_CONFIG)"), {}
    data: dict[str, Any] = {}

    def parse() -> str:
        import yaml

        p = Path(path)
        if not p.is_file():
            raise Failed(f"{path} does not exist", "pass the coordinator's YAML with --config")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise Failed(f"{path} is not valid YAML: {e}", "fix the YAML syntax") from e
        if not isinstance(loaded, dict):
            raise Failed(
                f"{path} holds a {type(loaded).__name__}, not a mapping",
                "the file is a mapping of keys such as redis_url and datasets",
            )
        data.update(loaded)
        return _validate_with_coordinator(p) or f"{path} parses"

    return run_check("config", parse), data


def _validate_with_coordinator(path: Path) -> str:
    # Loaded by name: the SDK never depends on the coordinator, but when both are installed (a
    # coordinator image) the operator gets the coordinator's own, precise validation.
    try:
        config_mod = importlib.import_module("seamfill.coordinator.config")
    except ImportError:
        return ""
    from seamfill.core.errors import SeamfillError

    try:
        cfg = config_mod.CoordinatorConfig.from_yaml(path, env={})
    except SeamfillError as e:
        raise Failed(f"{path}: {e.message}", "correct the named key") from e
    return f"{path} is a valid coordinator config ({len(cfg.datasets)} datasets)"


def check_redis(url: str, key_prefix: str, timeout: float) -> Result:
    def probe() -> str:
        try:
            import redis
        except ImportError as e:
            raise Failed(
                "the redis client is not installed", "pip install 'seamfill-sdk[redis]'"
            ) from e
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        key = f"{key_prefix}health:{uuid.uuid4().hex}"
        try:
            client.ping()
            client.set(key, "1", px=60_000)
            if client.get(key) != b"1":
                raise Failed(f"{url} lost a write", "check Redis for eviction or replicas")
            client.delete(key)
        except redis.exceptions.ConnectionError as e:
            raise Failed(
                f"{url} is not reachable: {e}",
                "start Redis (`make services`) or set SEAMFILL_REDIS_URL",
            ) from e
        except redis.exceptions.ReadOnlyError as e:
            raise Failed(
                f"{url} is read-only: {e}", "point SEAMFILL_REDIS_URL at the primary, not a replica"
            ) from e
        except redis.exceptions.RedisError as e:
            raise Failed(
                f"{url} refused a write: {e}", "check Redis' auth, maxmemory policy and disk"
            ) from e
        finally:
            client.close()
        return f"{url} reachable and writable"

    return run_check("redis", probe)


def check_questdb_http(url: str, timeout: float) -> Result:
    def probe() -> str:
        target = url.rstrip("/") + "/ping"
        try:
            with urllib.request.urlopen(target, timeout=timeout) as reply:
                status = reply.status
        except (urllib.error.URLError, OSError) as e:
            raise Failed(
                f"{target} is not reachable: {e}",
                "start QuestDB (`make services`) or set SEAMFILL_QUESTDB_URL",
            ) from e
        if status not in (200, 204):
            raise Failed(f"{target} answered {status}", "is this QuestDB's HTTP port (9000)?")
        return f"{target} answered {status} (ILP/HTTP)"

    return run_check("questdb-http", probe)


def check_questdb_pgwire(dsn: str, timeout: float) -> Result:
    def probe() -> str:
        import psycopg

        try:
            with psycopg.connect(dsn, connect_timeout=max(1, int(timeout))) as conn:
                row = conn.execute("SELECT 1").fetchone()
        except psycopg.Error as e:
            raise Failed(
                f"{redact(dsn)} is not reachable: {str(e).strip()}",
                "start QuestDB (`make services`) or set SEAMFILL_QUESTDB_DSN",
            ) from e
        if not row or row[0] != 1:
            raise Failed(f"{redact(dsn)} answered {row!r} to SELECT 1", "check the DSN")
        return f"{redact(dsn)} answered SELECT 1"

    return run_check("questdb-pgwire", probe)


def redact(dsn: str) -> str:
    """``dsn`` with its password starred out."""
    head, sep, tail = dsn.rpartition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return dsn
    scheme, _, creds = head.partition("//")
    return f"{scheme}//{creds.split(':', 1)[0]}:***@{tail}"


def check_metrics(url: str, timeout: float) -> Result:
    def probe() -> str:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as reply:
                body = reply.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError) as e:
            raise Failed(
                f"{url} is not reachable: {e}",
                "start the process with --metrics-port, or fix the URL",
            ) from e
        names = {
            line.split()[2]
            for line in body.splitlines()
            if line.startswith("# HELP ") and len(line.split()) > 2
        }
        # prometheus_client names a counter family without _total in HELP lines.
        names |= {n + "_total" for n in names}
        kinds = [k for k, marker in _MARKERS.items() if marker in names]
        if not kinds:
            raise Failed(
                f"{url} exposes no seamfill series",
                "is this a coordinator, worker or SDK metrics port?",
            )
        missing = [s for k in kinds for s in EXPECTED_SERIES[k] if s not in names]
        if missing:
            raise Failed(
                f"{url} lacks {', '.join(missing)}",
                "the process runs an older or partial build: upgrade it",
            )
        return f"{url} exposes the {'+'.join(kinds)} series"

    return run_check("metrics", probe)
