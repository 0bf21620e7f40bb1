"""The chart lints, renders and validates for every supported combination, and what it renders
has what matters: probes, security context, labels, replicas, resources, the autoscaler."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.unit.test_helm_support import (
    CHART,
    CI_VALUES,
    CRD_KINDS,
    KUBE_VERSION,
    NAMESPACE,
    Manifest,
    container,
    env_of,
    find,
    fullname,
    lint,
    one,
    render,
    template,
)

CASES = [(), *[(name,) for name in CI_VALUES]]
CASE_IDS = ["defaults", *CI_VALUES]
COORDINATOR = fullname("coordinator")
WORKER = fullname("worker")


def test_ci_values_cover_the_combinations_that_matter() -> None:
    expected = {
        "default-values.yaml",
        "trial-values.yaml",
        "autoscaling-hpa-values.yaml",
        "autoscaling-keda-values.yaml",
        "monitoring-values.yaml",
        "tls-auth-existing-secret-values.yaml",
    }
    assert expected <= set(CI_VALUES)


@pytest.mark.parametrize("values", CASES, ids=CASE_IDS)
def test_helm_lint_passes(values: tuple[str, ...]) -> None:
    proc = lint(values)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _check_crd_shape(m: Manifest) -> None:
    """What kubernetes-validate cannot check for the custom resources the chart renders."""
    spec = m["spec"]
    if m["kind"] == "ServiceMonitor":
        assert m["apiVersion"] == "monitoring.coreos.com/v1"
        assert spec["selector"]["matchLabels"]
        assert spec["endpoints"] and all(e["port"] == "metrics" for e in spec["endpoints"])
    elif m["kind"] == "PrometheusRule":
        assert m["apiVersion"] == "monitoring.coreos.com/v1"
        for group in spec["groups"]:
            assert group["name"] and group["rules"]
            for rule in group["rules"]:
                assert ("alert" in rule or "record" in rule) and rule["expr"]
    elif m["kind"] == "ScaledObject":
        assert m["apiVersion"] == "keda.sh/v1alpha1"
        assert spec["scaleTargetRef"]["name"] == WORKER
        assert spec["triggers"] and all(t["type"] and t["metadata"] for t in spec["triggers"])


# Besides the ci/ files: combinations whose objects only appear together.
EXTRA_CASES = [
    (("trial-values.yaml",), ("networkPolicy.enabled=true",)),
    (("autoscaling-keda-values.yaml",), ("worker.sources={synthetic}", "presets.enabled=false")),
]


@pytest.mark.parametrize(
    ("values", "sets"),
    [*((v, ()) for v in CASES), *EXTRA_CASES],
    ids=[*CASE_IDS, "trial-networkpolicy", "keda-sources-nopresets"],
)
def test_every_rendered_manifest_validates(values: tuple[str, ...], sets: tuple[str, ...]) -> None:
    manifests = render(values, sets)
    assert manifests
    for m in manifests:
        where = f"{m['kind']}/{m['metadata']['name']}"
        assert m["metadata"].get("namespace", NAMESPACE) == NAMESPACE, where
        labels = m["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "seamfill", where
        assert labels["app.kubernetes.io/instance"] == "sf", where
        assert labels["app.kubernetes.io/managed-by"] == "Helm", where
        if m["kind"] in CRD_KINDS:
            _check_crd_shape(m)
            continue
        try:
            kubernetes_validate.validate(m, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            pytest.fail(
                f"{where} does not validate against Kubernetes {KUBE_VERSION}: {path}: {e.message}"
            )


def _pod(deployment: Manifest) -> Manifest:
    pod: Manifest = deployment["spec"]["template"]
    return pod


def _assert_hardened(workload: Manifest) -> None:
    spec = _pod(workload)["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    for c in spec["containers"] + spec.get("initContainers", []):
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]


def test_defaults_coordinator_deployment() -> None:
    manifests = render()
    dep = one(manifests, "Deployment", COORDINATOR)
    assert dep["spec"]["replicas"] == 2
    pod = _pod(dep)
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "coordinator"
    assert dep["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "coordinator"
    assert len(pod["metadata"]["annotations"]["checksum/config"]) == 64
    c = container(dep, "coordinator")
    assert c["args"][:2] == ["coordinator", "serve"]
    assert c["args"][c["args"].index("--config") + 1] == "/etc/seamfill/coordinator.yaml"
    assert c["args"][c["args"].index("--port") + 1] == "50051"
    assert c["args"][c["args"].index("--metrics-port") + 1] == "9464"
    # Readiness asks the gRPC health service (NOT_SERVING while Redis is away); liveness only
    # checks the port, so a Redis outage does not restart every replica.
    assert c["readinessProbe"]["grpc"] == {"port": 50051}
    assert c["livenessProbe"]["tcpSocket"] == {"port": "grpc"}
    assert "resources" not in c
    _assert_hardened(dep)
    # Credentials reach the config through env from Secrets, never through the ConfigMap.
    init = pod["spec"]["initContainers"][0]
    init_env = env_of(init)
    for role in ("READER", "WORKER", "ADMIN"):
        ref = init_env[f"SEAMFILL_AUTH_{role}_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "sf-seamfill-auth"
    assert init_env["SEAMFILL_REDIS_URL"]["value"] == "redis://redis:6379/0"


def test_defaults_worker_deployment() -> None:
    manifests = render()
    dep = one(manifests, "Deployment", WORKER)
    assert dep["spec"]["replicas"] == 2
    pod = _pod(dep)
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    assert (
        pod["metadata"]["annotations"]["checksum/config"]
        == _pod(one(manifests, "Deployment", COORDINATOR))["metadata"]["annotations"][
            "checksum/config"
        ]
    )
    c = container(dep, "worker")
    args = c["args"]
    assert args[:2] == ["worker", "run"]
    assert args[args.index("--coordinator") + 1] == f"{COORDINATOR}:50051"
    assert args[args.index("--questdb-url") + 1] == "$(SEAMFILL_QUESTDB_URL)"
    assert args[args.index("--metrics-port") + 1] == "9465"
    grace = int(args[args.index("--grace-seconds") + 1])
    heartbeat = 30000 / 1000 / 3
    assert pod["spec"]["terminationGracePeriodSeconds"] > grace + heartbeat
    env = env_of(c)
    for name in ("SEAMFILL_WORKER_TOKEN", "SEAMFILL_TOKEN"):
        assert env[name]["valueFrom"]["secretKeyRef"] == {
            "name": "sf-seamfill-auth",
            "key": "worker-token",
        }
    assert env["SEAMFILL_WORKER_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "SEAMFILL_WORKER_SOURCES" not in env
    assert "--token" not in args  # a token in argv would show in `ps`
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 9465}
    assert "resources" not in c
    _assert_hardened(dep)


def test_defaults_leave_optional_features_off() -> None:
    kinds = {m["kind"] for m in render()}
    for off in (
        "HorizontalPodAutoscaler",
        "ScaledObject",
        "ServiceMonitor",
        "PrometheusRule",
        "NetworkPolicy",
        "StatefulSet",
    ):
        assert off not in kinds
    assert {"Deployment", "Service", "ConfigMap", "Secret", "ServiceAccount"} <= kinds
    pdbs = find(render(), "PodDisruptionBudget")
    assert {p["metadata"]["name"] for p in pdbs} == {COORDINATOR, WORKER}


def test_services_expose_grpc_and_metrics() -> None:
    manifests = render()
    coord = one(manifests, "Service", COORDINATOR)
    assert {p["name"]: p["port"] for p in coord["spec"]["ports"]} == {
        "grpc": 50051,
        "metrics": 9464,
    }
    assert coord["spec"]["selector"]["app.kubernetes.io/component"] == "coordinator"
    worker = one(manifests, "Service", WORKER)
    assert worker["spec"]["clusterIP"] == "None"
    assert worker["spec"]["selector"]["app.kubernetes.io/component"] == "worker"


def test_generated_tokens_are_random_and_given_ones_are_kept() -> None:
    generated = one(render(), "Secret", "sf-seamfill-auth")["data"]
    tokens = {k: base64.b64decode(v).decode() for k, v in generated.items()}
    assert set(tokens) == {"reader-token", "worker-token", "admin-token"}
    assert all(len(t) == 40 for t in tokens.values())
    assert len(set(tokens.values())) == 3
    given = one(render(sets=("auth.tokens.worker=w-123",)), "Secret", "sf-seamfill-auth")
    assert base64.b64decode(given["data"]["worker-token"]).decode() == "w-123"


def test_resources_rendered_when_set() -> None:
    manifests = render(("monitoring-values.yaml",))
    coord = container(one(manifests, "Deployment", COORDINATOR), "coordinator")
    assert coord["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "512Mi"},
    }
    worker = container(one(manifests, "Deployment", WORKER), "worker")
    assert worker["resources"]["requests"]["cpu"] == "500m"


def test_hpa_scales_workers_on_queue_depth() -> None:
    manifests = render(("autoscaling-hpa-values.yaml",))
    hpa = one(manifests, "HorizontalPodAutoscaler", WORKER)
    spec = hpa["spec"]
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": WORKER}
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 20)
    metric = spec["metrics"][0]["external"]
    assert metric["metric"]["name"] == "seamfill_queue_depth"
    assert metric["metric"]["selector"]["matchLabels"] == {"dataset": "binance.ohlcv_1m"}
    assert metric["target"] == {"type": "AverageValue", "averageValue": "40"}
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    # The autoscaler owns the count: a replicas field would fight it on every upgrade.
    assert "replicas" not in one(manifests, "Deployment", WORKER)["spec"]
    assert not find(manifests, "ScaledObject")


def test_keda_scaled_object_scales_from_zero() -> None:
    manifests = render(("autoscaling-keda-values.yaml",))
    so = one(manifests, "ScaledObject", WORKER)
    spec = so["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 30)
    trigger = spec["triggers"][0]
    assert trigger["type"] == "prometheus"
    query = trigger["metadata"]["query"]
    assert "max by (dataset) (seamfill_queue_depth{" in query
    assert "max by (dataset) (seamfill_leases_in_flight{" in query
    assert f'namespace="{NAMESPACE}"' in query and f'service="{COORDINATOR}"' in query
    assert trigger["metadata"]["threshold"] == "50"
    assert "replicas" not in one(manifests, "Deployment", WORKER)["spec"]
    assert not find(manifests, "HorizontalPodAutoscaler")


def test_keda_query_can_be_replaced() -> None:
    sets = ("worker.autoscaling.keda.query=sum(seamfill_queue_depth)",)
    so = one(render(("autoscaling-keda-values.yaml",), sets), "ScaledObject", WORKER)
    assert so["spec"]["triggers"][0]["metadata"]["query"] == "sum(seamfill_queue_depth)"


def test_hpa_cannot_scale_to_zero() -> None:
    proc = template(("autoscaling-hpa-values.yaml",), ("worker.autoscaling.minReplicas=0",))
    assert proc.returncode != 0
    assert "worker.autoscaling.minReplicas: an HPA needs at least 1" in proc.stderr


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ("worker.terminationGracePeriodSeconds=35",),
            "worker.terminationGracePeriodSeconds: 35 is too short",
        ),
        (("redis.url=",), "redis.url: set the Redis URL"),
        (("questdb.httpUrl=",), "questdb.httpUrl: set the QuestDB HTTP URL"),
        (("tls.enabled=true",), "tls.existingSecret: tls.enabled=true needs"),
        (
            (
                "worker.autoscaling.enabled=true",
                "worker.autoscaling.minReplicas=5",
                "worker.autoscaling.maxReplicas=2",
            ),
            "worker.autoscaling.minReplicas: must not exceed",
        ),
    ],
)
def test_values_that_cannot_work_fail_with_the_key_to_fix(
    sets: tuple[str, ...], message: str
) -> None:
    proc = template(sets=sets)
    assert proc.returncode != 0
    assert message in proc.stderr


def test_trial_mode_runs_redis_with_aof_and_questdb() -> None:
    manifests = render(("trial-values.yaml",))
    redis = one(manifests, "StatefulSet", fullname("redis"))
    args = container(redis, "redis")["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert (
        redis["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
        == "1Gi"
    )
    questdb = one(manifests, "StatefulSet", fullname("questdb"))
    qc = container(questdb, "questdb")
    assert qc["image"] == "questdb/questdb:9.3.4"
    assert qc["readinessProbe"]["httpGet"]["path"] == "/status"
    for sts in (redis, questdb):
        _assert_hardened(sts)
    for name in ("redis", "questdb"):
        one(manifests, "Service", fullname(name))
    coord = one(manifests, "Deployment", COORDINATOR)
    init_env = env_of(_pod(coord)["spec"]["initContainers"][0])
    assert init_env["SEAMFILL_REDIS_URL"]["value"] == f"redis://{fullname('redis')}:6379/0"
    assert init_env["SEAMFILL_QUESTDB_DSN"]["value"].endswith(f"@{fullname('questdb')}:8812/qdb")
    worker_env = env_of(container(one(manifests, "Deployment", WORKER), "worker"))
    assert worker_env["SEAMFILL_QUESTDB_URL"]["value"] == f"http://{fullname('questdb')}:9000"


def test_existing_secrets_and_tls() -> None:
    manifests = render(("tls-auth-existing-secret-values.yaml",))
    assert not find(manifests, "Secret"), "the chart must not create a Secret it was given"
    coord = one(manifests, "Deployment", COORDINATOR)
    assert coord["spec"]["replicas"] == 3
    init_env = env_of(_pod(coord)["spec"]["initContainers"][0])
    assert init_env["SEAMFILL_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "seamfill-redis",
        "key": "redis-url",
    }
    assert (
        init_env["SEAMFILL_QUESTDB_DSN"]["valueFrom"]["secretKeyRef"]["name"] == "seamfill-questdb"
    )
    assert init_env["SEAMFILL_AUTH_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "seamfill-tokens",
        "key": "admin-token",
    }
    c = container(coord, "coordinator")
    # The kubelet's gRPC probe cannot speak TLS: the chart falls back to a TCP check.
    assert c["readinessProbe"]["tcpSocket"] == {"port": "grpc"}
    assert "grpc" not in c["readinessProbe"]
    config = yaml.safe_load(one(manifests, "ConfigMap", COORDINATOR)["data"]["coordinator.yaml"])
    assert config["tls"] == {
        "cert": "/etc/seamfill-tls/tls.crt",
        "key": "/etc/seamfill-tls/tls.key",
    }
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts["tls"] == "/etc/seamfill-tls"
    tls_volume = [v for v in _pod(coord)["spec"]["volumes"] if v["name"] == "tls"]
    assert tls_volume[0]["secret"]["secretName"] == "seamfill-coordinator-tls"
    worker = container(one(manifests, "Deployment", WORKER), "worker")
    assert (
        env_of(worker)["SEAMFILL_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "seamfill-tokens"
    )
    assert env_of(worker)["GRPC_DEFAULT_SSL_ROOTS_FILE_PATH"]["value"] == "/etc/seamfill-tls/ca.crt"
    args = worker["args"]
    assert args[args.index("--coordinator") + 1] == f"grpcs://{COORDINATOR}:50051"


def test_network_policies_admit_workers_and_declared_clients() -> None:
    manifests = render(("tls-auth-existing-secret-values.yaml",))
    policy = one(manifests, "NetworkPolicy", COORDINATOR)
    peers = policy["spec"]["ingress"][0]["from"]
    assert peers[0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"
    assert peers[1] == {"namespaceSelector": {"matchLabels": {"seamfill.io/client": "true"}}}
    worker_policy = one(manifests, "NetworkPolicy", WORKER)
    assert not worker_policy["spec"].get("ingress"), "workers serve nothing without metricsFrom"


def test_service_monitor_scrapes_both_components() -> None:
    manifests = render(("monitoring-values.yaml",))
    sm = one(manifests, "ServiceMonitor", "sf-seamfill")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    expr = sm["spec"]["selector"]["matchExpressions"][0]
    assert expr["key"] == "app.kubernetes.io/component"
    assert set(expr["values"]) == {"coordinator", "worker"}
    assert sm["spec"]["endpoints"][0]["interval"] == "15s"
    # Every Service it selects has the port it scrapes.
    for svc in (one(manifests, "Service", COORDINATOR), one(manifests, "Service", WORKER)):
        assert "metrics" in {p["name"] for p in svc["spec"]["ports"]}


def test_config_map_carries_the_coordinator_config() -> None:
    manifests = render(("trial-values.yaml",))
    cm = one(manifests, "ConfigMap", COORDINATOR)
    config = yaml.safe_load(cm["data"]["coordinator.yaml"])
    assert config["lease_ttl_ms"] == 30000
    assert config["datasets"]["demo.ohlcv_1m"]["table"] == "demo_ohlcv_1m"
    assert config["sources"]["synthetic"]["rate_per_second"] == 1000
    assert config["datasets"]["demo.ohlcv_1m"]["kind"] == "bars"
    assert "auth" not in config and "redis_url" not in config, "credentials stay out of ConfigMaps"
    assert "def render(" in cm["data"]["render_config.py"]


def test_config_change_rolls_the_pods() -> None:
    def checksum(*sets: str) -> str:
        dep = one(render(sets=sets), "Deployment", COORDINATOR)
        value: str = _pod(dep)["metadata"]["annotations"]["checksum/config"]
        return value

    assert checksum() == checksum()
    assert checksum() != checksum("config.max_attempts=9")


def test_worker_sources_reach_the_worker() -> None:
    sets = ("worker.sources={synthetic,ccxt:binance}",)
    worker = container(one(render(sets=sets), "Deployment", WORKER), "worker")
    assert env_of(worker)["SEAMFILL_WORKER_SOURCES"]["value"] == "synthetic,ccxt:binance"


def test_trial_network_policy_admits_only_this_release() -> None:
    manifests = render(("trial-values.yaml",), ("networkPolicy.enabled=true",))
    policy = one(manifests, "NetworkPolicy", "sf-seamfill-trial")
    selector = policy["spec"]["podSelector"]
    assert selector["matchExpressions"][0]["values"] == ["redis", "questdb"]
    peer = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert peer == {"app.kubernetes.io/name": "seamfill", "app.kubernetes.io/instance": "sf"}


def test_keda_default_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: apt-get install prometheus"
    so = one(render(("autoscaling-keda-values.yaml",)), "ScaledObject", WORKER)
    query = so["spec"]["triggers"][0]["metadata"]["query"]
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "keda", "rules": [{"record": "seamfill:backlog", "expr": query}]}]}
        )
    )
    proc = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_digest_wins_over_tag() -> None:
    digest = "sha256:" + "a" * 64
    manifests = render(sets=(f"image.digest={digest}", "image.tag=9.9.9"))
    for name, c in ((COORDINATOR, "coordinator"), (WORKER, "worker")):
        assert (
            container(one(manifests, "Deployment", name), c)["image"]
            == f"seamfill/seamfill@{digest}"
        )
    default = container(one(render(), "Deployment", COORDINATOR), "coordinator")["image"]
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert default == f"seamfill/seamfill:{app_version}", "the tag defaults to the appVersion"


def test_fullname_override_names_every_object() -> None:
    manifests = render(("trial-values.yaml",), ("fullnameOverride=fills",))
    names = {m["metadata"]["name"] for m in manifests}
    assert all(n.startswith("fills") for n in names), sorted(names)
    worker = container(one(manifests, "Deployment", "fills-worker"), "worker")
    assert worker["args"][worker["args"].index("--coordinator") + 1] == "fills-coordinator:50051"


def test_the_console_is_off_by_default_and_served_on_its_port_when_enabled() -> None:
    dep = one(render(), "Deployment", COORDINATOR)
    assert "--ui-port" not in container(dep, "coordinator")["args"]
    on = render(sets=("coordinator.console.enabled=true", "coordinator.console.port=8090"))
    c = container(one(on, "Deployment", COORDINATOR), "coordinator")
    assert c["args"][c["args"].index("--ui-port") + 1] == "8090"
    assert {"name": "console", "containerPort": 8090, "protocol": "TCP"} in c["ports"]
    svc = one(on, "Service", COORDINATOR)
    assert any(p["name"] == "console" and p["port"] == 8090 for p in svc["spec"]["ports"])
