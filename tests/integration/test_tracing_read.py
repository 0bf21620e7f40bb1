"""One SDK read that needs a backfill is one trace: the SDK's read span, the coordinator's
EnsureRange span and the worker's fetch and write spans, joined through the traceparent carried in
gRPC metadata, on the job and on the lease.

Everything runs in this process so the SDK's in-memory exporter sees every span: the coordinator
(the ``coordinator`` fixture, real gRPC on port 0), a real worker loop and the provider, with the
real Redis and QuestDB behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from seamfill.core import tracing
from seamfill.sdk import AsyncSeamlessProvider, SeamlessSettings
from seamfill.sdk.backfill.sink import QuestDBSink
from seamfill.worker.config import WorkerConfig
from seamfill.worker.leases import CoordinatorClient
from seamfill.worker.loop import Worker
from tests.coordinator_fixtures import RunningCoordinator, test_dataset_spec

pytestmark = pytest.mark.integration

DATASET = "trace.bars_1m"
MIN = 60_000_000
T0 = 1_704_067_200_000_000


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    assert tracing.setup_tracing("seamfill-test", exporter=exporter, environ={}) is not None
    return exporter


@pytest.fixture
def traced_coordinator(
    coordinator_factory: Callable[..., RunningCoordinator], unique: str, questdb_url: str
) -> Iterator[RunningCoordinator]:
    table = f"trace_{unique}"
    yield coordinator_factory({DATASET: test_dataset_spec(table)})
    q = urllib.parse.urlencode({"query": f'DROP TABLE IF EXISTS "{table}"'})
    with urllib.request.urlopen(f"{questdb_url}/exec?{q}", timeout=30):
        pass


@pytest.fixture
async def worker(traced_coordinator: RunningCoordinator, questdb_url: str) -> AsyncIterator[Worker]:
    config = WorkerConfig(
        coordinator=traced_coordinator.address,
        worker_id="trace-w",
        concurrency=2,
        questdb_url=questdb_url,
        acquire_wait_ms=500,
        grace_seconds=2,
    )
    leases = CoordinatorClient(config.coordinator)
    sink = QuestDBSink(questdb_url)
    w = Worker(config, leases, sink)
    task = asyncio.ensure_future(w.run())
    yield w
    w.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)
    await sink.aclose()
    await leases.close()


async def test_one_read_is_one_trace_from_sdk_to_worker(
    spans: InMemorySpanExporter,
    traced_coordinator: RunningCoordinator,
    worker: Worker,
    questdb_url: str,
) -> None:
    settings = SeamlessSettings(
        coordinator_url=traced_coordinator.address,
        questdb_url=questdb_url,
        dataset=DATASET,
        strategy="auto_backfill",
    )
    async with AsyncSeamlessProvider(settings) as provider:
        result = await provider.read(T0, T0 + 120 * MIN, node_id="BTC")
    assert result.meta.complete and len(result.frame) == 120

    finished = spans.get_finished_spans()
    (read,) = [
        s
        for s in finished
        if s.name == "seamfill.sdk.read"
        and (s.attributes or {}).get("seamfill.series") == f"{DATASET}/BTC"
    ]
    trace_id = read.context.trace_id
    mine = [s for s in finished if s.context.trace_id == trace_id]
    names = [s.name for s in mine]
    assert names.count("seamfill.coordinator.EnsureRange") == 1, names
    # Two chunks of 60 bars: each was fetched and written once, inside this trace.
    assert names.count("seamfill.backfill.fetch") == 2, names
    assert names.count("seamfill.backfill.write") == 2, names

    by_id = {s.context.span_id: s for s in mine}

    def ancestors(span: object) -> list[str]:
        out, cur = [], span
        while getattr(cur, "parent", None) is not None:
            cur = by_id[cur.parent.span_id]  # type: ignore[attr-defined]
            out.append(cur.name)  # type: ignore[attr-defined]
        return out

    ensure = next(s for s in mine if s.name == "seamfill.coordinator.EnsureRange")
    assert ancestors(ensure)[-1] == "seamfill.sdk.read"
    for s in mine:
        if s.name in ("seamfill.backfill.fetch", "seamfill.backfill.write"):
            chain = ancestors(s)
            # worker span -> EnsureRange (through the lease) -> ... -> the SDK's read
            assert "seamfill.coordinator.EnsureRange" in chain, chain
            assert chain[-1] == "seamfill.sdk.read", chain
