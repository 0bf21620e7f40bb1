"""The web console: fleet, jobs, a coverage timeline per series, dead letters.

Served by a coordinator replica on its own port (``seamfill coordinator serve --ui-port``) from
its own event loop, reading through the same store and views as the ``Admin`` service, behind
the same tokens. May import the coordinator's store, views and service layer and the SDK's
types; nothing imports it but the server.
"""

from seamfill.coordinator.console.server import Console

__all__ = ["Console"]
