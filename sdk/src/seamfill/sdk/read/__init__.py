"""The read path below the provider: storage reads (``storage``), the in-process cache
(``cache``), the live edge (``live``) and the steps that finish a read (``_steps``).

May import ``seamfill.core``, ``seamfill.sdk.quality`` and the SDK's settings, SLA, result and
metrics modules; never the provider (it calls down into this package) or ``seamfill.sdk.backfill``
except through the provider.
"""
