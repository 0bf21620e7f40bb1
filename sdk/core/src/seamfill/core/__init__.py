"""seamfill's shared vocabulary, imported by the SDK, the coordinator and the worker alike.

- ``types``, ``ranges``, ``errors``, ``timeconv``: the domain (series, half-open µs ranges, one
  error tree, one time parser). Pure: no I/O library, time comes in as an argument.
- ``wire``: the one place where ``seamfill.v1`` messages become domain values and back.
- ``logs``, ``tracing``: structured log events and W3C trace context, the same in every process.

May import: the standard library, pandas, protobuf, ``seamfill.v1``, ``opentelemetry`` (API).
Never ``seamfill.sdk``, ``seamfill.cli``, ``seamfill.coordinator`` or ``seamfill.worker``.
"""
