"""``seamfill worker run``: a long-lived worker process."""

from __future__ import annotations

import asyncio
import importlib
import signal
from collections.abc import Callable

import click

from seamfill.core.errors import ConfigError
from seamfill.core.logs import configure
from seamfill.sdk.backfill.fetchers import Fetcher
from seamfill.sdk.backfill.sink import QuestDBSink
from seamfill.sdk.client._types import check_token_transport, parse_address
from seamfill.worker.config import WorkerConfig
from seamfill.worker.leases import CoordinatorClient
from seamfill.worker.loop import Worker

__all__ = ["worker"]


@click.group()
def worker() -> None:
    """Backfill workers: lease chunks, fetch, write to QuestDB, verify, complete."""


def _plugins(specs: tuple[str, ...]) -> dict[str, Callable[..., Fetcher]]:
    out: dict[str, Callable[..., Fetcher]] = {}
    for spec in specs:
        name, sep, target = spec.partition("=")
        module, colon, attr = target.partition(":")
        if not (sep and colon and name and module and attr):
            raise click.BadParameter(
                f"{spec!r} is not NAME=module:attribute", param_hint="--fetcher"
            )
        try:
            out[name] = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise click.BadParameter(
                f"{target!r} cannot be imported: {e}", param_hint="--fetcher"
            ) from e
    return out


@worker.command("run")
@click.option(
    "--coordinator",
    envvar="SEAMFILL_COORDINATOR",
    default="127.0.0.1:50051",
    show_default=True,
    help="Coordinator address host:port.",
)
@click.option(
    "--id",
    "worker_id",
    envvar="SEAMFILL_WORKER_ID",
    default="",
    help="Worker name (default host-pid).",
)
@click.option(
    "--sources",
    envvar="SEAMFILL_WORKER_SOURCES",
    default="",
    help="Comma-separated sources to serve (default: any).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    envvar="SEAMFILL_WORKER_CONCURRENCY",
    default=4,
    show_default=True,
    help="Leases in flight at once.",
)
@click.option(
    "--questdb-url",
    envvar="SEAMFILL_QUESTDB_URL",
    default="http://127.0.0.1:9000",
    show_default=True,
    help="QuestDB HTTP endpoint (ILP/HTTP and queries).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    envvar="SEAMFILL_WORKER_METRICS_PORT",
    default=None,
    help="Serve Prometheus /metrics on this port (0: any free port).",
)
@click.option(
    "--metrics-host",
    envvar="SEAMFILL_WORKER_METRICS_HOST",
    default="127.0.0.1",
    show_default=True,
    help="Address the metrics endpoint binds (0.0.0.0 for a scraper on another host or pod).",
)
@click.option(
    "--grace-seconds",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    envvar="SEAMFILL_WORKER_GRACE_SECONDS",
    help="After SIGTERM, time for chunks already writing to finish.",
)
@click.option(
    "--token", envvar="SEAMFILL_WORKER_TOKEN", default="", help="Bearer token of the worker role."
)
@click.option(
    "--acquire-wait-ms",
    type=click.IntRange(min=0),
    default=30_000,
    show_default=True,
    help="Long-poll time of one Acquire.",
)
@click.option(
    "--fetcher",
    "fetcher_specs",
    multiple=True,
    metavar="NAME=module:attr",
    help="Add a fetcher without packaging it (repeatable).",
)
@click.option(
    "--allow-plaintext-token",
    is_flag=True,
    envvar="SEAMFILL_ALLOW_PLAINTEXT_TOKEN",
    help="Send the token without TLS to a non-loopback coordinator (logs a warning).",
)
@click.option("--log-level", default="INFO", show_default=True)
def run(
    coordinator: str,
    worker_id: str,
    sources: str,
    concurrency: int,
    questdb_url: str,
    metrics_port: int | None,
    metrics_host: str,
    grace_seconds: float,
    token: str,
    acquire_wait_ms: int,
    fetcher_specs: tuple[str, ...],
    allow_plaintext_token: bool,
    log_level: str,
) -> None:
    """Run a worker until SIGTERM; then drain within the grace period and exit 0."""
    try:
        config = WorkerConfig(
            coordinator=coordinator,
            worker_id=worker_id,
            sources=tuple(s.strip() for s in sources.split(",") if s.strip()),
            concurrency=concurrency,
            questdb_url=questdb_url,
            metrics_port=metrics_port,
            grace_seconds=grace_seconds,
            token=token,
            acquire_wait_ms=acquire_wait_ms,
            allow_plaintext_token=allow_plaintext_token,
        )
        if not config.allow_plaintext_token:  # refuse before starting, not from inside the loop
            target, secure = parse_address(config.coordinator)
            check_token_transport(target, secure, config.token, False)
    except ConfigError as e:
        raise click.UsageError(e.message) from e
    extra = _plugins(fetcher_specs)
    configure(log_level.upper())
    port = _serve_metrics(config.metrics_port, metrics_host)
    asyncio.run(_main(config, extra, port))


def _serve_metrics(port: int | None, host: str = "127.0.0.1") -> int | None:
    if port is None:
        return None
    from prometheus_client import start_http_server

    server, _ = start_http_server(port, addr=host)
    bound: int = server.server_port
    return bound


async def _main(
    config: WorkerConfig, extra: dict[str, Callable[..., Fetcher]], metrics_port: int | None
) -> None:
    client = CoordinatorClient(
        config.coordinator,
        token=config.token or None,
        allow_plaintext_token=config.allow_plaintext_token,
    )
    leases = client.lease_session()
    sink = QuestDBSink(config.questdb_url, visibility_timeout_s=config.visibility_timeout_s)
    w = Worker(config, leases, sink, fetchers=extra)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, w.stop)
    suffix = f" metrics on :{metrics_port}" if metrics_port is not None else ""
    print(f"seamfill worker {config.worker_id} started{suffix}", flush=True)
    try:
        await w.run()
    finally:
        await sink.aclose()
        await leases.close()
        await client.close()
