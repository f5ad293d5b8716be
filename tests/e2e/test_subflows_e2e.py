"""Subflow nodes on a real cluster: a Blueprint applied with kubectl, a parent Flow whose
subflow node runs it as a child Flow (real pods), the outputs mapped back, the child visible
with `kubectl get flows` and removed with its parent; a missing Blueprint fails the node; the
operator needs no rights beyond the ones deploy/operator.yaml ships. Nothing here mocks the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cluster import Cluster
from flowcraft.drivers.kubernetes import results
from flowcraft.drivers.kubernetes import status as flow_status
from flowcraft.drivers.kubernetes.subflows import LABEL_DEPTH, LABEL_PARENT_UID
from flowcraft.model import FlowStatus
from operator_harness import (
    OperatorProcess,
    apply_doc,
    flow_crd,
    get_flow,
    items,
    operator,
    operator_role_kubeconfig,
    runner_image,
    wait_for,
    wait_phase,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("runner_image")]

__all__ = ["flow_crd", "operator", "runner_image"]  # fixtures

FUNCTIONS = {
    "prepare": {
        "script": 'def run(ctx):\n    ctx.set("val1", 10)\n    ctx.set("val2", 20)\n'
        '    return "ready"\n'
    },
    "add": {"script": 'def run(ctx):\n    return ctx.get("a") + ctx.get("b")\n'},
    "report": {"script": "def run(ctx):\n    return {'got': ctx.get('sum')}\n"},
}


def blueprint(name: str, nodes: list[Any], edges: list[Any] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Blueprint",
        "metadata": {"name": name},
        "spec": {"nodes": nodes, "edges": list(edges)},
    }


def parent_flow(name: str, blueprint_id: str) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {
            "functions": FUNCTIONS,
            "nodes": [
                {"id": "prepare", "uses": "prepare"},
                {
                    "id": "run-math",
                    "uses": "subflow",
                    "params": {
                        "blueprintId": blueprint_id,
                        "inputs": {"a": "val1", "b": "val2"},
                        "outputs": {"sum": "add"},
                    },
                },
                {"id": "report", "uses": "report"},
            ],
            "edges": [
                {"source": "prepare", "target": "run-math"},
                {"source": "run-math", "target": "report"},
            ],
        },
    }


def context_of(cluster: Cluster, namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    status = FlowStatus.model_validate(doc["status"])
    configmaps = {
        ref: cluster.kubectl_json("get", "configmap", ref, "-n", namespace)
        for ref in flow_status.output_refs(status).values()
    }
    return results.final_context(doc, configmaps)


def test_subflow_runs_as_a_child_flow_and_goes_with_its_parent(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_doc(cluster, namespace, blueprint("math", [{"id": "add", "uses": "add"}]))
    # The parent's subflow runs `outer`, whose own subflow node runs `math`: two levels.
    outer = blueprint(
        "outer",
        [
            {
                "id": "inner",
                "uses": "subflow",
                "params": {
                    "blueprintId": "math",
                    "inputs": {"a": "a", "b": "b"},
                    "outputs": {"add": "add"},
                },
            }
        ],
    )
    apply_doc(cluster, namespace, outer)
    apply_doc(cluster, namespace, parent_flow("parent", "outer"))
    flow = wait_phase(cluster, namespace, "parent", {"Succeeded", "Failed"}, timeout=300)
    assert flow["status"]["phase"] == "Succeeded", flow["status"]

    context = context_of(cluster, namespace, flow)
    assert context["sum"] == 30  # outputs: {sum: add} read the child's `add` key
    assert context["_outputs.report"] == {"got": 30}

    uid = flow["metadata"]["uid"]
    (child,) = items(cluster, "flows", namespace, f"{LABEL_PARENT_UID}={uid}")
    assert child["status"]["phase"] == "Succeeded"
    assert child["metadata"]["labels"][LABEL_DEPTH] == "1"
    assert child["spec"]["context"] == {"a": 10, "b": 20}
    (owner,) = child["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Flow", uid, True)
    (grandchild,) = items(
        cluster, "flows", namespace, f"{LABEL_PARENT_UID}={child['metadata']['uid']}"
    )
    assert grandchild["metadata"]["labels"][LABEL_DEPTH] == "2"
    assert context_of(cluster, namespace, grandchild)["_outputs.add"] == 30

    listed = cluster.kubectl("get", "flows", "-n", namespace).stdout
    assert child["metadata"]["name"] in listed
    assert grandchild["metadata"]["name"] in listed
    shown = cluster.kubectl("get", "blueprints", "-n", namespace).stdout
    assert "math" in shown
    assert "outer" in shown

    cluster.kubectl("delete", "flow", "parent", "-n", namespace, "--wait=true")

    def descendants_gone() -> bool:
        return not items(cluster, "flows", namespace)

    wait_for(descendants_gone, timeout=120, what="the child Flows to be garbage-collected")


def test_missing_blueprint_fails_the_node_naming_it(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_doc(cluster, namespace, parent_flow("orphan", "no-such-blueprint"))
    flow = wait_phase(cluster, namespace, "orphan", {"Succeeded", "Failed"}, timeout=180)
    assert flow["status"]["phase"] == "Failed"
    node = flow["status"]["nodes"]["run-math"]
    assert node["phase"] == "Failed"
    assert "runs blueprint 'no-such-blueprint', but no Blueprint in namespace" in node["message"]
    assert get_flow(cluster, namespace, "orphan")["status"]["nodes"]["report"]["phase"] in (
        "Skipped",
        "Cancelled",
    )


def test_subflow_with_only_the_shipped_rbac(
    cluster: Cluster, namespace: str, flow_crd: None, tmp_path: Path
) -> None:
    kubeconfig = operator_role_kubeconfig(cluster, namespace, tmp_path)
    restricted = Cluster(kubeconfig=kubeconfig, mode=cluster.mode)
    proc = OperatorProcess(restricted, [namespace], tmp_path / "operator.log")
    proc.start()
    try:
        apply_doc(cluster, namespace, blueprint("math", [{"id": "add", "uses": "add"}]))
        apply_doc(cluster, namespace, parent_flow("rbac", "math"))
        flow = wait_phase(cluster, namespace, "rbac", {"Succeeded", "Failed"}, timeout=300)
        assert flow["status"]["phase"] == "Succeeded", (flow["status"], proc.log()[-3000:])
        assert "Forbidden" not in proc.log()
    finally:
        proc.stop()
        cluster.kubectl(
            "delete", "clusterrole", f"flowcraft-operator-test-{namespace}"[:63], check=False
        )
