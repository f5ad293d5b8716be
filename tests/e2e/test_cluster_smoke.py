"""Real pods on the cluster under test: a Job running the project's smoke image completes and
its termination message comes back in the pod status; pods reach the API through its Service."""

import time
from typing import Any

import pytest

from cluster import Cluster

pytestmark = pytest.mark.e2e


def job(name: str, image: str, *, command: list[str] | None = None, **env: str) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "imagePullPolicy": "Never",
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "terminationMessagePolicy": "File",
    }
    if command:
        container["command"] = command
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 300,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": command is not None,
                    "containers": [container],
                }
            },
        },
    }


def require_containers(cluster: Cluster) -> None:
    if not cluster.runs_containers:
        pytest.fail(
            "e2e tests need a cluster that runs containers; this is the kwok harness "
            "(make cluster-down && make cluster)",
            pytrace=False,
        )


def finished_pod(
    cluster: Cluster, namespace: str, name: str, timeout: float = 180
) -> dict[str, Any]:
    """Wait until the Job is Complete (or Failed: then fail with pods and events)."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        status = cluster.kubectl_json("get", "job", name, "-n", namespace).get("status", {})
        done = {c["type"] for c in status.get("conditions", []) if c["status"] == "True"}
        if done & {"Complete", "Failed"}:
            state = "Complete" if "Complete" in done else "Failed"
            break
        time.sleep(1)
    pods = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"job-name={name}")["items"]
    if state != "Complete":
        events = cluster.kubectl("get", "events", "-n", namespace, check=False).stdout
        raise AssertionError(f"job {name}: {state or 'timed out'}\npods: {pods}\n{events}")
    assert len(pods) == 1, pods
    return pods[0]


def test_smoke_job_writes_termination_message(
    cluster: Cluster, namespace: str, smoke_image: str
) -> None:
    require_containers(cluster)
    message = f"hello from {namespace}"
    cluster.apply(job("smoke", smoke_image, SMOKE_MESSAGE=message), namespace)
    pod = finished_pod(cluster, namespace, "smoke")
    assert pod["status"]["phase"] == "Succeeded"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0
    assert terminated["message"] == message
    logs = cluster.kubectl("logs", "-n", namespace, "job/smoke").stdout
    assert message in logs
    assert "python 3." in logs


def test_pod_reaches_apiserver_through_kubernetes_service(
    cluster: Cluster, namespace: str, smoke_image: str
) -> None:
    """In-cluster clients (the operator) use KUBERNETES_SERVICE_HOST: the Service must route."""
    require_containers(cluster)
    probe = (
        "import os, socket, ssl\n"
        "host, port = os.environ['KUBERNETES_SERVICE_HOST'], 443\n"
        "ctx = ssl.create_default_context(cafile="
        "'/var/run/secrets/kubernetes.io/serviceaccount/ca.crt')\n"
        "ctx.check_hostname = False\n"
        "with socket.create_connection((host, port), timeout=10) as s:\n"
        "    with ctx.wrap_socket(s) as t:\n"
        "        t.sendall(b'GET /readyz HTTP/1.0\\r\\n\\r\\n')\n"
        "        reply = t.recv(200).decode()\n"
        "open('/dev/termination-log', 'w').write(reply.split('\\r\\n')[0])\n"
    )
    cluster.apply(job("apiprobe", smoke_image, command=["python3", "-c", probe]), namespace)
    pod = finished_pod(cluster, namespace, "apiprobe")
    status_line = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    # Anonymous access to /readyz is allowed (200) or refused (401/403): either proves routing.
    assert status_line.startswith("HTTP/1."), status_line


def test_pod_resolves_service_names(cluster: Cluster, namespace: str, smoke_image: str) -> None:
    """Cluster DNS answers for Services (the harness runs CoreDNS without upstream forwarding)."""
    require_containers(cluster)
    expected = cluster.kubectl(
        "get", "service", "kubernetes", "-n", "default", "-o", "jsonpath={.spec.clusterIP}"
    ).stdout
    probe = (
        "import socket\n"
        "ip = socket.gethostbyname('kubernetes.default.svc.cluster.local')\n"
        "open('/dev/termination-log', 'w').write(ip)\n"
    )
    cluster.apply(job("dns", smoke_image, command=["python3", "-c", probe]), namespace)
    pod = finished_pod(cluster, namespace, "dns")
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] == expected
