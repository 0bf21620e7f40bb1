"""The QuestDB servers this project starts allow a team's concurrent reads: the `make services`
script, compose and the chart's trial QuestDB all raise the /exp export cap (stock: 2 on a 2-core
host) and the PGWire connection limit, and say why."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.unit.test_helm_support import container, env_of, fullname, one, render

ROOT = Path(__file__).resolve().parents[2]


def test_services_script_sets_team_limits_with_the_reason() -> None:
    text = (ROOT / ".ci" / "services.sh").read_text()
    assert "http.export.connection.limit=16" in text and "pg.net.connection.limit=96" in text
    assert "answered 429" in text  # the why, next to the values


def test_compose_questdb_sets_team_limits() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    env = compose["services"]["questdb"]["environment"]
    assert env["QDB_HTTP_EXPORT_CONNECTION_LIMIT"] == "16"
    assert env["QDB_PG_NET_CONNECTION_LIMIT"] == "96"


def test_trial_questdb_sets_configurable_team_limits() -> None:
    sets = ("trial.questdb.connectionLimits.httpExport=24",)
    for values, expect in (((), "16"), (sets, "24")):
        manifests = render(("trial-values.yaml",), values)
        qc = container(one(manifests, "StatefulSet", fullname("questdb")), "questdb")
        env = env_of(qc)
        assert env["QDB_HTTP_EXPORT_CONNECTION_LIMIT"]["value"] == expect
        assert env["QDB_PG_NET_CONNECTION_LIMIT"]["value"] == "96"
