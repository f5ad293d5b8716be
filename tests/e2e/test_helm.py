"""The chart, installed with helm, runs the reference flow on real pods; uninstall is clean.

What a platform team does on day one, step by step: build and load the images, ``helm
install`` into a fresh namespace, ``kubectl apply`` the example, read the result back, scrape
/metrics through the Service (the apiserver's service proxy, as Prometheus would reach it),
drive the CLI (``flowcraft submit --watch``, ``get``, ``logs``), then ``helm uninstall``.

The release runs in namespaced mode, watching only this module's flow namespace, so it can
never act on another test's Flows (those have their own operator processes).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cluster import CLUSTER_DIR, ROOT, Cluster
from operator_harness import EXAMPLES, apply_file, flow_crd, items, wait_for, wait_phase

pytestmark = pytest.mark.e2e

__all__ = ["flow_crd"]  # fixture

CHART = ROOT / "charts" / "flowcraft"
# Tags from the environment, as the harness's runner_image: two checkouts can test one cluster.
RUNNER_IMAGE = os.environ.get("FLOWCRAFT_TEST_RUNNER_IMAGE", "flowcraft-runner:0.1.0")
OPERATOR_IMAGE = os.environ.get("FLOWCRAFT_TEST_OPERATOR_IMAGE", "flowcraft-operator:0.1.0")
IMAGES = (RUNNER_IMAGE, OPERATOR_IMAGE)


def _helm_binary() -> str:
    local = CLUSTER_DIR / "bin" / "helm"
    return os.environ.get("FLOWCRAFT_HELM") or (str(local) if local.exists() else "helm")


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str  # where the operator runs
    flows: str  # the namespace it watches
    cluster: Cluster

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [_helm_binary(), "--kubeconfig", str(self.cluster.kubeconfig), *args]
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=self.cluster.env(), timeout=300, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{proc.stderr}{proc.stdout}")
        return proc

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/instance={self.name}"

    def leader_pod(self) -> str | None:
        """The pod holding the leader Lease (holderIdentity is ``<pod name>_<suffix>``)."""
        lease = self.cluster.kubectl(
            "get", "lease", f"{self.name}-flowcraft", "-n", self.namespace, "-o", "json",
            check=False,
        )  # fmt: skip
        if lease.returncode != 0:
            return None
        holder = str((json.loads(lease.stdout).get("spec") or {}).get("holderIdentity") or "")
        return holder.rpartition("_")[0] or None

    def metrics(self) -> str:
        """The leader's /metrics (the standby's counts nothing: it runs no reconcile)."""
        pod = wait_for(self.leader_pod, timeout=60, what="the chart's leader pod")
        path = f"/api/v1/namespaces/{self.namespace}/pods/http:{pod}:8080/proxy/metrics"
        return self.cluster.kubectl("get", "--raw", path).stdout


@pytest.fixture(scope="module")
def release(cluster: Cluster, load_images: Any, flow_crd: None) -> Iterator[Release]:
    if not cluster.runs_containers:
        pytest.fail("e2e tests need a cluster that runs containers (make cluster)", pytrace=False)
    # Cheap when nothing changed; the images then match the code under test.
    subprocess.run(
        ["make", "-s", "image-runner", "image-operator",
         f"RUNNER_IMAGE={RUNNER_IMAGE}", f"OPERATOR_IMAGE={OPERATOR_IMAGE}"],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    load_images(*IMAGES)
    rel = Release(
        name=f"fc-{uuid.uuid4().hex[:6]}",
        namespace=cluster.create_namespace("fc-helm-op"),
        flows=cluster.create_namespace("fc-helm-flows"),
        cluster=cluster,
    )
    try:
        rel.helm(
            "install", rel.name, str(CHART), "--namespace", rel.namespace, "--wait",
            "--timeout", "3m",
            "--set", "rbac.scope=namespaced",
            "--set", f"watchNamespaces={{{rel.flows}}}",
            "--set", "metrics.flowLabel=true",
            "--set", f"image.repository={OPERATOR_IMAGE.rpartition(':')[0]}",
            "--set", f"image.tag={OPERATOR_IMAGE.rpartition(':')[2]}",
            "--set", f"runnerImage={RUNNER_IMAGE}",
            "--set", "webhook.enabled=true",
        )  # fmt: skip
        yield rel
    finally:
        logs = cluster.kubectl(
            "logs", "-n", rel.namespace, "-l", rel.selector, "--tail=200", check=False
        )
        sys.stderr.write(f"\n--- operator log ({rel.name}) ---\n{logs.stdout}{logs.stderr}\n")
        rel.helm("uninstall", rel.name, "--namespace", rel.namespace, "--ignore-not-found",
                 check=False)  # fmt: skip
        for ns in (rel.flows, rel.namespace):
            cluster.delete_namespace(ns)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _samples(text: str, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Prometheus text format -> {labels: value} of one sample name."""
    out: dict[frozenset[tuple[str, str]], float] = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
            out[labels] = float(match.group(2))
    return out


def test_the_charts_webhook_refuses_an_invalid_flow_with_the_validate_problems(
    release: Release,
) -> None:
    """The API server reaches the operator through the chart's Service, with the chart's
    certificate: ``kubectl apply`` of a cycle is refused and nothing is created."""
    cluster, ns = release.cluster, release.flows
    doc = {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": "cycle"},
        "spec": {
            "functions": {"ok": {"script": "def run(ctx):\n    return 1\n"}},
            "nodes": [{"id": "a", "uses": "ok"}, {"id": "b", "uses": "ok"}],
            "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}],
        },
    }

    # The pods are Ready once the webhook answers, but the Service routes to them only after
    # the endpoints reach the proxy; with failurePolicy Ignore an apply in between is admitted
    # unchecked (it happened once, when readiness still followed kopf's health endpoint). So
    # wait, with server-side dry runs (nothing is created), until the webhook answers through
    # the Service, then apply for real.
    def refused() -> bool:
        dry = cluster.kubectl(
            "apply", "--dry-run=server", "-n", ns, "-f", "-", input=json.dumps(doc), check=False
        )
        return dry.returncode != 0

    wait_for(refused, timeout=60, interval=1.0, what="the webhook to answer through the Service")
    proc = cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(doc), check=False)
    assert proc.returncode != 0, "the webhook (failurePolicy Ignore) was not reached"
    assert 'admission webhook "validate.flows.flowcraft.io" denied the request' in proc.stderr
    assert "  - spec.edges: cycle: a -> b -> a" in proc.stderr
    listed = cluster.kubectl("get", "flow", "cycle", "-n", ns, check=False)
    assert listed.returncode != 0

    # A Blueprint is checked alone: its `add` is its parent flow's, its cycle is not allowed.
    blueprint = {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Blueprint",
        "metadata": {"name": "loop-back"},
        "spec": {
            "nodes": [{"id": "a", "uses": "add"}, {"id": "b", "uses": "add"}],
            "edges": doc["spec"]["edges"],
        },
    }
    proc = cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(blueprint), check=False)
    assert proc.returncode != 0, proc.stdout
    assert "invalid blueprint: 1 problem" in proc.stderr
    assert "  - spec.edges: cycle: a -> b -> a" in proc.stderr
    blueprint["spec"]["edges"] = blueprint["spec"]["edges"][:1]
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(blueprint))


def test_parallel_example_through_the_chart(release: Release) -> None:
    cluster, ns = release.cluster, release.flows
    apply_file(cluster, ns, EXAMPLES / "parallel.yaml")
    flow = wait_phase(cluster, ns, "parallel", {"Succeeded", "Failed"})
    status = flow["status"]
    assert status["phase"] == "Succeeded", status

    # Outputs are in ConfigMaps; gather saw every task's output.
    ref = status["nodes"]["gather"]["outputRef"]
    cm = cluster.kubectl_json("get", "configmap", ref, "-n", ns)
    assert json.loads(cm["data"]["output.json"]) == {
        f"t{n}": {"data": f"Data from Task {n}"} for n in (1, 2, 3)
    }

    # The three task pods ran side by side (container times have second resolution).
    spans = []
    for n in (1, 2, 3):
        (pod,) = items(
            cluster, "pods", ns, f"flowcraft.io/flow=parallel,flowcraft.io/node=task-{n}"
        )
        term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        spans.append((_ts(term["startedAt"]), _ts(term["finishedAt"])))
    assert max(s for s, _ in spans) <= min(e for _, e in spans), f"no overlap: {spans}"

    # Per-node timings in the status, and the printer columns kubectl shows.
    for node, ns_status in status["nodes"].items():
        assert _ts(ns_status["startedAt"]) <= _ts(ns_status["finishedAt"]), node
    table = cluster.kubectl("get", "flows", "-n", ns).stdout
    assert table.split()[:5] == ["NAME", "PHASE", "DONE", "DURATION", "AGE"], table
    assert "Succeeded" in table
    assert "5/5" in table

    # Metrics through the Service: one node-duration observation per node of this flow.
    # (Counted right after the status write that kubectl just saw: wait for that to land.)
    done = frozenset({("namespace", ns), ("flow", "parallel"), ("result", "succeeded")})

    def scraped() -> str | None:
        text = release.metrics()
        return text if done in _samples(text, "flowcraft_flows_total") else None

    text = wait_for(scraped, timeout=30, what="flowcraft_flows_total of the parallel flow")
    durations = _samples(text, "flowcraft_node_duration_seconds_count")
    mine = {k: v for k, v in durations.items() if ("namespace", ns) in k}
    assert mine == {
        frozenset({("namespace", ns), ("flow", "parallel"), ("result", "succeeded")}): 5.0
    }, durations
    flows = _samples(text, "flowcraft_flows_total")
    assert flows[frozenset({("namespace", ns), ("flow", "parallel"), ("result", "succeeded")})] == 1
    stages = {
        dict(k)["stage"] for k in _samples(text, "flowcraft_node_schedule_latency_seconds_count")
    }
    assert stages == {"dependency_to_create", "create_to_running"}
    assert _samples(text, "flowcraft_nodes_running") == {frozenset(): 0.0}
    assert any(dict(k).get("version") == "0.1.0" for k in _samples(text, "flowcraft_build_info"))


def _flowcraft(release: Release, *args: str) -> subprocess.CompletedProcess[str]:
    env = release.cluster.env()
    return subprocess.run(
        [str(Path(sys.executable).parent / "flowcraft"), *args, "--kubeconfig",
         str(release.cluster.kubeconfig), "--namespace", release.flows],
        capture_output=True, text=True, env=env, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip


def test_cli_submit_watch_get_and_logs(release: Release) -> None:
    proc = _flowcraft(release, "submit", str(EXAMPLES / "conditional.yaml"), "--watch")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "flow.flowcraft.io/conditional created" in proc.stdout
    assert "Succeeded" in proc.stdout
    # Followed node by node: one progress line per node that ran.
    assert re.search(r"\[\s*ok\] report succeeded", proc.stderr), proc.stderr

    proc = _flowcraft(release, "get", "conditional")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"flow {release.flows}/conditional: Succeeded in ")
    assert any("auto-approve" in line and "Skipped" in line for line in lines), proc.stdout

    proc = _flowcraft(release, "logs", "conditional")
    assert proc.returncode == 0, proc.stderr
    assert "==> report (conditional-report-1" in proc.stdout, proc.stdout

    proc = _flowcraft(release, "get", "no-such-flow")
    assert proc.returncode == 3
    assert proc.stderr.strip() == (
        f"flowcraft: error: flow 'no-such-flow' not found in namespace '{release.flows}'"
    )


def test_helm_uninstall_leaves_no_operator_objects_behind(release: Release) -> None:
    """Runs last in this module: the release is gone afterwards. The CRD stays (Helm never
    deletes CRDs it installed from crds/), and so do the user's Flows."""
    release.helm("uninstall", release.name, "--namespace", release.namespace, "--wait")
    cluster = release.cluster
    # The Deployment is gone; its pod may still be terminating (grace period): wait for it.
    cluster.kubectl(
        "wait", "--for=delete", "pod", "-l", release.selector, "-n", release.namespace,
        "--timeout=120s",
    )  # fmt: skip
    for ns in (release.namespace, release.flows):
        left = cluster.kubectl(
            "get", "deployments,services,serviceaccounts,configmaps,roles,rolebindings,pods",
            "-n", ns, "-l", release.selector, "-o", "name",
        ).stdout  # fmt: skip
        assert left.strip() == "", f"left behind in {ns}:\n{left}"
    left = cluster.kubectl(
        "get", "clusterroles,clusterrolebindings", "-l", release.selector, "-o", "name"
    ).stdout
    assert left.strip() == ""
    cluster.kubectl("get", "crd", "flows.flowcraft.io")
