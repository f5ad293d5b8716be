"""Flows run for real: the operator (a subprocess) creates Jobs, the kubelet runs the runner
image, outputs travel through termination messages and ConfigMaps.

Every test applies a manifest with kubectl, exactly as a user would, and reads back what the
cluster holds (Flow status, Jobs, pods, ConfigMaps, Events). Nothing here mocks the API.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster import ROOT, Cluster
from flowcraft.drivers.kubernetes import names, timeouts
from operator_harness import (
    EXAMPLES,
    RUNNER_IMAGE,
    OperatorProcess,
    apply_doc,
    apply_file,
    events_for,
    flow_crd,
    get_flow,
    items,
    jobs_by_node,
    operator,
    runner_image,
    wait_for,
    wait_phase,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("runner_image")]

__all__ = ["flow_crd", "operator", "runner_image"]  # fixtures


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _output(cluster: Cluster, namespace: str, flow: dict[str, Any], node: str) -> Any:
    ref = flow["status"]["nodes"][node]["outputRef"]
    cm = cluster.kubectl_json("get", "configmap", ref, "-n", namespace)
    return json.loads(cm["data"]["output.json"])


def _pod_times(cluster: Cluster, namespace: str, node: str) -> tuple[datetime, datetime]:
    (pod,) = items(cluster, "pods", namespace, f"flowcraft.io/node={node}")
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    return _ts(term["startedAt"]), _ts(term["finishedAt"])


def _flow(name: str, functions: dict[str, Any], nodes: list[Any], edges: list[Any]) -> Any:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"functions": functions, "nodes": nodes, "edges": edges},
    }


def test_parallel_example_runs_branches_in_parallel_and_gathers(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_file(cluster, namespace, EXAMPLES / "parallel.yaml")
    flow = wait_phase(cluster, namespace, "parallel", {"Succeeded", "Failed"})
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    assert flow["status"]["progress"] == "5/5"

    jobs = jobs_by_node(cluster, namespace, "parallel")
    assert sorted(jobs) == ["gather", "start-parallel", "task-1", "task-2", "task-3"]
    assert all(len(names) == 1 for names in jobs.values()), jobs

    spans = [_pod_times(cluster, namespace, f"task-{n}") for n in (1, 2, 3)]
    # Container times have second resolution: equal stamps still mean they ran side by side.
    assert max(start for start, _ in spans) <= min(end for _, end in spans), (
        f"task pods did not overlap: {spans}"
    )

    assert _output(cluster, namespace, flow, "gather") == {
        "t1": {"data": "Data from Task 1"},
        "t2": {"data": "Data from Task 2"},
        "t3": {"data": "Data from Task 3"},
    }
    for node, ns in flow["status"]["nodes"].items():
        assert ns["phase"] == "Succeeded", node
        started, finished = _ts(ns["startedAt"]), _ts(ns["finishedAt"])
        assert started <= finished, node
        pod_start, pod_end = _pod_times(cluster, namespace, node)
        assert (started, finished) == (pod_start, pod_end), f"{node}: not the pod's times"

    ends = [e for e in events_for(cluster, namespace, "parallel") if e["reason"] == "FlowSucceeded"]
    assert len(ends) == 1
    assert "flowcraft_node_schedule_latency_seconds_count" in operator.metrics()


def test_failing_branch_fails_the_flow_with_reason_and_events(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_file(cluster, namespace, EXAMPLES / "failing-branch.yaml")
    flow = wait_phase(cluster, namespace, "failing-branch", {"Succeeded", "Failed"})
    status = flow["status"]
    assert status["phase"] == "Failed"
    bad = status["nodes"]["bad"]
    assert bad["phase"] == "Failed"
    assert "exit code 1" in bad["message"]
    assert "this branch is broken on purpose" in bad["message"]
    assert "bad" in status["message"]
    # failFast: false: the independent branch ran to its end; below the failure nothing ran.
    assert status["nodes"]["good-after"]["phase"] == "Succeeded"
    assert "bad-after" not in jobs_by_node(cluster, namespace, "failing-branch")

    reasons = {e["reason"]: e for e in events_for(cluster, namespace, "failing-branch")}
    assert reasons["NodeFailed"]["type"] == "Warning"
    assert "this branch is broken on purpose" in reasons["NodeFailed"]["message"]
    assert reasons["FlowFailed"]["type"] == "Warning"


def test_retries_are_new_jobs_then_the_fallback_runs(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_file(cluster, namespace, EXAMPLES / "retry-fallback.yaml")
    flow = wait_phase(cluster, namespace, "retry-fallback", {"Succeeded", "Failed"})
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    jobs = jobs_by_node(cluster, namespace, "retry-fallback")
    uid = flow["metadata"]["uid"]
    assert jobs["fetch"] == [names.job_name("retry-fallback", uid, "fetch", n) for n in (1, 2, 3)]
    assert len(jobs["use-cache"]) == 1
    assert flow["status"]["nodes"]["fetch"]["attempts"] == 3
    assert _output(cluster, namespace, flow, "publish") == {
        "published": {"source": "cache", "value": 42},
        "fetch": None,  # flowcraft: a node recovered by its fallback reads as null
    }


def test_conditional_routing_skips_the_branch_not_taken(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_file(cluster, namespace, EXAMPLES / "conditional.yaml")
    flow = wait_phase(cluster, namespace, "conditional", {"Succeeded", "Failed"})
    nodes = flow["status"]["nodes"]
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    assert nodes["auto-approve"]["phase"] == "Skipped"
    assert nodes["manual-review"]["phase"] == "Succeeded"
    jobs = jobs_by_node(cluster, namespace, "conditional")
    assert "auto-approve" not in jobs
    assert len(jobs["report"]) == 1
    assert _output(cluster, namespace, flow, "report") == {"decided_by": ["manual-review"]}


def test_timeout_kills_the_attempt_and_fails_the_node(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    fns = {"slow": {"script": "import time\n\ndef run(ctx):\n    time.sleep(60)\n"}}
    nodes = [{"id": "slow", "uses": "slow", "config": {"timeout": 1000}}]
    apply_doc(cluster, namespace, _flow("slow", fns, nodes, []))
    flow = wait_phase(cluster, namespace, "slow", {"Succeeded", "Failed"})
    node = flow["status"]["nodes"]["slow"]
    assert node["phase"] == "Failed"
    assert node["reason"] == "Timeout"
    (job,) = items(cluster, "jobs", namespace, "flowcraft.io/flow=slow")
    # The operator stops the attempt itself; the Job's deadline is only a backstop.
    assert job["spec"]["activeDeadlineSeconds"] == 1 + timeouts.BACKSTOP_SECONDS


def test_output_over_the_termination_message_travels_compressed(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    # 5000 bytes: over the kubelet's 4096-byte termination message, so the runtime sends it
    # compressed (a frame inline in the message); larger, incompressible results go through
    # the pod's log (tests/e2e/test_results_e2e.py).
    fns = {"big": {"script": "def run(ctx):\n    return 'x' * 5000\n"}}
    apply_doc(cluster, namespace, _flow("big", fns, [{"id": "big", "uses": "big"}], []))
    flow = wait_phase(cluster, namespace, "big", {"Succeeded", "Failed"})
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    assert _output(cluster, namespace, flow, "big") == "x" * 5000


def test_container_function_output_is_its_termination_message(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    writer = (
        "import json, pathlib; "
        "params = json.loads(pathlib.Path('/flowcraft/in/params.json').read_text()); "
        "pathlib.Path('/dev/termination-log').write_text(json.dumps({'twice': params['n'] * 2}))"
    )
    fns = {
        "image": {"image": RUNNER_IMAGE, "command": ["python3", "-c", writer]},
        "read": {"script": "def run(ctx):\n    return ctx.get('produce')\n"},
    }
    nodes = [
        {"id": "produce", "uses": "image", "params": {"n": 21}},
        {"id": "read", "uses": "read"},
    ]
    doc = _flow("container", fns, nodes, [{"source": "produce", "target": "read"}])
    apply_doc(cluster, namespace, doc)
    flow = wait_phase(cluster, namespace, "container", {"Succeeded", "Failed"})
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    assert _output(cluster, namespace, flow, "read") == {"twice": 42}


def test_sigkill_at_every_step_completes_with_one_job_per_attempt(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_file(cluster, namespace, EXAMPLES / "parallel.yaml")
    seen: tuple[int, int] = (0, 0)
    kills = 0
    while True:
        flow = get_flow(cluster, namespace, "parallel")
        status = flow.get("status") or {}
        if status.get("phase") in {"Succeeded", "Failed"}:
            break
        done = sum(1 for n in (status.get("nodes") or {}).values() if n["phase"] == "Succeeded")
        progress = (len(items(cluster, "jobs", namespace)), done)
        if progress != seen:
            # Something moved (a Job created, a node recorded): crash right there.
            seen = progress
            operator.restart()
            kills += 1
        time.sleep(0.2)
    assert kills >= 3, "the operator should have been killed at several points"
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    jobs = jobs_by_node(cluster, namespace, "parallel")
    assert {node: len(names) for node, names in jobs.items()} == {
        "start-parallel": 1,
        "task-1": 1,
        "task-2": 1,
        "task-3": 1,
        "gather": 1,
    }
    assert _output(cluster, namespace, flow, "gather")["t2"] == {"data": "Data from Task 2"}


def _suspend(cluster: Cluster, namespace: str, name: str, value: bool) -> None:
    patch = json.dumps({"spec": {"suspend": value}})
    cluster.kubectl("patch", "flow", name, "-n", namespace, "--type=merge", "-p", patch)


def _running_pods(cluster: Cluster, namespace: str) -> list[Any]:
    return [p for p in items(cluster, "pods", namespace) if p["status"].get("phase") == "Running"]


def test_suspend_stops_running_jobs_and_resume_finishes(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    fns = {
        "sleep": {"script": "import time\n\ndef run(ctx):\n    time.sleep(3)\n    return 1\n"},
        "ok": {"script": "def run(ctx):\n    return 2\n"},
    }
    nodes = [{"id": "first", "uses": "sleep"}, {"id": "second", "uses": "ok"}]
    apply_doc(
        cluster, namespace, _flow("pause", fns, nodes, [{"source": "first", "target": "second"}])
    )
    wait_for(
        lambda: [
            p
            for p in items(cluster, "pods", namespace, "flowcraft.io/node=first")
            if p["status"].get("phase") == "Running"
        ],
        what="first node's pod running",
    )
    cluster.kubectl(
        "patch", "flow", "pause", "-n", namespace, "--type=merge", "-p", '{"spec":{"suspend":true}}'
    )
    wait_for(
        lambda: (
            all(j["spec"].get("suspend") for j in items(cluster, "jobs", namespace))
            and not [
                p
                for p in items(cluster, "pods", namespace)
                if p["status"].get("phase") == "Running"
            ]
        ),
        what="running Job suspended and its pod gone",
    )
    assert "second" not in jobs_by_node(cluster, namespace, "pause")
    assert get_flow(cluster, namespace, "pause")["status"]["phase"] == "Running"
    cluster.kubectl(
        "patch",
        "flow",
        "pause",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"suspend":false}}',
    )
    flow = wait_phase(cluster, namespace, "pause", {"Succeeded", "Failed"})
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    assert {n: len(v) for n, v in jobs_by_node(cluster, namespace, "pause").items()} == {
        "first": 1,
        "second": 1,
    }


def test_deleting_a_finished_flow_removes_jobs_pods_and_configmaps(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_file(cluster, namespace, EXAMPLES / "parallel.yaml")
    wait_phase(cluster, namespace, "parallel", {"Succeeded", "Failed"})
    assert items(cluster, "configmaps", namespace, "flowcraft.io/flow=parallel")
    cluster.kubectl("delete", "flow", "parallel", "-n", namespace)
    wait_for(
        lambda: (
            not any(
                items(cluster, kind, namespace, "flowcraft.io/flow=parallel")
                for kind in ("jobs", "pods", "configmaps")
            )
        ),
        what="Jobs, pods and ConfigMaps garbage-collected",
    )


# Dependent Job creations per example (edges whose target starts because a source succeeded).
_DEPENDENT_STARTS = {"parallel": 4, "conditional": 2, "failing-branch": 2, "retry-fallback": 1}


def test_dependency_to_create_latency_is_measured_for_every_example(
    cluster: Cluster, namespace: str, flow_crd: None, tmp_path: Path
) -> None:
    """Every dependent start is observed by the histogram; the figures are printed (-s) for
    the record, never asserted (timing belongs to benchmarks, not to pass/fail)."""
    proc = OperatorProcess(cluster, [namespace], tmp_path / "operator.log", verbose=True)
    proc.start()
    try:
        rounds = 3
        for r in range(rounds):
            for example in _DEPENDENT_STARTS:
                doc = yaml.safe_load((EXAMPLES / f"{example}.yaml").read_text())
                doc["metadata"]["name"] = f"{example}-{r}"
                apply_doc(cluster, namespace, doc)
                wait_phase(cluster, namespace, f"{example}-{r}", {"Succeeded", "Failed"})
        text = proc.metrics()
    finally:
        proc.stop()
    # The histogram has a second stage (create_to_running): pick this stage's count line.
    count_line = next(
        (
            line
            for line in text.splitlines()
            if line.startswith("flowcraft_node_schedule_latency_seconds_count")
            and 'stage="dependency_to_create"' in line
        ),
        "",
    )
    assert count_line, text
    expected = rounds * sum(_DEPENDENT_STARTS.values())
    assert float(count_line.rsplit(" ", 1)[1]) >= expected
    samples = sorted(
        float(line.rsplit("dependency_to_create ", 1)[1].split()[0])
        for line in proc.log().splitlines()
        if "dependency_to_create " in line
    )
    median = statistics.median(samples)
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    print(
        f"\ndependency_to_create over {len(samples)} starts: "
        f"median {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {samples[-1] * 1000:.1f} ms"
    )


def test_operator_image_runs_in_cluster_with_its_rbac(
    cluster: Cluster, namespace: str, flow_crd: None, load_images: Any
) -> None:
    """The shipped image, ServiceAccount, role and Deployment (deploy/operator.yaml), scoped
    to this test's namespace so it cannot meet other tests' flows, run the reference flow."""
    subprocess.run(["make", "-s", "image-operator"], cwd=ROOT, check=True, capture_output=True)
    load_images("flowcraft-operator:0.1.0")
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "operator.yaml").read_text()))
    by_kind = {d["kind"]: d for d in docs}
    role = by_kind["ClusterRole"]
    role_name = f"flowcraft-operator-e2e-{namespace}"[:63]
    role["metadata"]["name"] = role_name
    account = by_kind["ServiceAccount"]
    account["metadata"]["namespace"] = namespace
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "flowcraft-operator", "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": role_name,
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": "flowcraft-operator", "namespace": namespace}
        ],
    }
    deployment = by_kind["Deployment"]
    deployment["metadata"]["namespace"] = namespace
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["args"] = ["--namespace", namespace, "--metrics-port", "8080"]
    try:
        for doc in (role, account, binding, deployment):
            apply_doc(cluster, namespace, doc)
        cluster.kubectl(
            "rollout", "status", "deployment/flowcraft-operator", "-n", namespace, "--timeout=120s"
        )
        apply_file(cluster, namespace, EXAMPLES / "parallel.yaml")
        flow = wait_phase(cluster, namespace, "parallel", {"Succeeded", "Failed"})
        assert flow["status"]["phase"] == "Succeeded", flow["status"]
        assert _output(cluster, namespace, flow, "gather")["t1"] == {"data": "Data from Task 1"}
    finally:
        cluster.kubectl("delete", "clusterrole", role_name, "--ignore-not-found", check=False)


def test_a_wide_join_whose_branches_finish_together_starts_once(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """The join trap: many predecessors finishing at the same moment must start the
    join exactly once, with every predecessor's output visible to it."""
    width = 12
    fns = {
        "branch": {"script": "def run(ctx):\n    return ctx.node_id\n"},
        "join": {
            "script": "def run(ctx):\n"
            f"    return sorted(ctx.get(f'b{{i}}') for i in range({width}))\n"
        },
    }
    nodes = [{"id": "start", "uses": "branch"}, {"id": "join", "uses": "join"}]
    edges = []
    for i in range(width):
        nodes.append({"id": f"b{i}", "uses": "branch"})
        edges += [{"source": "start", "target": f"b{i}"}, {"source": f"b{i}", "target": "join"}]
    apply_doc(cluster, namespace, _flow("wide", fns, nodes, edges))
    flow = wait_phase(cluster, namespace, "wide", {"Succeeded", "Failed"}, timeout=300)
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    jobs = jobs_by_node(cluster, namespace, "wide")
    assert len(jobs) == width + 2
    assert all(len(names) == 1 for names in jobs.values()), jobs
    assert _output(cluster, namespace, flow, "join") == sorted(f"b{i}" for i in range(width))


def test_flow_deadline_fires_from_the_timer_and_cancels_running_jobs(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """No pod event arrives while the node sleeps: only the operator's own timer (the engine's
    wake_at) can end the flow, and the still-running Job must be deleted."""
    fns = {"sleep": {"script": "import time\n\ndef run(ctx):\n    time.sleep(120)\n"}}
    doc = _flow("deadline", fns, [{"id": "sleep", "uses": "sleep"}], [])
    doc["spec"]["activeDeadlineSeconds"] = 3
    apply_doc(cluster, namespace, doc)
    flow = wait_phase(cluster, namespace, "deadline", {"Succeeded", "Failed"}, timeout=120)
    assert flow["status"]["phase"] == "Failed"
    assert "activeDeadlineSeconds" in flow["status"]["message"]
    assert flow["status"]["nodes"]["sleep"]["phase"] == "Cancelled"
    wait_for(
        lambda: not items(cluster, "jobs", namespace, "flowcraft.io/flow=deadline"),
        what="the running Job deleted",
    )


def test_an_image_that_cannot_be_pulled_fails_the_node_instead_of_hanging(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    fns = {"missing": {"image": "flowcraft-no-such-image:0.0.0", "command": ["true"]}}
    apply_doc(cluster, namespace, _flow("noimage", fns, [{"id": "n", "uses": "missing"}], []))
    flow = wait_phase(cluster, namespace, "noimage", {"Succeeded", "Failed"}, timeout=180)
    node = flow["status"]["nodes"]["n"]
    assert node["phase"] == "Failed"
    assert "container cannot start" in node["message"]
    wait_for(
        lambda: not items(cluster, "jobs", namespace, "flowcraft.io/flow=noimage"),
        what="the stuck Job deleted",
    )
