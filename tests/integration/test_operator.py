"""The operator against a real kube-apiserver: CRD admission, validation, Jobs, restarts, GC.

These tests need no running containers (they pass on the kwok harness too): they check what
the operator writes to the API. Running the nodes for real is tests/e2e/test_operator_e2e.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cluster import Cluster
from operator_harness import (
    EXAMPLES,
    OperatorProcess,
    apply_doc,
    apply_file,
    events_for,
    flow_crd,
    get_flow,
    items,
    jobs_by_node,
    operator,
    operator_role_kubeconfig,
    wait_for,
    wait_phase,
)

pytestmark = pytest.mark.integration

__all__ = ["flow_crd", "operator"]  # fixtures

FN = {"ok": {"script": "def run(ctx):\n    return 1\n"}}


def _flow(name: str, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"functions": copy.deepcopy(FN), "nodes": nodes, "edges": edges},
    }


def _rejected(cluster: Cluster, namespace: str, doc: dict[str, Any]) -> str:
    proc = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(doc), check=False)
    assert proc.returncode != 0, f"expected admission to reject {doc['metadata']['name']}"
    return proc.stderr


def test_admission_rejects_duplicate_node_ids(
    cluster: Cluster, namespace: str, flow_crd: None
) -> None:
    doc = _flow("dup", [{"id": "a", "uses": "ok"}, {"id": "a", "uses": "ok"}], [])
    err = _rejected(cluster, namespace, doc)
    assert "Duplicate value" in err
    assert "spec.nodes[1]" in err


def test_admission_takes_flowcraft_ids_and_rejects_ids_with_a_slash(
    cluster: Cluster, namespace: str, flow_crd: None
) -> None:
    err = _rejected(cluster, namespace, _flow("badid", [{"id": "a/b", "uses": "ok"}], []))
    assert "spec.nodes[0].id" in err
    good = _flow("goodid", [{"id": "fetchUser", "uses": "ok"}, {"id": "x_y z", "uses": "ok"}], [])
    cluster.apply(good, namespace)
    stored = cluster.kubectl_json("get", "flow", "goodid", "-n", namespace)
    assert [n["id"] for n in stored["spec"]["nodes"]] == ["fetchUser", "x_y z"]


def test_admission_rejects_unknown_functions_with_a_readable_message(
    cluster: Cluster, namespace: str, flow_crd: None
) -> None:
    err = _rejected(cluster, namespace, _flow("nofn", [{"id": "a", "uses": "missing"}], []))
    assert "every node's uses must name an entry of spec.functions" in err


def test_admission_rejects_unknown_fields(cluster: Cluster, namespace: str, flow_crd: None) -> None:
    doc = _flow("typo", [{"id": "a", "uses": "ok", "conifg": {}}], [])
    err = _rejected(cluster, namespace, doc)
    assert "conifg" in err


def test_admission_allows_the_thousand_node_fan_out(
    cluster: Cluster, namespace: str, flow_crd: None
) -> None:
    nodes = [{"id": "start", "uses": "ok"}, {"id": "end", "uses": "ok"}]
    edges = []
    for i in range(1000):
        nodes.append({"id": f"n{i}", "uses": "ok"})
        edges += [{"source": "start", "target": f"n{i}"}, {"source": f"n{i}", "target": "end"}]
    doc = _flow("wide", nodes, edges)
    doc["spec"]["suspend"] = True  # admission only: nothing should run
    apply_doc(cluster, namespace, doc)
    assert len(get_flow(cluster, namespace, "wide")["spec"]["nodes"]) == 1002


@pytest.mark.parametrize(
    ("edges", "needle"),
    [
        ([{"source": "a", "target": "b"}, {"source": "b", "target": "a"}], "cycle"),
        ([{"source": "a", "target": "nope"}], "unknown target node 'nope'"),
    ],
    ids=["cycle", "unknown-edge-target"],
)
def test_what_only_python_checks_fails_the_flow_with_the_reason_and_an_event(
    cluster: Cluster,
    namespace: str,
    operator: OperatorProcess,
    edges: list[dict[str, str]],
    needle: str,
) -> None:
    apply_doc(
        cluster,
        namespace,
        _flow("bad", [{"id": "a", "uses": "ok"}, {"id": "b", "uses": "ok"}], edges),
    )
    flow = wait_phase(cluster, namespace, "bad", {"Failed"}, timeout=60)
    assert needle in flow["status"]["message"]
    assert not items(cluster, "jobs", namespace)
    event = wait_for(
        lambda: [e for e in events_for(cluster, namespace, "bad") if e["reason"] == "InvalidFlow"],
        what="InvalidFlow event",
    )[0]
    assert event["type"] == "Warning"
    assert needle in event["message"]
    assert operator.alive(), "the operator must survive invalid flows"


def test_roots_become_jobs_owned_by_the_flow(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_file(cluster, namespace, EXAMPLES / "parallel.yaml")
    flow = wait_for(
        lambda: (f := get_flow(cluster, namespace, "parallel")).get("status") and f,
        what="status written",
    )
    job = wait_for(
        lambda: items(cluster, "jobs", namespace, "flowcraft.io/node=start-parallel"),
        what="the root's Job",
    )[0]
    meta = job["metadata"]
    assert meta["name"] == "parallel-start-parallel-1"
    assert meta["labels"]["flowcraft.io/flow"] == "parallel"
    assert meta["labels"]["flowcraft.io/attempt"] == "1"
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["uid"], owner["controller"]) == (
        "Flow",
        flow["metadata"]["uid"],
        True,
    )
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert job["spec"]["backoffLimit"] == 0
    status = get_flow(cluster, namespace, "parallel")["status"]
    assert status["phase"] in {"Running", "Succeeded"}
    assert status["progress"].endswith("/5")
    # kopf must not have left its progress annotations or a finalizer on the Flow.
    flow_meta = get_flow(cluster, namespace, "parallel")["metadata"]
    assert not flow_meta.get("finalizers")
    assert not [k for k in flow_meta.get("annotations", {}) if "kopf" in k]


def test_restarts_never_duplicate_a_job(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_file(cluster, namespace, EXAMPLES / "parallel.yaml")
    wait_for(lambda: jobs_by_node(cluster, namespace, "parallel"), what="first Job")
    for _ in range(3):
        operator.restart()
        wait_for(lambda: "Running" in operator.log() or operator.alive(), what="operator back up")
    operator.kill()
    operator.start()
    wait_for(
        lambda: (get_flow(cluster, namespace, "parallel").get("status") or {}).get("phase"),
        what="status",
    )
    for node, names in jobs_by_node(cluster, namespace, "parallel").items():
        attempts = [n.rsplit("-", 1)[1] for n in names]
        assert len(attempts) == len(set(attempts)), f"{node}: duplicate Jobs {names}"


def test_deleting_the_flow_removes_its_jobs_and_configmaps(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_file(cluster, namespace, EXAMPLES / "parallel.yaml")
    wait_for(lambda: jobs_by_node(cluster, namespace, "parallel"), what="first Job")
    cluster.kubectl("delete", "flow", "parallel", "-n", namespace, "--wait=true")
    wait_for(
        lambda: (
            not items(cluster, "jobs", namespace, "flowcraft.io/flow=parallel")
            and not items(cluster, "configmaps", namespace, "flowcraft.io/flow=parallel")
            and not items(cluster, "pods", namespace, "flowcraft.io/flow=parallel")
        ),
        what="garbage collection of Jobs, ConfigMaps and pods",
    )
    assert operator.alive()


def test_operator_runs_with_only_its_shipped_rbac(
    cluster: Cluster, namespace: str, flow_crd: None, tmp_path: Path
) -> None:
    kubeconfig = operator_role_kubeconfig(cluster, namespace, tmp_path)
    restricted = Cluster(kubeconfig=kubeconfig, mode=cluster.mode)
    denied = restricted.kubectl("get", "secrets", "-n", namespace, check=False)
    assert denied.returncode != 0, "the operator's role must not read secrets"
    proc = OperatorProcess(restricted, [namespace], tmp_path / "operator.log")
    proc.start()
    try:
        apply_file(cluster, namespace, EXAMPLES / "parallel.yaml")
        wait_for(
            lambda: items(cluster, "jobs", namespace, "flowcraft.io/node=start-parallel"),
            what="the root's Job, created with the operator's own rights",
        )
        status = wait_for(
            lambda: get_flow(cluster, namespace, "parallel").get("status"),
            what="status written with the operator's own rights",
        )
        assert status["phase"] in {"Running", "Succeeded"}
        assert "Forbidden" not in proc.log()
    finally:
        proc.stop()
        cluster.kubectl(
            "delete", "clusterrole", f"flowcraft-operator-test-{namespace}"[:63], check=False
        )
