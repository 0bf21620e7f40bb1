"""``seamfill materialize``: write covered, conformed ranges of series to Parquet artifacts with
manifests (resumable, idempotent), and list the artifacts of a registry.

    seamfill materialize run binance.ohlcv_1m/BTC-USDT binance.ohlcv_1m/ETH-USDT \\
        --start 2024-01-01 --end 2024-02-01 --out ./artifacts
    seamfill materialize list ./artifacts --json

Settings come from ``--config`` (the ``seamless:`` section), else ``--preset``, else the
``SEAMFILL_*`` environment; ``--fetcher`` fills gaps inline when no coordinator is configured.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from seamfill.cli.admin import TIME
from seamfill.sdk.backfill.fetchers import load_fetcher
from seamfill.sdk.materialize import MaterializeReport
from seamfill.sdk.materialize import materialize as run_job
from seamfill.sdk.provider import AsyncSeamlessProvider
from seamfill.sdk.read.artifacts import ArtifactRegistry
from seamfill.sdk.settings import SeamlessSettings

__all__ = ["materialize"]


@click.group()
def materialize() -> None:
    """Write covered ranges to Parquet artifacts; list a registry."""


def _settings(config: str | None, preset: str | None) -> SeamlessSettings:
    if config:
        return SeamlessSettings.from_yaml(config)
    if preset:
        return SeamlessSettings.from_preset(preset)
    return SeamlessSettings.from_env()


@materialize.command("run")
@click.argument("node_ids", nargs=-1, required=True)
@click.option("--start", required=True, type=TIME, help="First bar (ISO time or epoch µs).")
@click.option("--end", required=True, type=TIME, help="End of the range (exclusive).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Registry root.")
@click.option(
    "--as-of", default=None, type=TIME, help="Pin the rows to this ingestion time (default: now)."
)
@click.option("--config", type=click.Path(dir_okay=False), help="YAML with a seamless: section.")
@click.option("--preset", default=None, help="A named preset, e.g. ccxt.questdb.ohlcv.")
@click.option(
    "--fetcher", default=None, help="Fetcher plugin filling gaps inline (no coordinator)."
)
@click.option("--no-fill", is_flag=True, help="Do not fill gaps first.")
@click.option("--allow-gaps", is_flag=True, help="Write ranges with gaps (listed in the manifest).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def run(
    node_ids: tuple[str, ...],
    start: int,
    end: int,
    out: str,
    as_of: int | None,
    config: str | None,
    preset: str | None,
    fetcher: str | None,
    no_fill: bool,
    allow_gaps: bool,
    as_json: bool,
) -> None:
    """Materialize NODE_IDS (dataset/symbol) over [START, END) into OUT."""
    settings = _settings(config, preset)
    plugin = load_fetcher(fetcher) if fetcher else None
    report = asyncio.run(
        _run(settings, plugin, node_ids, start, end, out, as_of, not no_fill, allow_gaps, as_json)
    )
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    click.echo(
        f"{len(report.written)} written ({report.rows_written} rows), "
        f"{len(report.skipped)} already there"
    )


async def _run(
    settings: SeamlessSettings,
    fetcher: Any,
    node_ids: tuple[str, ...],
    start: int,
    end: int,
    out: str,
    as_of: int | None,
    fill: bool,
    allow_gaps: bool,
    quiet: bool,
) -> MaterializeReport:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} series"),
        TextColumn("{task.speed} series/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True, disable=quiet) as bar:
        task = bar.add_task("materialize", total=len(set(node_ids)))
        async with AsyncSeamlessProvider(settings, fetcher=fetcher) as provider:
            return await run_job(
                provider,
                node_ids,
                start,
                end,
                out,
                as_of=as_of,
                fill=fill,
                allow_gaps=allow_gaps,
                progress=lambda _series, _what: bar.advance(task),
            )


@materialize.command("list")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the manifests as JSON.")
def list_artifacts(root: str, as_json: bool) -> None:
    """The artifacts under ROOT: series, range, as-of, rows, fingerprint."""
    arts = list(ArtifactRegistry(root).artifacts())
    if as_json:
        click.echo(json.dumps([a.manifest | {"path": str(a.path)} for a in arts], indent=2))
        return
    for a in arts:
        fp = (a.manifest.get("fingerprint") or {}).get("sha256", "")
        start, stop = a.manifest["range"]
        click.echo(
            f"{a.manifest['series']}  [{start}, {stop})  as_of={a.as_of_us}  "
            f"rows={a.manifest['rows']}  sha256={fp[:16]}"
        )
