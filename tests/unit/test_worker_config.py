"""Worker configuration and the ``seamfill worker run`` command line (no servers)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from seamfill.core.errors import ConfigError
from seamfill.worker.cli import worker
from seamfill.worker.config import WorkerConfig


def test_from_env_reads_every_variable_and_overrides_win() -> None:
    env = {
        "SEAMFILL_COORDINATOR": "coord:50051",
        "SEAMFILL_WORKER_ID": "pod-7",
        "SEAMFILL_WORKER_SOURCES": "synthetic, ccxt:binance,",
        "SEAMFILL_WORKER_CONCURRENCY": "8",
        "SEAMFILL_WORKER_METRICS_PORT": "9102",
        "SEAMFILL_WORKER_GRACE_SECONDS": "12.5",
        "SEAMFILL_WORKER_TOKEN": "secret",
        "SEAMFILL_QUESTDB_URL": "http://qdb:9000",
    }
    cfg = WorkerConfig.from_env(env, concurrency=2, worker_id=None)
    assert cfg.coordinator == "coord:50051" and cfg.worker_id == "pod-7"
    assert cfg.sources == ("synthetic", "ccxt:binance")
    assert (cfg.concurrency, cfg.metrics_port, cfg.grace_seconds) == (2, 9102, 12.5)
    assert (cfg.token, cfg.questdb_url) == ("secret", "http://qdb:9000")


def test_default_worker_id_names_host_and_process() -> None:
    cfg = WorkerConfig(coordinator="127.0.0.1:1")
    assert cfg.worker_id.rsplit("-", 1)[1].isdigit()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"coordinator": "nowhere"}, "not host:port"),
        ({"coordinator": "a:1", "concurrency": 0}, "concurrency 0"),
        ({"coordinator": "a:1", "grace_seconds": -1}, "grace_seconds"),
        ({"coordinator": "a:1", "metrics_port": 70000}, "metrics_port"),
    ],
)
def test_bad_values_name_the_field(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        WorkerConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_env_number_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="SEAMFILL_WORKER_CONCURRENCY='many'"):
        WorkerConfig.from_env({"SEAMFILL_WORKER_CONCURRENCY": "many"})


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--concurrency", "0"], "--concurrency"),
        (["--fetcher", "broken"], "NAME=module:attribute"),
        (["--fetcher", "x=no.such.module:Thing"], "cannot be imported"),
        (["--coordinator", "nowhere"], "not host:port"),
    ],
)
def test_usage_errors_exit_2_and_say_why(args: list[str], says: str) -> None:
    result = CliRunner().invoke(worker, ["run", *args])
    assert result.exit_code == 2
    assert says in result.output
