"""W3C trace context helpers: a traceparent carried on a job or lease, or in gRPC metadata,
makes the receiving side's spans children of the sender's span."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from seamfill.core import tracing


@pytest.fixture
def spans() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = tracing.setup_tracing("seamfill-test", exporter=exporter, environ={})
    assert isinstance(provider, TracerProvider)
    return exporter


def test_nothing_configured_installs_nothing() -> None:
    assert tracing.setup_tracing("x", environ={}) is None
    assert tracing.current_traceparent() == ""
    assert tracing.grpc_metadata() == []


def test_otlp_is_configured_by_the_standard_environment() -> None:
    assert tracing.otlp_configured({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"})
    assert tracing.otlp_configured({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317"})
    assert not tracing.otlp_configured({})
    assert not tracing.otlp_configured(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}
    )


def test_traceparent_on_a_lease_parents_the_worker_span(spans: InMemorySpanExporter) -> None:
    t = tracing.tracer("test")
    with tracing.span(t, "sdk.read") as root:
        carried = tracing.current_traceparent()
    assert carried.startswith("00-") and len(carried.split("-")) == 4
    # Later, elsewhere (no current span): the worker starts its span from the lease's field.
    with tracing.span(t, "worker.fetch", traceparent=carried, attributes={"rows": 3, "x": None}):
        pass
    got = {s.name: s for s in spans.get_finished_spans()}
    fetch = got["worker.fetch"]
    assert fetch.context.trace_id == root.get_span_context().trace_id
    assert fetch.parent is not None and fetch.parent.span_id == root.get_span_context().span_id
    assert dict(fetch.attributes or {}) == {"rows": 3}


def test_grpc_metadata_round_trip(spans: InMemorySpanExporter) -> None:
    t = tracing.tracer("test")
    with tracing.span(t, "client") as client:
        md = tracing.grpc_metadata()
    assert [k for k, _ in md] == ["traceparent"]
    wire = [("user-agent", "grpc"), (md[0][0], md[0][1].encode())]
    with tracing.span(t, "server", parent=tracing.context_from_metadata(wire)):
        pass
    server = next(s for s in spans.get_finished_spans() if s.name == "server")
    assert server.parent is not None
    assert server.parent.span_id == client.get_span_context().span_id


def test_missing_or_malformed_context_starts_a_new_trace(spans: InMemorySpanExporter) -> None:
    t = tracing.tracer("test")
    with tracing.span(t, "a", parent=tracing.context_from_metadata(None)):
        pass
    with tracing.span(t, "b", traceparent="not-a-traceparent"):
        pass
    for s in spans.get_finished_spans():
        if s.name in ("a", "b"):
            assert s.parent is None


def test_errors_are_recorded_on_the_span(spans: InMemorySpanExporter) -> None:
    t = tracing.tracer("test")
    with pytest.raises(ValueError), tracing.span(t, "boom"):
        raise ValueError("upstream said no")
    boom = next(s for s in spans.get_finished_spans() if s.name == "boom")
    assert not boom.status.is_ok
    assert any(e.name == "exception" for e in boom.events)
