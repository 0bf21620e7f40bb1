"""``seamfill health``: can this fleet work? One line per check, OK or the fix.

Checks: the configuration file parses (and validates, when the coordinator is installed); the
coordinator answers SERVING on ``grpc.health.v1``; Redis answers and accepts a write; QuestDB
answers over HTTP (``/ping``, the ILP/HTTP endpoint) and PGWire; each metrics endpoint exposes the
series its component exports. Exit 1 when any check fails, 2 for bad usage.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from seamfill.sdk import _render

DEFAULT_COORDINATOR = "127.0.0.1:50051"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_QUESTDB_URL = "http://127.0.0.1:9000"
DEFAULT_QUESTDB_DSN = "postgresql://admin:quest@127.0.0.1:8812/qdb"

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


class _Failed(Exception):
    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail, self.fix = detail, fix


def _run(name: str, check: Callable[[], str]) -> Result:
    try:
        return Result(name, True, check())
    except _Failed as e:
        return Result(name, False, e.detail, e.fix)
    except Exception as e:  # a health check reports every failure, whatever raised it
        return Result(name, False, f"{type(e).__name__}: {e}", "see the error above")


@dataclasses.dataclass(frozen=True, slots=True)
class Targets:
    """Where each thing is; from options, then the config file, then SEAMFILL_* variables."""

    config: str | None
    coordinator: str
    token: str | None
    redis_url: str
    key_prefix: str
    questdb_url: str
    questdb_dsn: str
    metrics: tuple[str, ...]
    timeout: float


def check_config(path: str | None) -> tuple[Result, dict[str, Any]]:
    """Parse the YAML file; validate it with the coordinator's loader when that is installed."""
    if not path:
        return Result("config", None, "no file given (--config or SEAMFILL_CONFIG)"), {}
    data: dict[str, Any] = {}

    def parse() -> str:
        import yaml

        p = Path(path)
        if not p.is_file():
            raise _Failed(f"{path} does not exist", "pass the coordinator's YAML with --config")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise _Failed(f"{path} is not valid YAML: {e}", "fix the YAML syntax") from e
        if not isinstance(loaded, dict):
            raise _Failed(
                f"{path} holds a {type(loaded).__name__}, not a mapping",
                "the file is a mapping of keys such as redis_url and datasets",
            )
        data.update(loaded)
        return _validate_with_coordinator(p) or f"{path} parses"

    return _run("config", parse), data


def _validate_with_coordinator(path: Path) -> str:
    # Loaded by name: the SDK never depends on the coordinator, but when both are installed (a
    # coordinator image) the operator gets the coordinator's own, precise validation.
    try:
        config_mod = importlib.import_module("seamfill.coordinator.config")
    except ImportError:
        return ""
    from seamfill.sdk.errors import SeamfillError

    try:
        cfg = config_mod.CoordinatorConfig.from_yaml(path, env={})
    except SeamfillError as e:
        raise _Failed(f"{path}: {e.message}", "correct the named key") from e
    return f"{path} is a valid coordinator config ({len(cfg.datasets)} datasets)"


def check_coordinator(address: str, token: str | None, timeout: float) -> Result:
    def probe() -> str:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        md = [("authorization", f"Bearer {token}")] if token else None
        with grpc.insecure_channel(address) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=timeout, metadata=md
                )
            except grpc.RpcError as e:
                code = e.code().name if hasattr(e, "code") else "UNKNOWN"
                raise _Failed(
                    f"{address} did not answer the health check ({code})",
                    "start it with `seamfill coordinator serve --config FILE --port PORT`, or "
                    "point --coordinator / SEAMFILL_COORDINATOR at a running one",
                ) from e
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        if status != "SERVING":
            raise _Failed(
                f"{address} is {status}", "it is starting, draining or has lost Redis: see its logs"
            )
        return f"{address} SERVING"

    return _run("coordinator", probe)


def check_redis(url: str, key_prefix: str, timeout: float) -> Result:
    def probe() -> str:
        try:
            import redis
        except ImportError as e:
            raise _Failed(
                "the redis client is not installed", "pip install 'seamfill-sdk[redis]'"
            ) from e
        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        key = f"{key_prefix}health:{uuid.uuid4().hex}"
        try:
            client.ping()
            client.set(key, "1", px=60_000)
            if client.get(key) != b"1":
                raise _Failed(f"{url} lost a write", "check Redis for eviction or replicas")
            client.delete(key)
        except redis.exceptions.ConnectionError as e:
            raise _Failed(
                f"{url} is not reachable: {e}",
                "start Redis (`make services`) or set SEAMFILL_REDIS_URL",
            ) from e
        except redis.exceptions.ReadOnlyError as e:
            raise _Failed(
                f"{url} is read-only: {e}", "point SEAMFILL_REDIS_URL at the primary, not a replica"
            ) from e
        except redis.exceptions.RedisError as e:
            raise _Failed(
                f"{url} refused a write: {e}", "check Redis' auth, maxmemory policy and disk"
            ) from e
        finally:
            client.close()
        return f"{url} reachable and writable"

    return _run("redis", probe)


def check_questdb_http(url: str, timeout: float) -> Result:
    def probe() -> str:
        target = url.rstrip("/") + "/ping"
        try:
            with urllib.request.urlopen(target, timeout=timeout) as reply:
                status = reply.status
        except (urllib.error.URLError, OSError) as e:
            raise _Failed(
                f"{target} is not reachable: {e}",
                "start QuestDB (`make services`) or set SEAMFILL_QUESTDB_URL",
            ) from e
        if status not in (200, 204):
            raise _Failed(f"{target} answered {status}", "is this QuestDB's HTTP port (9000)?")
        return f"{target} answered {status} (ILP/HTTP)"

    return _run("questdb-http", probe)


def check_questdb_pgwire(dsn: str, timeout: float) -> Result:
    def probe() -> str:
        import psycopg

        try:
            with psycopg.connect(dsn, connect_timeout=max(1, int(timeout))) as conn:
                row = conn.execute("SELECT 1").fetchone()
        except psycopg.Error as e:
            raise _Failed(
                f"{_redact(dsn)} is not reachable: {str(e).strip()}",
                "start QuestDB (`make services`) or set SEAMFILL_QUESTDB_DSN",
            ) from e
        if not row or row[0] != 1:
            raise _Failed(f"{_redact(dsn)} answered {row!r} to SELECT 1", "check the DSN")
        return f"{_redact(dsn)} answered SELECT 1"

    return _run("questdb-pgwire", probe)


def _redact(dsn: str) -> str:
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
            raise _Failed(
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
            raise _Failed(
                f"{url} exposes no seamfill series",
                "is this a coordinator, worker or SDK metrics port?",
            )
        missing = [s for k in kinds for s in EXPECTED_SERIES[k] if s not in names]
        if missing:
            raise _Failed(
                f"{url} lacks {', '.join(missing)}",
                "the process runs an older or partial build: upgrade it",
            )
        return f"{url} exposes the {'+'.join(kinds)} series"

    return _run("metrics", probe)


def run_checks(t: Targets) -> list[Result]:
    """Every check, in order; a failing check never stops the ones after it."""
    config_result, data = check_config(t.config)
    storage = data.get("storage", {}).get("default", {}) if isinstance(data, Mapping) else {}
    redis_url = str(data.get("redis_url") or t.redis_url)
    results = [
        config_result,
        check_coordinator(t.coordinator, t.token, t.timeout),
        check_redis(redis_url, str(data.get("key_prefix") or t.key_prefix), t.timeout),
        check_questdb_http(str(storage.get("http") or t.questdb_url), t.timeout),
        check_questdb_pgwire(str(storage.get("dsn") or t.questdb_dsn), t.timeout),
    ]
    if t.metrics:
        results.extend(check_metrics(u, t.timeout) for u in t.metrics)
    else:
        results.append(
            Result(
                "metrics",
                None,
                "no endpoint given",
                "pass --metrics http://HOST:PORT/metrics (repeatable)",
            )
        )
    return results


def render(results: Sequence[Result]) -> list[str]:
    """One line per check: ``OK``, ``SKIP`` or ``FAIL`` with what to do about it."""
    lines = []
    width = max(len(r.name) for r in results)
    for r in results:
        word = {True: "OK  ", False: "FAIL", None: "SKIP"}[r.ok]
        line = f"{word} {r.name:<{width}}  {r.detail}"
        if r.fix and r.ok is not True:
            line += f" -> {'fix' if r.ok is False else 'to check'}: {r.fix}"
        lines.append(line)
    return lines


@click.command("health")
@click.option(
    "--config",
    "config",
    envvar="SEAMFILL_CONFIG",
    default=None,
    help="Coordinator YAML to parse; its redis_url and storage are checked too.",
)
@click.option(
    "--coordinator",
    envvar="SEAMFILL_COORDINATOR",
    default=DEFAULT_COORDINATOR,
    show_default=True,
    help="Coordinator address HOST:PORT.",
)
@click.option("--token", envvar="SEAMFILL_TOKEN", default=None, help="Bearer token.")
@click.option(
    "--redis-url", envvar="SEAMFILL_REDIS_URL", default=DEFAULT_REDIS_URL, show_default=True
)
@click.option(
    "--key-prefix",
    envvar="SEAMFILL_KEY_PREFIX",
    default="seamfill:",
    show_default=True,
    help="Prefix of the scratch key the write check uses.",
)
@click.option(
    "--questdb-url", envvar="SEAMFILL_QUESTDB_URL", default=DEFAULT_QUESTDB_URL, show_default=True
)
@click.option(
    "--questdb-dsn", envvar="SEAMFILL_QUESTDB_DSN", default=DEFAULT_QUESTDB_DSN, show_default=True
)
@click.option(
    "--metrics",
    "metrics",
    multiple=True,
    envvar="SEAMFILL_METRICS_URLS",
    help="A metrics endpoint URL to check (repeatable; env: space-separated).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 60),
    default=3.0,
    show_default=True,
    help="Seconds to wait for each check.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def health(
    config: str | None,
    coordinator: str,
    token: str | None,
    redis_url: str,
    key_prefix: str,
    questdb_url: str,
    questdb_dsn: str,
    metrics: tuple[str, ...],
    timeout: float,
    as_json: bool,
) -> None:
    """Check the configuration, coordinator, Redis, QuestDB and metrics endpoints."""
    started = time.monotonic()
    results = run_checks(
        Targets(
            config,
            coordinator,
            token,
            redis_url,
            key_prefix,
            questdb_url,
            questdb_dsn,
            tuple(metrics),
            timeout,
        )
    )
    if as_json:
        click.echo(
            _render.dumps({"ok": all(r.ok is not False for r in results), "checks": results})
        )
    else:
        for line in render(results):
            click.echo(line)
        failed = [r.name for r in results if r.ok is False]
        took = f"{time.monotonic() - started:.1f}s"
        click.echo(
            f"{len(failed)} failed: {', '.join(failed)} ({took})"
            if failed
            else f"all checks passed ({took})"
        )
    if any(r.ok is False for r in results):
        # SystemExit, not ctx.exit: the root command runs click in non-standalone mode.
        raise SystemExit(1)
