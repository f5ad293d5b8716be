"""Objects a Flow made that disappear under it: each case ends in a defined state, never a hang.

- An output ConfigMap deleted while its Flow runs is restored (from the watch's last copy,
  or after an operator restart from the producing pod's result); pods mounting it start.
- A Job that completed while its pod was deleted (the operator down, a pod GC): the attempt
  fails naming the Job ("its pod is gone"), and a retry runs.
- A running Job deleted by hand: the attempt fails ("deleted"), never silently re-created
  under the same attempt; a retry runs as a new attempt with a Job of its own.

All on real pods, with the operator as a subprocess (SIGKILLed where the case needs it down).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from cluster import Cluster
from operator_harness import (
    OperatorProcess,
    apply_doc,
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

FUNCTIONS = {
    "make": {"script": "def run(ctx):\n    return {'made': 42}\n"},
    "wait": {
        "script": "import time\n\ndef run(ctx):\n    time.sleep(ctx.params['s'])\n    return 1\n"
    },
    "use": {"script": "def run(ctx):\n    return {'saw': ctx.get('a')}\n"},
}


def _flow(name: str, nodes: list[Any], edges: list[Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"functions": FUNCTIONS, "nodes": nodes, "edges": edges},
    }


def _a_gate_b(name: str, gate_seconds: float) -> dict[str, Any]:
    """a makes a value; gate waits (a built-in sleep: no pod); b reads a's output from the
    context, so b's pod is the first to mount a's ConfigMap. (A pod in between that mounts it
    would let the kubelet keep its cached copy of the immutable ConfigMap for b.)"""
    nodes = [
        {"id": "a", "uses": "make"},
        {"id": "gate", "uses": "sleep", "params": {"duration": int(gate_seconds * 1000)}},
        {"id": "b", "uses": "use"},
    ]
    edges = [{"source": "a", "target": "gate"}, {"source": "gate", "target": "b"}]
    return _flow(name, nodes, edges)


def _node(cluster: Cluster, namespace: str, flow: str, node: str) -> dict[str, Any]:
    status = get_flow(cluster, namespace, flow).get("status") or {}
    return dict((status.get("nodes") or {}).get(node) or {})


def _output(cluster: Cluster, namespace: str, ref: str) -> Any:
    cm = cluster.kubectl_json("get", "configmap", ref, "-n", namespace)
    return json.loads(cm["data"]["output.json"])


def _pod_running(cluster: Cluster, namespace: str, flow: str, node: str) -> bool:
    return any(
        p["status"].get("phase") == "Running"
        for p in items(
            cluster, "pods", namespace, f"flowcraft.io/flow={flow},flowcraft.io/node={node}"
        )
    )


def test_an_output_configmap_deleted_while_the_flow_runs_is_restored(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_doc(cluster, namespace, _a_gate_b("restore", 6))
    ref = wait_for(
        lambda: _node(cluster, namespace, "restore", "a").get("outputRef"), what="a's output"
    )
    cluster.kubectl("delete", "configmap", ref, "-n", namespace)
    flow = wait_phase(cluster, namespace, "restore", {"Succeeded", "Failed"}, timeout=120)
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    assert _output(cluster, namespace, ref) == {"made": 42}  # the same object, back
    b = flow["status"]["nodes"]["b"]["outputRef"]
    assert _output(cluster, namespace, b) == {"saw": {"made": 42}}


def test_an_output_deleted_while_the_operator_is_down_is_restored_from_its_pod(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_doc(cluster, namespace, _a_gate_b("reread", 8))
    ref = wait_for(
        lambda: _node(cluster, namespace, "reread", "a").get("outputRef"), what="a's output"
    )
    operator.kill()
    cluster.kubectl("delete", "configmap", ref, "-n", namespace)
    operator.start()
    flow = wait_phase(cluster, namespace, "reread", {"Succeeded", "Failed"}, timeout=120)
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    assert _output(cluster, namespace, ref) == {"made": 42}
    b = flow["status"]["nodes"]["b"]["outputRef"]
    assert _output(cluster, namespace, b) == {"saw": {"made": 42}}


def test_an_output_lost_with_its_pod_fails_the_flow_naming_the_configmap(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    apply_doc(cluster, namespace, _a_gate_b("gone", 8))
    ref = wait_for(
        lambda: _node(cluster, namespace, "gone", "a").get("outputRef"), what="a's output"
    )
    operator.kill()
    cluster.kubectl("delete", "configmap", ref, "-n", namespace)
    cluster.kubectl(
        "delete", "pods", "-n", namespace, "-l", "flowcraft.io/flow=gone,flowcraft.io/node=a"
    )
    operator.start()
    flow = wait_phase(cluster, namespace, "gone", {"Succeeded", "Failed"}, timeout=120)
    assert flow["status"]["phase"] == "Failed", flow["status"]
    text = json.dumps(flow["status"])
    assert ref in text, flow["status"]
    assert "of node 'a' was deleted" in text, flow["status"]


def test_a_completed_job_whose_pod_is_gone_fails_the_attempt_and_retries(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    nodes = [{"id": "a", "uses": "wait", "params": {"s": 3}, "config": {"maxRetries": 2}}]
    apply_doc(cluster, namespace, _flow("podgone", nodes, []))
    wait_for(lambda: _pod_running(cluster, namespace, "podgone", "a"), what="a's pod running")
    operator.kill()
    selector = "flowcraft.io/flow=podgone,flowcraft.io/node=a"

    def complete() -> bool:
        return any(
            c.get("type") == "Complete" and c.get("status") == "True"
            for j in items(cluster, "jobs", namespace, selector)
            for c in (j.get("status") or {}).get("conditions") or []
        )

    wait_for(complete, timeout=120, what="a's Job complete")
    cluster.kubectl("delete", "pods", "-n", namespace, "-l", selector, "--wait=true")
    operator.start()
    flow = wait_phase(cluster, namespace, "podgone", {"Succeeded", "Failed"}, timeout=120)
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    assert flow["status"]["nodes"]["a"]["attempts"] == 2
    jobs = jobs_by_node(cluster, namespace, "podgone")
    assert len(jobs["a"]) == 2, jobs
    assert "its pod is gone" in operator.log()


def test_a_running_job_deleted_by_hand_fails_its_attempt_and_a_new_attempt_runs(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    nodes = [{"id": "a", "uses": "wait", "params": {"s": 4}, "config": {"maxRetries": 2}}]
    apply_doc(cluster, namespace, _flow("deleted", nodes, []))
    wait_for(lambda: _pod_running(cluster, namespace, "deleted", "a"), what="a's pod running")
    (first,) = jobs_by_node(cluster, namespace, "deleted")["a"]
    cluster.kubectl("delete", "job", first, "-n", namespace)
    flow = wait_phase(cluster, namespace, "deleted", {"Succeeded", "Failed"}, timeout=120)
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    assert flow["status"]["nodes"]["a"]["attempts"] == 2
    jobs = jobs_by_node(cluster, namespace, "deleted")["a"]
    assert first not in jobs, jobs  # never re-created under attempt 1
    assert len(jobs) == 1, jobs  # attempt 2's Job (attempt 1's was deleted)
    assert f"Job {first} was deleted" in operator.log()


def test_a_running_attempt_whose_job_left_no_trace_gets_it_after_a_restart(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """The operator records an attempt as running in the same breath as it creates its Job:
    killed between the two, it leaves a status with a running attempt and no Job (a chaos run
    saw this at 13 of 20 kills). The restarted operator must create the Job for that same
    attempt, not fail it as deleted (a node without retries failed its Flow). Reproduced with
    the operator down by removing the Job and its pod without a trace; a single attempt."""
    nodes = [{"id": "a", "uses": "wait", "params": {"s": 3}}]
    apply_doc(cluster, namespace, _flow("notrace", nodes, []))
    wait_for(lambda: _pod_running(cluster, namespace, "notrace", "a"), what="a's pod running")
    (job,) = jobs_by_node(cluster, namespace, "notrace")["a"]
    first_uid = cluster.kubectl_json("get", "job", job, "-n", namespace)["metadata"]["uid"]
    operator.kill()
    cluster.kubectl(
        "delete", "job", job, "-n", namespace, "--cascade=foreground", "--grace-period=0",
        "--force", "--wait=true", "--timeout=60s",
    )  # fmt: skip
    wait_for(
        lambda: not items(cluster, "pods", namespace, f"batch.kubernetes.io/job-name={job}"),
        what="the Job's pods gone",
    )
    operator.start()
    flow = wait_phase(cluster, namespace, "notrace", {"Succeeded", "Failed"}, timeout=120)
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    assert flow["status"]["nodes"]["a"]["attempts"] == 1  # the same attempt, not a retry
    again = cluster.kubectl_json("get", "job", job, "-n", namespace)
    assert again["metadata"]["uid"] != first_uid  # created anew, under attempt 1's name
    assert f"Job {job} of running attempt 1 of node a was never created" in operator.log()


# --------------------------------------------------------------- Jobs that never get a pod


def _job_uids(cluster: Cluster, namespace: str, selector: str, seen: dict[str, set[str]]) -> None:
    """Record each Job as "name uid" under its attempt label ("item/attempt" for an item's
    Job): a Job deleted later stays counted."""
    for job in items(cluster, "jobs", namespace, selector):
        attempt = job["metadata"]["labels"].get("flowcraft.io/attempt", "?")
        item = job["metadata"]["labels"].get("flowcraft.io/item")
        key = attempt if item is None else f"{item}/{attempt}"
        seen.setdefault(key, set()).add(f"{job['metadata']['name']} {job['metadata']['uid']}")


def test_a_job_that_never_gets_a_pod_fails_its_attempt_and_a_retry_runs(
    cluster: Cluster, namespace: str, flow_crd: None, tmp_path: Path
) -> None:
    """A ResourceQuota of no pods: the Job controller cannot create attempt 1's pod. After the
    operator's pod-creation limit the attempt fails naming the Job and the limit, the Job is
    deleted, and once the quota is gone attempt 2 (a Job of its own) succeeds."""
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods"},
        "spec": {"hard": {"pods": "0"}},
    }
    apply_doc(cluster, namespace, quota)
    op = OperatorProcess(
        cluster, [namespace], tmp_path / "operator.log", extra_args=["--pod-creation-timeout=5"]
    )
    op.start()
    try:
        nodes = [{"id": "a", "uses": "make", "config": {"maxRetries": 2, "retryDelay": 3000}}]
        apply_doc(cluster, namespace, _flow("nopod", nodes, []))
        selector = "flowcraft.io/flow=nopod"
        seen: dict[str, set[str]] = {}

        def attempt_1_failed() -> str | None:
            _job_uids(cluster, namespace, selector, seen)
            message = str(_node(cluster, namespace, "nopod", "a").get("message") or "")
            return message if message.startswith("attempt 1 failed") else None

        message = wait_for(attempt_1_failed, timeout=60, what="attempt 1 to fail")
        (first,) = [entry.split()[0] for entry in seen["1"]]  # attempt 1's Job, maybe gone now
        assert first in message, message
        assert "5 s" in message, message
        assert f"kubectl describe job {first}" in message, message
        assert "ResourceQuota" in message, message
        cluster.kubectl("delete", "resourcequota", "no-pods", "-n", namespace)

        def finished() -> dict[str, Any] | None:
            _job_uids(cluster, namespace, selector, seen)
            flow = get_flow(cluster, namespace, "nopod")
            return flow if flow.get("status", {}).get("phase") in {"Succeeded", "Failed"} else None

        flow = wait_for(finished, timeout=60, what="the flow to finish")
        assert flow["status"]["phase"] == "Succeeded", flow["status"]
        assert flow["status"]["nodes"]["a"]["attempts"] == 2
        assert _output(cluster, namespace, flow["status"]["nodes"]["a"]["outputRef"]) == {
            "made": 42
        }
        jobs = jobs_by_node(cluster, namespace, "nopod")["a"]
        assert first not in jobs, jobs  # attempt 1's Job was deleted, never created again
        assert len(jobs) == 1, jobs
        assert {k: len(v) for k, v in seen.items()} == {"1": 1, "2": 1}, seen
    finally:
        op.stop()
        sys.stderr.write(f"\n--- operator log ---\n{op.log()[-20000:]}\n")


# ---------------------------------------------------------------- batch item Jobs deleted


def _slow_batch(name: str, count: int, chunk: int) -> dict[str, Any]:
    """A batch of ``count`` items in rounds of ``chunk``, each item sleeping 5 s, retried."""
    functions = {
        "slow": {
            "script": "import time\n\ndef run(ctx):\n    time.sleep(5)\n    return ctx.input * 2\n"
        }
    }
    nodes = [
        {
            "id": "scatter",
            "uses": "batch-scatter",
            "inputs": "xs",
            "config": {"maxRetries": 2, "retryDelay": 1000},
            "params": {
                "workerUsesKey": "slow",
                "outputKey": "doubled",
                "gatherNodeId": "gather",
                "chunkSize": chunk,
            },
        },
        {
            "id": "gather",
            "uses": "batch-gather",
            "params": {"outputKey": "doubled", "gatherNodeId": "gather"},
        },
    ]
    doc = _flow(name, nodes, [{"source": "scatter", "target": "gather"}])
    doc["spec"]["functions"] = functions
    doc["spec"]["context"] = {"xs": list(range(count))}
    return doc


def _running_pods(cluster: Cluster, namespace: str, flow: str) -> list[dict[str, Any]]:
    return [
        p
        for p in items(cluster, "pods", namespace, f"flowcraft.io/flow={flow}")
        if p["status"].get("phase") == "Running"
    ]


@pytest.mark.parametrize("mode", ["per-item", "indexed"])
def test_a_running_batch_item_job_deleted_by_hand_fails_its_items_and_they_retry(
    cluster: Cluster, namespace: str, flow_crd: None, tmp_path: Path, mode: str
) -> None:
    """Per item: item 0's Job is deleted while it runs. Indexed: the round's Indexed Job (both
    items) is. Each running item of that Job fails its attempt naming the Job; the retry runs
    as attempt 2 in a Job of its own; the deleted Job is never created again."""
    op = OperatorProcess(
        cluster, [namespace], tmp_path / "operator.log", extra_args=[f"--batch-jobs={mode}"]
    )
    op.start()
    try:
        apply_doc(cluster, namespace, _slow_batch("itemgone", 2, 2))
        selector = "flowcraft.io/flow=itemgone"
        seen: dict[str, set[str]] = {}

        def running() -> list[dict[str, Any]] | None:
            _job_uids(cluster, namespace, selector, seen)
            pods = _running_pods(cluster, namespace, "itemgone")
            return pods if len(pods) == 2 else None

        pods = wait_for(running, timeout=60, what="both items' pods running")
        if mode == "per-item":
            (victim,) = {
                p["metadata"]["labels"]["job-name"]
                for p in pods
                if p["metadata"]["labels"].get("flowcraft.io/item") == "0"
            }
            failed = ["0"]
        else:
            (victim,) = {p["metadata"]["labels"]["job-name"] for p in pods}
            failed = ["0", "1"]
        cluster.kubectl("delete", "job", victim, "-n", namespace, "--wait=false")

        def finished() -> dict[str, Any] | None:
            _job_uids(cluster, namespace, selector, seen)
            flow = get_flow(cluster, namespace, "itemgone")
            return flow if flow.get("status", {}).get("phase") in {"Succeeded", "Failed"} else None

        flow = wait_for(finished, timeout=90, what="the flow to finish")
        assert flow["status"]["phase"] == "Succeeded", flow["status"]
        batch = flow["status"]["nodes"]["scatter"]["batch"]
        assert batch["items"] == "SS", batch
        assert batch.get("attempts") == dict.fromkeys(failed, 2), batch
        jobs = {j["metadata"]["name"] for j in items(cluster, "jobs", namespace, selector)}
        assert victim not in jobs, jobs  # never created again
        assert all(len(uids) == 1 for uids in seen.values()), seen
        for item in failed:
            assert f"{item}/2" in seen, seen  # the retry ran in a Job of its own
            if mode == "indexed":
                assert f"{item}/1" not in seen, seen  # no Job of its own for attempt 1
        assert f"Job {victim} was deleted" in op.log()
    finally:
        op.stop()
        sys.stderr.write(f"\n--- operator log ---\n{op.log()[-20000:]}\n")


@pytest.mark.parametrize("mode", ["per-item", "indexed"])
def test_batch_items_whose_job_never_gets_a_pod_fail_their_attempt_and_retry(
    cluster: Cluster, namespace: str, flow_crd: None, tmp_path: Path, mode: str
) -> None:
    """A ResourceQuota of no pods under a two-item batch: per item, each item's Job fails its
    attempt after the limit; indexed, the round's Indexed Job (no pod for any index) fails
    both. The Jobs are deleted; with the quota gone the retries (Jobs of their own) succeed."""
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods"},
        "spec": {"hard": {"pods": "0"}},
    }
    apply_doc(cluster, namespace, quota)
    op = OperatorProcess(
        cluster,
        [namespace],
        tmp_path / "operator.log",
        extra_args=[f"--batch-jobs={mode}", "--pod-creation-timeout=5"],
    )
    op.start()
    try:
        doc = _slow_batch("itemnopod", 2, 2)
        doc["spec"]["functions"]["slow"]["script"] = "def run(ctx):\n    return ctx.input * 2\n"
        doc["spec"]["nodes"][0]["config"]["retryDelay"] = 3000
        apply_doc(cluster, namespace, doc)
        selector = "flowcraft.io/flow=itemnopod"
        seen: dict[str, set[str]] = {}

        def first_attempts_failed() -> bool:
            _job_uids(cluster, namespace, selector, seen)
            status = get_flow(cluster, namespace, "itemnopod").get("status") or {}
            batch = ((status.get("nodes") or {}).get("scatter") or {}).get("batch") or {}
            states = str(batch.get("items") or "")
            attempts = batch.get("attempts") or {}
            return len(states) == 2 and all(
                states[i] == "r" or attempts.get(str(i), 1) > 1 for i in range(2)
            )

        wait_for(first_attempts_failed, timeout=60, what="both items' first attempts to fail")
        cluster.kubectl("delete", "resourcequota", "no-pods", "-n", namespace)

        def finished() -> dict[str, Any] | None:
            _job_uids(cluster, namespace, selector, seen)
            flow = get_flow(cluster, namespace, "itemnopod")
            return flow if flow.get("status", {}).get("phase") in {"Succeeded", "Failed"} else None

        flow = wait_for(finished, timeout=60, what="the flow to finish")
        assert flow["status"]["phase"] == "Succeeded", flow["status"]
        batch = flow["status"]["nodes"]["scatter"]["batch"]
        assert batch["items"] == "SS", batch
        assert batch.get("attempts") == {"0": 2, "1": 2}, batch
        assert all(len(entries) == 1 for entries in seen.values()), seen
        first = {entry.split()[0] for key, entries in seen.items() for entry in entries}
        first -= {entry.split()[0] for key in ("0/2", "1/2") for entry in seen[key]}
        assert len(first) == (2 if mode == "per-item" else 1), seen  # the first attempts' Jobs
        jobs = {j["metadata"]["name"] for j in items(cluster, "jobs", namespace, selector)}
        assert not first & jobs, (first, jobs)  # deleted, never created again
        log = op.log()
        for name in first:
            assert f"Job {name} got no pod within 5 s" in log
    finally:
        op.stop()
        sys.stderr.write(f"\n--- operator log ---\n{op.log()[-20000:]}\n")
