"""The coordinator's gRPC client: ``CoordinatorClient`` (asyncio), ``SyncCoordinatorClient``,
and ``LeaseSession`` (the lease calls over one stream).

``_coordinator`` is the client, ``_admin`` and ``_leases`` its call groups, ``_types`` the
address parsing, status mapping and records they share. May import ``seamfill.core``, ``grpc``.
"""

from seamfill.sdk.client._coordinator import CoordinatorClient, SyncCoordinatorClient
from seamfill.sdk.client._leases import LeaseSession

__all__ = ["CoordinatorClient", "LeaseSession", "SyncCoordinatorClient"]
