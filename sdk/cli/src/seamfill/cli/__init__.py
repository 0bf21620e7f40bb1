"""The operator's tools behind the one ``seamfill`` command: ``main`` (the group, which loads the
``seamfill.cli`` entry points of every installed distribution), ``admin`` (jobs, coverage, leases,
workers, dead letters, reconcile), ``top``, ``health``, ``demo``, and ``render`` (rich tables,
timelines and progress shared by them).

May import ``seamfill.sdk`` and ``seamfill.core``; nothing imports this package but entry points.
"""
