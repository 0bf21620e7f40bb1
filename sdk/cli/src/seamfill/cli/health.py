"""``seamfill health``: can this fleet work? One line per check, OK or the fix.

Checks: the configuration file parses (and validates, when the coordinator is installed); the
coordinator answers SERVING on ``grpc.health.v1``, in plaintext or over TLS; Redis answers and
accepts a write; QuestDB answers over HTTP (``/ping``, the ILP/HTTP endpoint) and PGWire; each
metrics endpoint exposes the series its component exports. Exit 1 when any check fails, 2 for
bad usage. The checks themselves live in :mod:`seamfill.cli._health_checks` and
:mod:`seamfill.cli._health_coordinator`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence

import click

from seamfill.cli import render as _render
from seamfill.cli._health_checks import (
    Result,
    check_config,
    check_metrics,
    check_questdb_http,
    check_questdb_pgwire,
    check_redis,
)
from seamfill.cli._health_coordinator import Coordinator, check_coordinator

__all__ = ["DEFAULT_COORDINATOR", "Targets", "health", "render", "run_checks"]

DEFAULT_COORDINATOR = "127.0.0.1:50051"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_QUESTDB_URL = "http://127.0.0.1:9000"
DEFAULT_QUESTDB_DSN = "postgresql://admin:quest@127.0.0.1:8812/qdb"


@dataclasses.dataclass(frozen=True, slots=True)
class Targets:
    """Where each thing is; from options, then the config file, then SEAMFILL_* variables."""

    config: str | None
    coordinator: Coordinator
    redis_url: str
    key_prefix: str
    questdb_url: str
    questdb_dsn: str
    metrics: tuple[str, ...]
    timeout: float


def run_checks(t: Targets) -> list[Result]:
    """Every check, in order; a failing check never stops the ones after it."""
    config_result, data = check_config(t.config)
    storage = data.get("storage", {}).get("default", {}) if isinstance(data, Mapping) else {}
    redis_url = str(data.get("redis_url") or t.redis_url)
    results = [
        config_result,
        check_coordinator(t.coordinator, t.timeout),
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
    help="Coordinator address: HOST:PORT, grpc://HOST:PORT, or grpcs://HOST:PORT for TLS.",
)
@click.option("--token", envvar="SEAMFILL_TOKEN", default=None, help="Bearer token.")
@click.option("--tls", is_flag=True, help="Use TLS for a HOST:PORT coordinator address.")
@click.option(
    "--ca-file",
    default=None,
    help="PEM of the CA that signed the coordinator's certificate (TLS only; default: "
    "gRPC's roots, or GRPC_DEFAULT_SSL_ROOTS_FILE_PATH).",
)
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
    tls: bool,
    ca_file: str | None,
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
            Coordinator(coordinator, token, tls, ca_file),
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
