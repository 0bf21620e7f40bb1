"""``seamfill coordinator ...``: run a coordinator replica, check a configuration."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import signal

import click

from seamfill.coordinator.config import CoordinatorConfig
from seamfill.coordinator.server import serve
from seamfill.core.logs import configure


def load_config(path: str | None, redis_url: str | None) -> CoordinatorConfig:
    """The config from ``path`` (or the packaged demo config), with ``--redis-url`` on top."""
    env = dict(os.environ)
    if redis_url:
        env["SEAMFILL_REDIS_URL"] = redis_url
    if path:
        return CoordinatorConfig.from_yaml(path, env=env)
    return CoordinatorConfig.demo(env=env)


_M_MMAP_THRESHOLD = -3  # glibc malloc.h


def return_large_buffers_to_the_os() -> None:
    """Pin glibc's mmap threshold at its default (128 KiB), so buffers above it always come from
    mmap and go back to the OS when freed.

    A large EnsureRange packs megabytes of script arguments. By default glibc raises the
    threshold after the first such buffer is freed and serves the next ones from the heap, which
    then stays grown: the replica's RSS would follow the largest request it ever served, not its
    state, which lives in Redis. Elsewhere than glibc this does nothing.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):
        pass


@click.group("coordinator")
def coordinator() -> None:
    """Run and inspect the coordinator (coverage, jobs and leases in Redis, behind gRPC)."""


@coordinator.command("serve")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="YAML config (default: the packaged demo config).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=50051,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="gRPC port (0 = any free port; the listening line says which).",
)
@click.option("--redis-url", default=None, help="Overrides redis_url of the config.")
@click.option(
    "--metrics-port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Prometheus metrics port (0 = off).",
)
@click.option("--log-level", default="INFO", show_default=True)
def serve_cmd(
    config_path: str | None,
    host: str,
    port: int,
    redis_url: str | None,
    metrics_port: int,
    log_level: str,
) -> None:
    """Serve Coverage, Leases and Admin until SIGTERM/SIGINT (then drain and exit 0)."""
    configure(log_level.upper())
    config = load_config(config_path, redis_url)
    return_large_buffers_to_the_os()

    def ready(h: str, p: int) -> None:
        click.echo(f"seamfill coordinator listening on {h}:{p}")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, host=host, port=port, metrics_port=metrics_port, ready=ready, stop=stop)

    asyncio.run(main())


@coordinator.command("check-config")
@click.argument("path", type=click.Path(dir_okay=False))
def check_config(path: str) -> None:
    """Validate a config file and list its datasets."""
    cfg = CoordinatorConfig.from_yaml(path)
    for name, ds in sorted(cfg.datasets.items()):
        click.echo(
            f"{name}: table={ds.table} source={ds.source} interval_us={ds.interval_us} "
            f"chunk_bars={ds.chunk_bars}"
        )
    click.echo(f"OK: {len(cfg.datasets)} dataset(s), redis {cfg.redis_url}")
