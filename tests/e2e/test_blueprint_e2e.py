"""A flowcraft blueprint with an initial context, submitted with the CLI, on real pods.

The README promises `flowcraft submit blueprint.json --functions F --initial-context FILE`: the
same blueprint the local runner runs (examples/blueprint: camelCase ids, JavaScript conditions,
a loop, context writes, an initial context) must give flowcraft's final context on a cluster
too, with the node Jobs named from the ids and the real ids kept where users see them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cluster import ROOT, Cluster
from flowcraft.drivers.kubernetes import builders, results
from operator_harness import (
    OperatorProcess,
    flow_crd,
    get_flow,
    operator,
    runner_image,
)

pytestmark = pytest.mark.e2e

__all__ = ["flow_crd", "operator", "runner_image"]  # fixtures

BLUEPRINT = ROOT / "examples" / "blueprint"
# What flowcraft 2.10.1 returns as result.context for this blueprint (see examples/README.md).
FLOWCRAFT_CONTEXT = json.loads((BLUEPRINT / "flowcraft-context.json").read_text())


def flowcraft(cluster: Cluster, namespace: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "flowcraft"), *args,
         "--kubeconfig", str(cluster.kubeconfig), "--namespace", namespace],
        capture_output=True, text=True, env=cluster.env(), timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip


def test_submit_a_blueprint_with_an_initial_context(
    cluster: Cluster, namespace: str, operator: OperatorProcess, runner_image: str
) -> None:
    proc = flowcraft(
        cluster,
        namespace,
        "submit",
        str(BLUEPRINT / "blueprint.json"),
        "--functions",
        str(BLUEPRINT / "functions.yaml"),
        "--initial-context",
        str(BLUEPRINT / "context.json"),
        "--watch",
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    doc = get_flow(cluster, namespace, "order-pipeline")
    status = doc["status"]
    assert status["phase"] == "Succeeded", status
    # Real ids in the status; the loop body ran twice (iterations 0 and 1).
    assert {"fetchOrder", "chargeCard", "retryCounter", "notifyCustomer"} <= set(status["nodes"])
    jobs = cluster.kubectl_json("get", "jobs", "-n", namespace)["items"]
    by_node: dict[str, list[str]] = {}
    for job in jobs:
        node = job["metadata"]["annotations"][builders.ANN_NODE]
        by_node.setdefault(node, []).append(job["metadata"]["name"])
    assert len(by_node["notifyCustomer"]) == 2
    assert "retryCounter" not in by_node  # the loop controller runs in the operator
    for names in by_node.values():
        assert all(len(name) <= 63 and name == name.lower() for name in names)
    configmaps = {
        cm["metadata"]["name"]: cm
        for cm in cluster.kubectl_json("get", "configmaps", "-n", namespace)["items"]
    }
    assert results.final_context(doc, configmaps) == FLOWCRAFT_CONTEXT
