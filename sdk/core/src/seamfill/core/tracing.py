"""OpenTelemetry tracing: one trace follows a read from the SDK through the coordinator to the
worker that filled its gap.

Context travels as a W3C ``traceparent`` string: in gRPC metadata from the SDK to the coordinator,
then on the job and on each lease (``Job.traceparent``, ``Lease.traceparent``) from the
coordinator to the worker, which starts its fetch and write spans as children of it.

Nothing is exported unless configured: :func:`setup_tracing` installs a tracer provider that
exports over OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set, or to
an exporter handed in (tests use the SDK's in-memory exporter). Without it spans are the API's
no-op spans and cost next to nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from seamfill.core.errors import ConfigError

if TYPE_CHECKING:
    # The OpenTelemetry SDK is the ``tracing`` extra: only a process that installs a provider
    # (coordinator, worker, CLI, a host that asks for it) needs it; spans need only the API.
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = [
    "TRACEPARENT",
    "context_from_metadata",
    "current_traceparent",
    "extract",
    "grpc_metadata",
    "otlp_configured",
    "setup_tracing",
    "span",
    "tracer",
]

TRACEPARENT = "traceparent"
"""The W3C header (and gRPC metadata key) that carries a span's context."""

_PROPAGATOR = TraceContextTextMapPropagator()
_OTLP_KEYS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def otlp_configured(environ: Mapping[str, str] | None = None) -> bool:
    """True when the standard OTel environment asks for traces to be exported over OTLP."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(env.get(k) for k in _OTLP_KEYS)


def _otlp_exporter() -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    except ImportError as e:
        raise ConfigError(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OTLP exporter is not installed: "
            "pip install 'seamfill-sdk[otlp]', or unset OTEL_EXPORTER_OTLP_ENDPOINT"
        ) from e
    # The exporter reads its endpoint, headers and TLS settings from the OTEL_* environment.
    exporter: SpanExporter = OTLPSpanExporter()
    return exporter


def setup_tracing(
    service_name: str,
    *,
    exporter: SpanExporter | None = None,
    environ: Mapping[str, str] | None = None,
) -> TracerProvider | None:
    """Install (or extend) the process's tracer provider; ``None`` when nothing is configured.

    ``exporter`` is exported to synchronously (for tests: ``InMemorySpanExporter``); OTLP is added
    when the environment configures it. If the process already has an SDK tracer provider (a host
    application, or a test that set one up first) the exporters are added to it rather than
    replacing it, because OpenTelemetry allows the global provider to be set only once.
    """
    env = os.environ if environ is None else environ
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as e:
        raise ConfigError(
            "tracing needs the OpenTelemetry SDK: pip install 'seamfill-core[tracing]'"
        ) from e
    processors: list[Any] = []
    if exporter is not None:
        processors.append(SimpleSpanProcessor(exporter))
    if otlp_configured(env):
        processors.append(BatchSpanProcessor(_otlp_exporter()))
    if not processors:
        return None
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        provider = current
    else:
        name = env.get("OTEL_SERVICE_NAME") or service_name
        provider = TracerProvider(resource=Resource.create({"service.name": name}))
        trace.set_tracer_provider(provider)
    for p in processors:
        provider.add_span_processor(p)
    return provider


def tracer(name: str) -> trace.Tracer:
    """A tracer for ``name`` (a module); it follows whichever provider is installed later."""
    return trace.get_tracer(name)


def current_traceparent() -> str:
    """The W3C ``traceparent`` of the current span, or ``""`` when no span is recording."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT, "")


def extract(traceparent: str) -> otel_context.Context:
    """A context whose parent is the span ``traceparent`` names (empty or malformed: none)."""
    if not traceparent:
        return otel_context.Context()
    return _PROPAGATOR.extract({TRACEPARENT: traceparent})


def grpc_metadata() -> list[tuple[str, str]]:
    """gRPC metadata carrying the current span's context (empty outside a span)."""
    tp = current_traceparent()
    return [(TRACEPARENT, tp)] if tp else []


def context_from_metadata(metadata: Iterable[Any] | None) -> otel_context.Context:
    """The caller's context from gRPC invocation metadata: ``(key, value)`` pairs (keys are
    lowercase on the wire; values str or bytes)."""
    for key, value in metadata or ():
        if key == TRACEPARENT:
            text = value.decode() if isinstance(value, bytes) else str(value)
            return extract(text)
    return otel_context.Context()


@contextmanager
def span(
    tracer_: trace.Tracer,
    name: str,
    *,
    traceparent: str = "",
    parent: otel_context.Context | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[trace.Span]:
    """Start ``name`` as the current span, as a child of ``traceparent`` or ``parent`` if given.

    Without either it is a child of the current span. Exceptions are recorded on the span and
    re-raised.
    """
    ctx = parent if parent is not None else (extract(traceparent) if traceparent else None)
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer_.start_as_current_span(name, context=ctx, attributes=attrs) as s:
        yield s
