"""The shared-cluster policy on a real cluster: an operator started with an image allowlist,
default and maximum node resources, running with only the RBAC it ships with. A Flow using an
image outside the allowlist, or asking for more than the maximum, fails before any Job exists,
with a message naming the node and the image or resource (status and Event); an allowed Flow
runs real pods whose Job carries the default resources. Nothing here mocks the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cluster import Cluster
from operator_harness import (
    OperatorProcess,
    apply_doc,
    events_for,
    flow_crd,
    items,
    operator_role_kubeconfig,
    runner_image,
    wait_phase,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("runner_image")]

__all__ = ["flow_crd", "runner_image"]  # fixtures

POLICY_FLAGS = [
    "--allowed-images=registry.example.com/*",
    "--default-node-requests=cpu=10m,memory=32Mi",
    "--default-node-limits=memory=256Mi",
    "--max-node-resources=cpu=1,memory=1Gi",
]


def flow(name: str, function: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"nodes": [{"id": "step", "uses": "fn"}], "functions": {"fn": function}},
    }


SCRIPT = "def run(ctx):\n    return 'ok'\n"


def test_policy_refuses_images_and_resources_and_fills_defaults(
    cluster: Cluster, namespace: str, flow_crd: None, tmp_path: Path
) -> None:
    kubeconfig = operator_role_kubeconfig(cluster, namespace, tmp_path)
    restricted = Cluster(kubeconfig=kubeconfig, mode=cluster.mode)
    proc = OperatorProcess(
        restricted, [namespace], tmp_path / "operator.log", extra_args=POLICY_FLAGS
    )
    proc.start()
    try:
        apply_doc(cluster, namespace, flow("denied", {"image": "docker.io/library/evil:1"}))
        greedy = {"script": SCRIPT, "resources": {"requests": {"cpu": "4"}}}
        apply_doc(cluster, namespace, flow("greedy", greedy))
        apply_doc(cluster, namespace, flow("fine", {"script": SCRIPT}))

        denied = wait_phase(cluster, namespace, "denied", {"Succeeded", "Failed"}, timeout=120)
        message = denied["status"]["message"]
        assert denied["status"]["phase"] == "Failed", denied["status"]
        assert (
            "node 'step' (function 'fn') uses image 'docker.io/library/evil:1', which the "
            "operator's image allowlist does not allow (registry.example.com/*)"
        ) in message
        assert not items(cluster, "jobs", namespace, "flowcraft.io/flow=denied")
        assert any(
            "docker.io/library/evil:1" in (e.get("message") or "")
            for e in events_for(cluster, namespace, "denied")
        )

        refused = wait_phase(cluster, namespace, "greedy", {"Succeeded", "Failed"}, timeout=120)
        assert refused["status"]["phase"] == "Failed", refused["status"]
        assert (
            "node 'step' (function 'fn') requests cpu=4, more than the operator's maximum cpu=1"
        ) in refused["status"]["message"]
        assert not items(cluster, "jobs", namespace, "flowcraft.io/flow=greedy")

        fine = wait_phase(cluster, namespace, "fine", {"Succeeded", "Failed"}, timeout=300)
        assert fine["status"]["phase"] == "Succeeded", (fine["status"], proc.log()[-3000:])
        (job,) = items(cluster, "jobs", namespace, "flowcraft.io/flow=fine")
        (container,) = job["spec"]["template"]["spec"]["containers"]
        assert container["resources"] == {
            "requests": {"cpu": "10m", "memory": "32Mi"},
            "limits": {"memory": "256Mi"},
        }
        assert "Forbidden" not in proc.log()
    finally:
        proc.stop()
        cluster.kubectl(
            "delete", "clusterrole", f"flowcraft-operator-test-{namespace}"[:63], check=False
        )
