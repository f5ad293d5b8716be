"""The Helm chart renders to what we promise, and the real API server accepts it.

Why in the integration tier: rendering needs the helm binary, which the harness provides
(.cluster/bin/helm), and the decisive check is a server-side dry run (admission, schema and
RBAC validation by the real apiserver), which needs a cluster. The assertions on rendered
manifests sit here too so they run wherever helm is guaranteed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster import ROOT, Cluster, ClusterUnavailable, tool_binary

pytestmark = pytest.mark.integration

CHART = ROOT / "charts" / "flowcraft"


def helm_binary() -> str:
    """The project's helm (see tool_binary); fails the test if there is none."""
    try:
        return tool_binary("helm", "run `make cluster-bins` or install helm")
    except ClusterUnavailable as err:
        pytest.fail(str(err), pytrace=False)


def render(*sets: str, namespace: str = "flowcraft-system", crds: bool = False) -> str:
    args = [helm_binary(), "template", "flowcraft", str(CHART), "--namespace", namespace]
    if crds:
        args.append("--include-crds")
    for item in sets:
        args += ["--set", item]
    proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(text: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for doc in docs(text):
        out.setdefault(doc["kind"], []).append(doc)
    return out


def _container(rendered: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    (deployment,) = rendered["Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _shipped_rules() -> list[dict[str, Any]]:
    """The operator's rules as deploy/operator.yaml grants them: the chart must not widen them."""
    shipped = list(yaml.safe_load_all((ROOT / "deploy" / "operator.yaml").read_text()))
    (role,) = [d for d in shipped if d and d["kind"] == "ClusterRole"]
    return list(role["rules"])


# ------------------------------------------------------------------ rendered manifests


def test_chart_crds_are_the_generated_ones() -> None:
    for path in (ROOT / "crds").glob("*.yaml"):
        assert (CHART / "crds" / path.name).read_text() == path.read_text(), (
            f"charts/flowcraft/crds/{path.name} drifted: run make chart-crds"
        )


def test_helm_lint_is_clean() -> None:
    for sets in ([], ["rbac.scope=namespaced", "dashboard.enabled=true"]):
        args = [helm_binary(), "lint", "--strict", str(CHART)]
        for item in sets:
            args += ["--set", item]
        proc = subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def _watch_roles(rendered: dict[str, list[dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    """The Roles/RoleBindings granting the watched namespaces (not the Lease's)."""
    return [r for r in rendered.get(kind, []) if not r["metadata"]["name"].endswith("-election")]


def test_defaults_two_elected_replicas_rolled_secure_and_probed() -> None:
    rendered = by_kind(render())
    assert sorted(rendered) == [
        "ClusterRole", "ClusterRoleBinding", "Deployment", "PodDisruptionBudget", "Role",
        "RoleBinding", "Service", "ServiceAccount",
    ]  # fmt: skip
    (deployment,) = rendered["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    # New pods start as standbys; the old leader releases the Lease when it stops.
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    (pdb,) = rendered["PodDisruptionBudget"]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    args = _container(rendered)["args"]
    for flag in (
        "--leader-elect",
        "--leader-election-namespace=flowcraft-system",
        "--leader-election-name=flowcraft",
        "--lease-duration=15",
        "--renew-deadline=10",
        "--retry-period=2",
    ):
        assert flag in args
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert (
        anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"]
        == "kubernetes.io/hostname"
    )
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = _container(rendered)
    assert container["image"] == "flowcraft-operator:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "--all-namespaces" in container["args"]
    assert "--liveness-port=8081" in container["args"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["port"] == "health"
    assert not any(a.startswith("--metrics-flow-label") for a in container["args"])


def test_the_lease_rbac_is_the_one_lease_by_name_in_the_release_namespace() -> None:
    rendered = by_kind(render("leaderElection.leaseName=ops-lock", namespace="ops"))
    (role,) = [r for r in rendered["Role"] if r["metadata"]["name"].endswith("-election")]
    assert role["metadata"]["namespace"] == "ops"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["ops-lock"],
            "verbs": ["get", "update"],
        },
        # create carries no name in its URL: it cannot be limited by resourceNames.
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]
    (binding,) = [b for b in rendered["RoleBinding"] if b["metadata"]["name"].endswith("-election")]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0] == {
        "kind": "ServiceAccount",
        "name": "flowcraft",
        "namespace": "ops",
    }
    assert "--leader-election-name=ops-lock" in _container(rendered)["args"]


def test_without_leader_election_one_recreated_replica_and_no_lease_objects() -> None:
    rendered = by_kind(render("leaderElection.enabled=false", "replicas=1"))
    (deployment,) = rendered["Deployment"]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "PodDisruptionBudget" not in rendered
    assert "Role" not in rendered
    assert not any(a.startswith("--leader-elect") for a in _container(rendered)["args"])
    # Two replicas without a Lease would be two writers: refused at render time.
    proc = subprocess.run(
        [helm_binary(), "template", "x", str(CHART), "--set", "leaderElection.enabled=false"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "needs leaderElection.enabled" in proc.stderr


def test_every_object_carries_the_standard_labels() -> None:
    for doc in docs(render("dashboard.enabled=true", "metrics.serviceMonitor.enabled=true")):
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "flowcraft", doc["kind"]
        assert labels["app.kubernetes.io/instance"] == "flowcraft", doc["kind"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm", doc["kind"]
        assert labels["app.kubernetes.io/version"] == "0.1.0", doc["kind"]


def test_metrics_service_selects_the_operator_pod_on_a_port_named_metrics() -> None:
    rendered = by_kind(render())
    (service,) = rendered["Service"]
    (deployment,) = rendered["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["metadata"]["labels"]["app.kubernetes.io/name"] == "flowcraft"
    assert all(pod_labels[k] == v for k, v in service["spec"]["selector"].items())
    (port,) = service["spec"]["ports"]
    assert port["name"] == "metrics"
    assert port["targetPort"] == "metrics"
    assert {"name": "metrics", "containerPort": 8080} in _container(rendered)["ports"]


def test_cluster_rbac_mirrors_the_shipped_rules() -> None:
    (role,) = by_kind(render())["ClusterRole"]
    assert role["rules"] == _shipped_rules()


def test_namespaced_rbac_is_a_role_per_watched_namespace_without_cluster_rights() -> None:
    rendered = by_kind(render("rbac.scope=namespaced", "watchNamespaces={team-a,team-b}"))
    assert "ClusterRole" not in rendered
    assert "ClusterRoleBinding" not in rendered
    roles = {r["metadata"]["namespace"]: r for r in _watch_roles(rendered, "Role")}
    assert sorted(roles) == ["team-a", "team-b"]
    cluster_scoped = [r for r in _shipped_rules() if "apiextensions.k8s.io" in r["apiGroups"]]
    namespaced = [r for r in _shipped_rules() if r not in cluster_scoped]
    for role in roles.values():
        assert role["rules"] == namespaced
    bindings = {b["metadata"]["namespace"]: b for b in _watch_roles(rendered, "RoleBinding")}
    assert sorted(bindings) == ["team-a", "team-b"]
    for binding in bindings.values():
        assert binding["subjects"][0]["namespace"] == "flowcraft-system"
    args = _container(rendered)["args"]
    assert "--namespace=team-a" in args
    assert "--namespace=team-b" in args
    assert "--all-namespaces" not in args


def test_namespaced_mode_defaults_to_the_release_namespace() -> None:
    rendered = by_kind(render("rbac.scope=namespaced", namespace="ops"))
    assert [r["metadata"]["namespace"] for r in _watch_roles(rendered, "Role")] == ["ops"]
    assert "--namespace=ops" in _container(rendered)["args"]


def test_metric_values_become_operator_flags() -> None:
    args = _container(
        by_kind(
            render(
                "metrics.flowLabel=true",
                "metrics.buckets.nodeDuration={0.5,1,2.5}",
                "metrics.buckets.scheduleLatency={0.01,0.1}",
                "metrics.buckets.flowDuration={10,60}",
            )
        )
    )["args"]
    assert "--metrics-flow-label" in args
    assert "--node-duration-buckets=0.5,1,2.5" in args
    assert "--schedule-latency-buckets=0.01,0.1" in args
    assert "--flow-duration-buckets=10,60" in args


def test_policy_values_become_operator_flags_and_are_off_by_default() -> None:
    defaults = _container(by_kind(render()))["args"]
    assert not [a for a in defaults if "images" in a or "node-" in a or "parallelism" in a]
    args = _container(
        by_kind(
            render(
                "policy.allowedImages={registry.example.com/*,python:3.*}",
                "policy.nodeResources.defaults.requests.cpu=100m",
                "policy.nodeResources.defaults.requests.memory=128Mi",
                "policy.nodeResources.defaults.limits.memory=512Mi",
                "policy.nodeResources.max.cpu=2",
                "policy.nodeResources.max.memory=4Gi",
                "policy.maxFlowParallelism=8",
            )
        )
    )["args"]
    assert "--allowed-images=registry.example.com/*,python:3.*" in args
    assert "--default-node-requests=cpu=100m,memory=128Mi" in args
    assert "--default-node-limits=memory=512Mi" in args
    assert "--max-node-resources=cpu=2,memory=4Gi" in args
    assert "--max-flow-parallelism=8" in args


def test_dashboard_configmap_holds_valid_json_for_the_sidecar() -> None:
    (cm,) = by_kind(render("dashboard.enabled=true"))["ConfigMap"]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["flowcraft.json"])
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    for metric in (
        "flowcraft_node_duration_seconds_bucket",
        "flowcraft_node_schedule_latency_seconds_bucket",
        "flowcraft_flow_duration_seconds_bucket",
        "flowcraft_flows_total",
        "flowcraft_nodes_total",
        "flowcraft_nodes_running",
    ):
        assert metric in exprs


def test_optional_objects_are_off_by_default() -> None:
    rendered = by_kind(render())
    assert "ServiceMonitor" not in rendered
    assert "ConfigMap" not in rendered
    (monitor,) = by_kind(render("metrics.serviceMonitor.enabled=true"))["ServiceMonitor"]
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"


def _webhook(*sets: str) -> dict[str, list[dict[str, Any]]]:
    return by_kind(render("webhook.enabled=true", *sets, namespace="fsys"))


def test_webhook_is_off_by_default() -> None:
    rendered = by_kind(render())
    assert "ValidatingWebhookConfiguration" not in rendered
    assert "Secret" not in rendered
    assert not [a for a in _container(rendered)["args"] if a.startswith("--webhook")]


def test_webhook_tls_service_configuration_and_flags_agree(tmp_path: Path) -> None:
    import base64  # noqa: PLC0415
    import hashlib  # noqa: PLC0415

    rendered = _webhook()
    (secret,) = rendered["Secret"]
    assert secret["type"] == "kubernetes.io/tls"
    (config,) = rendered["ValidatingWebhookConfiguration"]
    assert config["metadata"]["name"] == "fsys-flowcraft"
    (hook,) = config["webhooks"]
    assert hook["name"] == "validate.flows.flowcraft.io"
    assert hook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
    assert hook["clientConfig"]["service"] == {
        "name": "flowcraft-webhook", "namespace": "fsys", "path": "/validate-flow", "port": 443,
    }  # fmt: skip
    assert hook["rules"][0]["resources"] == ["flows", "blueprints"]
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert (hook["failurePolicy"], hook["sideEffects"]) == ("Ignore", "None")
    assert "namespaceSelector" not in hook  # cluster scope: every namespace
    services = {svc["metadata"]["name"]: svc for svc in rendered["Service"]}
    assert services["flowcraft-webhook"]["spec"]["ports"][0]["targetPort"] == "webhook"
    container = _container(rendered)
    assert "--webhook-port=9443" in container["args"]
    assert "--webhook-cert-dir=/etc/flowcraft/webhook" in container["args"]
    assert {"name": "webhook", "containerPort": 9443} in container["ports"]
    # Ready means the webhook answers (kopf's health endpoint can answer first).
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/healthz", "port": "webhook", "scheme": "HTTPS",
    }  # fmt: skip
    assert container["livenessProbe"]["httpGet"]["port"] == "health"
    (deployment,) = rendered["Deployment"]
    template = deployment["spec"]["template"]
    assert template["metadata"]["annotations"]["checksum/webhook-tls"] == (
        hashlib.sha256(secret["data"]["tls.crt"].encode()).hexdigest()
    )
    (volume,) = [v for v in template["spec"]["volumes"] if v["name"] == "webhook-tls"]
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    # The serving certificate is the CA's, for the Service's in-cluster name.
    for key in ("ca.crt", "tls.crt"):
        (tmp_path / key).write_bytes(base64.b64decode(secret["data"][key]))
    proc = subprocess.run(
        ["openssl", "verify", "-CAfile", "ca.crt", "-verify_hostname",
         "flowcraft-webhook.fsys.svc", "tls.crt"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_webhook_failure_policy_and_namespaced_scope() -> None:
    (config,) = _webhook(
        "webhook.failurePolicy=Fail", "rbac.scope=namespaced", "watchNamespaces={a,b}"
    )["ValidatingWebhookConfiguration"]
    (hook,) = config["webhooks"]
    assert hook["failurePolicy"] == "Fail"
    assert hook["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["a", "b"]}
    ]
    proc = subprocess.run(
        [helm_binary(), "template", "x", str(CHART), "--set", "webhook.failurePolicy=Never"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "schema" in proc.stderr


def test_schema_rejects_unknown_values_and_scopes() -> None:
    for bad in ("rbac.scope=everything", "no.such=value", "metrics.buckets.nodeDuration={-1}"):
        proc = subprocess.run(
            [helm_binary(), "template", "x", str(CHART), "--set", bad],
            capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert proc.returncode != 0, bad
        assert "schema" in proc.stderr, proc.stderr


# ------------------------------------------------------------------ the real apiserver


def _dry_run(cluster: Cluster, manifests: str) -> str:
    proc = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=manifests)
    return proc.stdout


@pytest.mark.parametrize("scope", ["cluster", "namespaced"])
def test_rendered_chart_passes_a_server_side_dry_run(
    cluster: Cluster, namespace: str, scope: str, tmp_path: Path
) -> None:
    sets = [f"rbac.scope={scope}", "dashboard.enabled=true", "webhook.enabled=true"]
    if scope == "namespaced":
        sets.append(f"watchNamespaces={{{namespace}}}")
    # Release objects are dry-run in the test namespace; the CRD (cluster-scoped) too.
    out = _dry_run(cluster, render(*sets, namespace=namespace, crds=True))
    expected = ["deployment.apps", "serviceaccount", "service", "configmap", "secret"]
    expected.append("validatingwebhookconfiguration.admissionregistration.k8s.io")
    expected += (
        ["clusterrole.", "clusterrolebinding."] if scope == "cluster" else ["role.", "rolebinding."]
    )
    for kind in expected:
        assert kind in out, out
    assert "customresourcedefinition.apiextensions.k8s.io/flows.flowcraft.io" in out
