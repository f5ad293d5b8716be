"""The operator against a real kube-apiserver: CRD admission, validation, Jobs, restarts, GC.

These tests need no running containers (they pass on the kwok harness too): they check what
the operator writes to the API. Running the nodes for real is tests/e2e/test_operator_e2e.py.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cluster import Cluster
from flowcraft.drivers.kubernetes import builders, names
from flowcraft.model import FunctionSpec, NodeSpec
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


def test_a_flows_spec_is_fixed_but_its_runtime_controls_may_change(
    cluster: Cluster, namespace: str, flow_crd: None, tmp_path: Path
) -> None:
    """Routing state indexes spec.edges: the apiserver refuses a graph edit with the reason;
    suspend, parallelism, activeDeadlineSeconds and resume stay editable. ``flowcraft submit``
    of a changed file explains instead of sending it."""
    doc = _flow("fixed", [{"id": "a", "uses": "ok"}, {"id": "b", "uses": "ok"}], [])
    doc["spec"]["edges"] = [{"source": "a", "target": "b"}]
    doc["spec"]["suspend"] = True  # admission only: nothing should run
    apply_doc(cluster, namespace, doc)

    def patch(spec: dict[str, Any]) -> Any:
        return cluster.kubectl(
            "patch", "flow", "fixed", "-n", namespace, "--type=merge",
            "-p", json.dumps({"spec": spec}), check=False,
        )  # fmt: skip

    for edit in ({"edges": [{"source": "b", "target": "a"}]}, {"image": "other:1"}):
        proc = patch(edit)
        assert proc.returncode != 0, edit
        (field,) = edit
        assert f"spec.{field}: Invalid value" in proc.stderr
        assert f"spec.{field} cannot change once the Flow exists: only parallelism, " in proc.stderr
        assert "delete the Flow and create it again, or create it under a new name" in proc.stderr
    controls = {"suspend": False, "parallelism": 2, "activeDeadlineSeconds": 60,
                "resume": {"b": {"output": 1}}}  # fmt: skip
    for key, value in controls.items():
        proc = patch({key: value})
        assert proc.returncode == 0, proc.stderr
    stored = get_flow(cluster, namespace, "fixed")["spec"]
    assert stored["edges"] == [{"source": "a", "target": "b"}]
    assert {key: stored[key] for key in controls} == controls

    # The 1,002-node spec is compared on an update too: still within the CEL budget.
    nodes = [{"id": f"n{i}", "uses": "ok"} for i in range(1002)]
    wide = _flow("fixed-wide", nodes, [{"source": "n0", "target": f"n{i}"} for i in range(1, 1002)])
    wide["spec"]["suspend"] = True
    apply_doc(cluster, namespace, wide)
    cluster.kubectl(
        "patch", "flow", "fixed-wide", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"parallelism":5}}',
    )  # fmt: skip

    changed = copy.deepcopy(doc)
    changed["metadata"]["namespace"] = namespace
    changed["spec"]["edges"] = []
    path = tmp_path / "fixed.json"
    path.write_text(json.dumps(changed))
    proc = subprocess.run(
        [sys.executable, "-c", "from flowcraft.cli import main; raise SystemExit(main())",
         "submit", str(path), "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True, text=True, env=cluster.env(), check=False, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(
        f"flowcraft: error: flow 'fixed' already exists in namespace '{namespace}' with a "
        "different spec.edges; "
    )
    assert f"kubectl delete flow fixed -n {namespace}" in proc.stderr


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
    cluster.kubectl("wait", "--for=condition=Failed", "flow/bad", "-n", namespace, "--timeout=30s")
    (succeeded,) = [c for c in flow["status"]["conditions"] if c["type"] == "Succeeded"]
    assert (succeeded["status"], succeeded["reason"]) == ("False", "Failed")
    assert needle in succeeded["message"]
    assert flow["status"]["observedGeneration"] == flow["metadata"]["generation"]
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
    uid = flow["metadata"]["uid"]
    assert meta["name"] == names.job_name("parallel", uid, "start-parallel", 1)
    assert meta["labels"]["flowcraft.io/flow"] == "parallel"
    assert meta["labels"]["flowcraft.io/flow-uid"] == uid
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


def test_status_writes_without_managed_fields_keep_the_servers(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """The operator drops managedFields from the Flow it keeps and sends back with each status
    write; the server must keep its own (an update without them takes the live object's): the
    creator's entry survives the operator's writes, and the operator's status entry exists."""
    apply_doc(cluster, namespace, _flow("mf", [{"id": "a", "uses": "ok"}], []))
    wait_phase(cluster, namespace, "mf", {"Succeeded", "Failed"})  # written either way
    flow = cluster.kubectl_json("get", "flow", "mf", "-n", namespace, "--show-managed-fields")
    entries = flow["metadata"].get("managedFields") or []
    assert any(e.get("subresource") != "status" and "f:spec" in e.get("fieldsV1", {})
               for e in entries), entries  # fmt: skip
    assert any(e.get("subresource") == "status" for e in entries), entries


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
    seen: set[tuple[str, str]] = set()
    for job in items(cluster, "jobs", namespace, "flowcraft.io/flow=parallel"):
        labels = job["metadata"]["labels"]
        attempt = (labels["flowcraft.io/node"], labels["flowcraft.io/attempt"])
        assert attempt not in seen, f"duplicate Job for {attempt}: {job['metadata']['name']}"
        seen.add(attempt)


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


# ---------------------------------------------------------------- object identity (issue 11)

OLD_UID = "00000000-dead-4bad-8000-00000000f10e"  # a Flow that was deleted
SLOW_GC = "flowcraft.test/slow-gc"  # holds stale objects as a slow garbage collector would


def _say_flow(name: str, image: str, *, suspend: bool = False, tries: int = 1) -> dict[str, Any]:
    fns = {"say": {"image": image, "env": {"SMOKE_MESSAGE": '"fresh"'}}}
    config = {"maxRetries": tries, "retryDelay": 100}
    doc = _flow(
        name,
        [{"id": "a", "uses": "say", "config": config}, {"id": "b", "uses": "say"}],
        [{"source": "a", "target": "b"}],
    )
    doc["spec"]["functions"] = fns
    doc["spec"]["suspend"] = suspend
    return doc


def _leave_stale(
    cluster: Cluster,
    namespace: str,
    obj: dict[str, Any],
    name: str,
    held: list[tuple[str, str]],
) -> None:
    """Create ``obj`` under ``name``, held by a finalizer (the test removes it at the end)."""
    doc = copy.deepcopy(obj)
    doc["metadata"]["name"] = name
    doc["metadata"]["finalizers"] = [SLOW_GC]
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(doc))
    held.append((doc["kind"].lower(), name))


def _release(cluster: Cluster, namespace: str, held: list[tuple[str, str]]) -> None:
    for kind, name in held:
        cluster.kubectl(
            "patch", kind, name, "-n", namespace, "--type=merge",
            "-p", '{"metadata":{"finalizers":null}}', check=False,
        )  # fmt: skip


def _old_objects(
    namespace: str, flow: str, node: str, attempt: int, image: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Job and output ConfigMap an operator made for the deleted Flow ``OLD_UID``: the Job
    suspended (it must never run again), the output "STALE"."""
    old = builders.FlowRef(name=flow, namespace=namespace, uid=OLD_UID)
    fn = FunctionSpec(image=image, env={"SMOKE_MESSAGE": '"STALE"'})
    job = builders.job_manifest(
        old, NodeSpec(id=node, uses="say"), fn, attempt, None,
        timeout_seconds=None, view=builders.View(), runner_image="unused",
    )  # fmt: skip
    job["spec"]["suspend"] = True
    return job, builders.output_configmap(old, node, attempt, "STALE")


def _stale_intact(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any]:
    obj: dict[str, Any] = cluster.kubectl_json("get", kind, name, "-n", namespace)
    assert builders.controlled_by(obj, OLD_UID), f"{kind} {name} changed hands"
    if kind == "job":
        assert obj["spec"]["suspend"] is True, f"the operator resumed the stale Job {name}"
    else:
        assert "STALE" in json.dumps(obj["data"]), f"ConfigMap {name} changed"
    return obj


def _output_of(cluster: Cluster, namespace: str, flow: dict[str, Any], node: str) -> Any:
    ref = flow["status"]["nodes"][node]["outputRef"]
    cm = cluster.kubectl_json("get", "configmap", ref, "-n", namespace)
    assert builders.controlled_by(cm, flow["metadata"]["uid"]), f"{ref} is not this Flow's"
    output, _writes = builders.read_output(cm)
    return output


def test_a_recreated_flow_runs_its_own_jobs_and_never_reads_the_old_outputs(
    cluster: Cluster, namespace: str, operator: OperatorProcess, smoke_image: str
) -> None:
    """``kubectl delete flow x && kubectl apply -f x.yaml`` while GC is slow: the old Flow's
    Jobs and outputs, under the names the operator used to give (flow-node-attempt) and the
    ones it gives now, are still there. The new Flow must run Jobs of its own."""
    held: list[tuple[str, str]] = []
    stale: list[tuple[str, str]] = []
    try:
        for node in ("a", "b"):
            job, cm = _old_objects(namespace, "reborn", node, 1, smoke_image)
            for obj, legacy in ((job, f"reborn-{node}-1"), (cm, f"reborn-{node}-1-out")):
                for name in (obj["metadata"]["name"], legacy):
                    _leave_stale(cluster, namespace, obj, name, held)
                    stale.append((obj["kind"].lower(), name))
        apply_doc(cluster, namespace, _say_flow("reborn", smoke_image))
        flow = wait_phase(cluster, namespace, "reborn", {"Succeeded", "Failed"}, timeout=180)
        uid = flow["metadata"]["uid"]
        assert flow["status"]["phase"] == "Succeeded", flow["status"]
        cluster.kubectl(
            "wait", "--for=condition=Succeeded", "flow/reborn", "-n", namespace, "--timeout=30s"
        )
        own = [
            job
            for job in items(cluster, "jobs", namespace, "flowcraft.io/flow=reborn")
            if builders.controlled_by(job, uid)
        ]
        assert sorted(j["metadata"]["name"] for j in own) == sorted(
            names.job_name("reborn", uid, node, 1) for node in ("a", "b")
        )
        for kind, name in stale:
            _stale_intact(cluster, namespace, kind, name)
        for node in ("a", "b"):
            output = _output_of(cluster, namespace, flow, node)
            assert output != "STALE"
            if cluster.runs_containers:
                assert output == "fresh"
        assert operator.alive()
    finally:
        _release(cluster, namespace, held)


def test_a_name_held_by_another_owner_is_a_reported_conflict_never_adopted(
    cluster: Cluster, namespace: str, operator: OperatorProcess, smoke_image: str
) -> None:
    """Someone else's Job and ConfigMap sit exactly under this Flow's names: the attempts that
    need them fail with a message and a Warning Event naming the object, retries go on under
    new names, and the other objects are neither read, resumed nor deleted."""
    held: list[tuple[str, str]] = []
    try:
        apply_doc(cluster, namespace, _say_flow("squat", smoke_image, suspend=True, tries=3))
        uid = get_flow(cluster, namespace, "squat")["metadata"]["uid"]
        job, _ = _old_objects(namespace, "squat", "a", 1, smoke_image)
        _, cm = _old_objects(namespace, "squat", "a", 2, smoke_image)
        job_name = names.job_name("squat", uid, "a", 1)
        cm_name = names.output_configmap_name("squat", uid, "a", 2)
        _leave_stale(cluster, namespace, job, job_name, held)
        _leave_stale(cluster, namespace, cm, cm_name, held)
        cluster.kubectl(
            "patch", "flow", "squat", "-n", namespace, "--type=merge",
            "-p", '{"spec":{"suspend":false}}',
        )  # fmt: skip
        flow = wait_phase(cluster, namespace, "squat", {"Succeeded", "Failed"}, timeout=180)
        assert flow["status"]["phase"] == "Succeeded", flow["status"]
        # The status speaks for the spec as edited (suspend: false is generation 2).
        assert flow["metadata"]["generation"] == 2
        assert flow["status"]["observedGeneration"] == 2
        assert {c["observedGeneration"] for c in flow["status"]["conditions"]} == {2}
        a = flow["status"]["nodes"]["a"]
        assert a["attempts"] == 3, a
        assert a["outputRef"] == names.output_configmap_name("squat", uid, "a", 3)
        assert _output_of(cluster, namespace, flow, "a") != "STALE"
        conflicts = wait_for(
            lambda: (
                found
                if len(
                    found := [
                        e
                        for e in events_for(cluster, namespace, "squat")
                        if e["reason"] == "NameConflict"
                    ]
                )
                >= 2
                else None
            ),
            what="two NameConflict events",
        )
        messages = " | ".join(e["message"] for e in conflicts)
        assert all(e["type"] == "Warning" for e in conflicts)
        assert f"Job {namespace}/{job_name} already exists" in messages
        assert f"ConfigMap {namespace}/{cm_name} already exists" in messages
        assert OLD_UID in messages
        _stale_intact(cluster, namespace, "job", job_name)
        _stale_intact(cluster, namespace, "configmap", cm_name)
        own = {
            job["metadata"]["labels"]["flowcraft.io/attempt"]
            for job in items(cluster, "jobs", namespace, "flowcraft.io/node=a")
            if builders.controlled_by(job, uid)
        }
        assert own == {"2", "3"}
    finally:
        _release(cluster, namespace, held)


def test_a_finished_flow_observes_a_later_spec_edit(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """``kubectl wait`` ignores conditions of an older generation: after an edit of a finished
    Flow, the operator must say it saw the edit (the finished run stands)."""
    doc = _flow("edited", [{"id": "a", "uses": "ok"}], [{"source": "a", "target": "zz"}])
    apply_doc(cluster, namespace, doc)
    wait_phase(cluster, namespace, "edited", {"Failed"}, timeout=60)
    cluster.kubectl(
        "patch",
        "flow",
        "edited",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"parallelism":3}}',
    )
    flow = wait_for(
        lambda: (
            f
            if (f := get_flow(cluster, namespace, "edited"))["status"].get("observedGeneration")
            == f["metadata"]["generation"]
            == 2
            else None
        ),
        timeout=30,
        what="observedGeneration 2",
    )
    assert flow["status"]["phase"] == "Failed"
    cluster.kubectl(
        "wait", "--for=condition=Failed", "flow/edited", "-n", namespace, "--timeout=30s"
    )


def test_an_initial_context_held_by_another_owner_fails_the_node_naming_it(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """The per-Flow initial-context ConfigMap is tied to the Flow's UID as well: someone
    else's under its name is never mounted; the node fails saying which object is in the way."""
    held: list[tuple[str, str]] = []
    try:
        doc = _flow("ctx", [{"id": "a", "uses": "ok"}], [])
        doc["spec"]["context"] = {"who": "fresh"}
        doc["spec"]["suspend"] = True
        apply_doc(cluster, namespace, doc)
        uid = get_flow(cluster, namespace, "ctx")["metadata"]["uid"]
        old = builders.FlowRef(name="ctx", namespace=namespace, uid=OLD_UID)
        name = names.context_configmap_name("ctx", uid)
        _leave_stale(
            cluster, namespace, builders.context_configmap(old, {"who": "STALE"}), name, held
        )
        cluster.kubectl(
            "patch", "flow", "ctx", "-n", namespace, "--type=merge",
            "-p", '{"spec":{"suspend":false}}',
        )  # fmt: skip
        flow = wait_phase(cluster, namespace, "ctx", {"Succeeded", "Failed"}, timeout=60)
        assert flow["status"]["phase"] == "Failed"
        message = flow["status"]["nodes"]["a"]["message"]
        assert f"ConfigMap {namespace}/{name} already exists" in message, message
        assert not [
            j
            for j in items(cluster, "jobs", namespace, "flowcraft.io/flow=ctx")
            if builders.controlled_by(j, uid)
        ], "no Job may mount someone else's context"
        _stale_intact(cluster, namespace, "configmap", name)
        wait_for(
            lambda: [
                e for e in events_for(cluster, namespace, "ctx") if e["reason"] == "NameConflict"
            ],
            what="a NameConflict event",
        )
    finally:
        _release(cluster, namespace, held)


SCATTER = "say-items_scatter"
GATHER = "say-items_gather"


def _batch_flow(name: str, image: str, *, tries: int = 0) -> dict[str, Any]:
    """start (emits three items) -> scatter (a container worker per item) -> gather; suspended,
    so a test can place objects under its names (which need its uid) first. ``tries``: attempts
    per item (``maxRetries`` counts them all)."""
    fns = {
        "items": {"image": image, "env": {"SMOKE_MESSAGE": "[1,2,3]"}},
        "say": {"image": image, "env": {"SMOKE_MESSAGE": '"fresh"'}},
    }
    params = {"workerUsesKey": "say", "outputKey": "said", "gatherNodeId": GATHER}
    scatter: dict[str, Any] = {
        "id": SCATTER,
        "uses": "batch-scatter",
        "inputs": "start",
        "params": params,
    }
    if tries:
        scatter["config"] = {"maxRetries": tries, "retryDelay": 100}
    gather = {"id": GATHER, "uses": "batch-gather", "params": {"outputKey": "said"}}
    doc = _flow(
        name,
        [{"id": "start", "uses": "items"}, scatter, gather],
        [{"source": "start", "target": SCATTER}, {"source": SCATTER, "target": GATHER}],
    )
    doc["spec"]["functions"] = fns
    doc["spec"]["suspend"] = True
    return doc


def _old_item_job(namespace: str, flow: str, item: int, attempt: int, image: str) -> Any:
    old = builders.FlowRef(name=flow, namespace=namespace, uid=OLD_UID)
    fn = FunctionSpec(image=image, env={"SMOKE_MESSAGE": '"STALE"'})
    job = builders.job_manifest(
        old, NodeSpec(id=SCATTER, uses="batch-scatter"), fn, attempt, item,
        timeout_seconds=None, view=builders.View(), runner_image="unused",
        item=item, uses="say",
    )  # fmt: skip
    job["spec"]["suspend"] = True
    return job


def _resume(cluster: Cluster, namespace: str, name: str) -> None:
    cluster.kubectl(
        "patch", "flow", name, "-n", namespace, "--type=merge",
        "-p", '{"spec":{"suspend":false}}',
    )  # fmt: skip


def _conflicts(cluster: Cluster, namespace: str, flow: str) -> list[dict[str, Any]]:
    return wait_for(
        lambda: [e for e in events_for(cluster, namespace, flow) if e["reason"] == "NameConflict"],
        what="a NameConflict event",
    )


def test_batch_item_jobs_are_this_flows_and_a_held_item_job_name_is_a_conflict(
    cluster: Cluster, namespace: str, operator: OperatorProcess, smoke_image: str
) -> None:
    """Item Jobs carry the Flow's uid (name fragment, label, controller); a Job of a deleted
    Flow under an item's name fails that item attempt with a NameConflict (never resumed nor
    deleted), and the retry runs under a name of its own."""
    held: list[tuple[str, str]] = []
    try:
        apply_doc(cluster, namespace, _batch_flow("items", smoke_image, tries=2))
        uid = get_flow(cluster, namespace, "items")["metadata"]["uid"]
        job_name = names.item_job_name("items", uid, SCATTER, 0, 0, attempt=1)
        stale = _old_item_job(namespace, "items", 0, 1, smoke_image)
        _leave_stale(cluster, namespace, stale, job_name, held)
        _resume(cluster, namespace, "items")
        flow = wait_phase(cluster, namespace, "items", {"Succeeded", "Failed"}, timeout=240)
        assert flow["status"]["phase"] == "Succeeded", flow["status"]
        batch = flow["status"]["nodes"][SCATTER]["batch"]
        assert batch["items"] == "SSS"
        assert batch["attempts"] == {"0": 2}, batch
        messages = " | ".join(e["message"] for e in _conflicts(cluster, namespace, "items"))
        assert f"Job {namespace}/{job_name} already exists" in messages
        assert OLD_UID in messages
        _stale_intact(cluster, namespace, "job", job_name)
        own = {
            job["metadata"]["name"]
            for job in items(cluster, "jobs", namespace, f"flowcraft.io/flow-uid={uid}")
            if builders.controlled_by(job, uid) and builders.LABEL_ITEM in job["metadata"]["labels"]
        }
        assert own == {
            names.item_job_name("items", uid, SCATTER, 0, 0, attempt=2),
            names.item_job_name("items", uid, SCATTER, 0, 1, attempt=1),
            names.item_job_name("items", uid, SCATTER, 0, 2, attempt=1),
        }
        assert all(f"-{names.uid_fragment(uid)}-" in name for name in own)
        for item in range(3):
            cm = cluster.kubectl_json(
                "get", "configmap", names.item_output_name("items", uid, SCATTER, 0, item),
                "-n", namespace,
            )  # fmt: skip
            assert builders.controlled_by(cm, uid)
            assert cm["metadata"]["labels"][builders.LABEL_FLOW_UID] == uid
            if cluster.runs_containers:
                assert builders.read_output(cm)[0] == "fresh"
    finally:
        _release(cluster, namespace, held)


def test_an_item_output_held_by_another_owner_fails_the_item_naming_it(
    cluster: Cluster, namespace: str, operator: OperatorProcess, smoke_image: str
) -> None:
    """Someone else's ConfigMap under an item's output name is never read nor replaced: the
    item fails saying which object is in the way (its retries meet the same name), with a
    NameConflict Warning Event."""
    held: list[tuple[str, str]] = []
    try:
        apply_doc(cluster, namespace, _batch_flow("itemout", smoke_image))
        uid = get_flow(cluster, namespace, "itemout")["metadata"]["uid"]
        old = builders.FlowRef(name="itemout", namespace=namespace, uid=OLD_UID)
        name = names.item_output_name("itemout", uid, SCATTER, 0, 1)
        cm = builders.item_output_configmap(old, SCATTER, "STALE", item=1, attempt=1)
        _leave_stale(cluster, namespace, cm, name, held)
        _resume(cluster, namespace, "itemout")
        flow = wait_phase(cluster, namespace, "itemout", {"Succeeded", "Failed"}, timeout=240)
        assert flow["status"]["phase"] == "Failed", flow["status"]
        scatter = flow["status"]["nodes"][SCATTER]
        assert f"ConfigMap {namespace}/{name} already exists" in scatter["message"], scatter
        assert scatter["batch"]["items"][1] == "F", scatter
        messages = " | ".join(e["message"] for e in _conflicts(cluster, namespace, "itemout"))
        assert f"ConfigMap {namespace}/{name} already exists" in messages
        _stale_intact(cluster, namespace, "configmap", name)
        assert GATHER not in flow["status"]["nodes"] or (
            flow["status"]["nodes"][GATHER]["phase"] != "Succeeded"
        )
    finally:
        _release(cluster, namespace, held)
