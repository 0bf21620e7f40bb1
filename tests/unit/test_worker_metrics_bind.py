"""The worker's metrics endpoint binds loopback unless told otherwise, as the coordinator's."""

from __future__ import annotations

import os

import psutil
from click.testing import CliRunner

from seamfill.worker import cli


def _listening(port: int) -> set[str]:
    me = psutil.Process(os.getpid())
    return {
        c.laddr.ip
        for c in me.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


def test_worker_metrics_bind_127_0_0_1_by_default() -> None:
    port = cli._serve_metrics(0)
    assert port
    assert _listening(port) == {"127.0.0.1"}


def test_the_metrics_host_option_is_documented() -> None:
    out = CliRunner().invoke(cli.worker, ["run", "--help"], terminal_width=200)
    assert "--metrics-host" in out.output and "127.0.0.1" in out.output
