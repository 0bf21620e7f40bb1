"""One error tree for every seamfill package.

Each class is named for what the caller must do. A message names the field, the value and the fix.
``grpc_code`` is the status the coordinator answers with; the client maps statuses back to classes
through :data:`BY_CODE_NAME`, so the same error type is raised on both sides of the wire.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class SeamfillError(Exception):
    """Root of every error seamfill raises on purpose."""

    grpc_code: str = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(SeamfillError):
    """The request is malformed; fix the named field and retry."""

    grpc_code = "INVALID_ARGUMENT"


class InvalidRange(InvalidArgument):
    """A time range is inverted, unaligned, out of bounds or too large."""


class InvalidSeries(InvalidArgument):
    """A dataset or symbol name is empty, too long or not valid text."""


class ConfigError(InvalidArgument):
    """Configuration (YAML, environment, arguments) is wrong; the message names the key."""


class NotFound(SeamfillError):
    """The named object does not exist."""

    grpc_code = "NOT_FOUND"


class DatasetNotFound(NotFound):
    """The dataset is not declared in the coordinator's configuration."""


class JobNotFound(NotFound):
    """No job has this id (or it has expired)."""


class LeaseNotFound(NotFound):
    """No lease has this id."""


class FailedPrecondition(SeamfillError):
    """The object is not in a state that allows the call."""

    grpc_code = "FAILED_PRECONDITION"


class LeaseLost(FailedPrecondition):
    """The lease expired or its fencing token is stale: stop the chunk, do not complete it."""


class JobNotRunning(FailedPrecondition):
    """The job is paused, cancelled or finished."""


class Unauthenticated(SeamfillError):
    """No valid bearer token was sent."""

    grpc_code = "UNAUTHENTICATED"


class PermissionDenied(SeamfillError):
    """The token's role may not make this call."""

    grpc_code = "PERMISSION_DENIED"


class CoordinatorUnavailable(SeamfillError):
    """The coordinator (or its Redis) cannot be reached; back off and retry."""

    grpc_code = "UNAVAILABLE"


class StorageError(SeamfillError):
    """QuestDB could not be read or written."""

    grpc_code = "UNAVAILABLE"


class StorageSaturated(StorageError):
    """QuestDB kept turning reads away for load (429/503, refused) until the deadline."""


class SchemaMismatch(StorageError):
    """The existing table's schema does not match what the dataset writes (terminal)."""

    grpc_code = "FAILED_PRECONDITION"


class FetchError(SeamfillError):
    """The upstream source failed. ``retryable`` says whether asking again may help."""

    grpc_code = "UNAVAILABLE"

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class MissingData(SeamfillError):
    """The requested range has gaps and the strategy does not fill them (``FAIL_FAST``)."""

    grpc_code = "FAILED_PRECONDITION"

    def __init__(self, message: str, gaps: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.gaps = list(gaps)


class SeamlessSLAExceeded(SeamfillError):
    """A stage of a read ran past its SLA deadline."""

    grpc_code = "DEADLINE_EXCEEDED"

    def __init__(self, stage: str, message: str | None = None) -> None:
        super().__init__(message or f"SLA deadline exceeded in stage {stage!r}")
        self.stage = stage


class ConformanceError(SeamfillError):
    """Data failed an error-severity conformance rule; ``report`` lists every rule's counts."""

    grpc_code = "FAILED_PRECONDITION"

    def __init__(self, message: str, report: Any = None) -> None:
        super().__init__(message)
        self.report = report


# The class a client raises for a status code when the server did not name a finer one.
BY_CODE_NAME: dict[str, type[SeamfillError]] = {
    "INVALID_ARGUMENT": InvalidArgument,
    "NOT_FOUND": NotFound,
    "FAILED_PRECONDITION": FailedPrecondition,
    "UNAUTHENTICATED": Unauthenticated,
    "PERMISSION_DENIED": PermissionDenied,
    "UNAVAILABLE": CoordinatorUnavailable,
    "DEADLINE_EXCEEDED": CoordinatorUnavailable,
}


def by_name(name: str) -> type[SeamfillError] | None:
    """The error class called ``name`` (used to rebuild errors sent over the wire)."""
    found = globals().get(name)
    if isinstance(found, type) and issubclass(found, SeamfillError):
        return found
    return None
