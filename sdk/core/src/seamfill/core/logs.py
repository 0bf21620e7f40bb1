"""Structured JSON logs with stable event names.

``log_event(logger, "seamless.backfill.attempt", job=..., chunk=...)`` writes one JSON object per
line; the event name is the contract dashboards and alerts search by, the fields tie events
together (job, chunk, lease, worker, trace).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

EVENTS = (
    "seamless.backfill.attempt",
    "seamless.backfill.succeeded",
    "seamless.backfill.failed",
    "seamless.backfill.inline",
    "seamless.lease.granted",
    "seamless.lease.expired",
    "seamless.lease.lost",
    "seamless.lease.released",
    "seamless.sla.downgrade",
    "seamless.sla.hold",
    "seamless.sla.exceeded",
    "seamless.coordinator.unavailable",
    "seamless.provider.in_memory",
    "seamless.conformance.violation",
    "seamless.job.created",
    "seamless.job.done",
    "seamless.worker.started",
    "seamless.worker.stopped",
    "seamless.deadletter",
)


def log_event(logger: logging.Logger, event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log ``event`` with ``fields`` as structured data (see :class:`JsonFormatter`)."""
    logger.log(level, event, extra={"event": event, "fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, event, message and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        elif not getattr(record, "event", None):
            out["message"] = record.getMessage()
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure(level: str | int = "INFO", *, json_format: bool = True) -> None:
    """Route seamfill's loggers to stderr, as JSON unless ``json_format`` is false."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else logging.Formatter("%(message)s"))
    root = logging.getLogger("seamfill")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
