"""Filling gaps: the fetch → write → verify step of one chunk (``chunk``), the QuestDB ILP sink
(``sink``, the ``ilp`` extra) and WAL visibility (``_wal``), fetcher plugins (``fetchers``), inline
backfill without a fleet (``inline``), the provider's link to the fleet (``_fleet``) and the lease
holder that runs chunks the SDK leased itself (``_lease_helper``).

May import ``seamfill.core``, ``seamfill.sdk.client``, ``seamfill.sdk.quality``,
``seamfill.sdk.read`` and the SDK's settings; never the provider. The worker imports ``chunk``,
``sink`` and ``fetchers`` from here.
"""
