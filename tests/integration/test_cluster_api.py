"""The cluster under test answers, runs the expected API surface, and enforces RBAC."""

import json

import pytest
from kubernetes import client

from cluster import Cluster

pytestmark = pytest.mark.integration


def test_apiserver_answers_and_serves_batch_v1(cluster: Cluster) -> None:
    assert cluster.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    version = json.loads(cluster.kubectl("get", "--raw", "/version").stdout)
    assert version["major"] == "1"
    resources = json.loads(cluster.kubectl("get", "--raw", "/apis/batch/v1").stdout)
    assert "jobs" in {r["name"] for r in resources["resources"]}


def test_rbac_is_enforced(cluster: Cluster, namespace: str) -> None:
    """A fresh ServiceAccount may do nothing until a Role grants it something."""
    cluster.kubectl("create", "serviceaccount", "probe", "-n", namespace)
    sa = f"system:serviceaccount:{namespace}:probe"
    can = cluster.kubectl(
        "auth", "can-i", "create", "jobs.batch", "-n", namespace, "--as", sa, check=False
    )
    assert can.stdout.strip() == "no", can.stdout + can.stderr
    cluster.kubectl(
        "create", "role", "jobs", "-n", namespace, "--verb=create,get", "--resource=jobs.batch"
    )
    cluster.kubectl(
        "create", "rolebinding", "jobs", "-n", namespace, "--role=jobs",
        f"--serviceaccount={namespace}:probe",
    )  # fmt: skip
    can = cluster.kubectl("auth", "can-i", "create", "jobs.batch", "-n", namespace, "--as", sa)
    assert can.stdout.strip() == "yes"


def test_python_client_lists_nodes(cluster: Cluster, k8s_api: object) -> None:
    nodes = client.CoreV1Api(k8s_api).list_node().items
    assert nodes, "the cluster has no node"
    ready = [
        n.metadata.name
        for n in nodes
        if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
    ]
    assert ready, f"no Ready node among {[n.metadata.name for n in nodes]}"


def test_job_runs_to_completion(cluster: Cluster, namespace: str, smoke_image: str) -> None:
    """The Job controller, scheduler and node (kubelet, or kwok's stages) complete a Job."""
    cluster.kubectl(
        "create", "job", "quick", "-n", namespace, f"--image={smoke_image}",
    )  # fmt: skip
    cluster.kubectl(
        "wait", "-n", namespace, "job/quick", "--for=condition=Complete", "--timeout=120s",
        timeout=150,
    )  # fmt: skip
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", "job-name=quick")
    assert [p["status"]["phase"] for p in pods["items"]] == ["Succeeded"]
