"""Job creates the API server refuses: each case ends in a defined state, never a hang.

A ResourceQuota on ``count/jobs.batch`` lets one Job of a Flow through and refuses the others
with 403 Forbidden ("exceeded quota"). The refused attempt fails with the API server's message,
so the node's (or item's) retries apply; once the quota is gone the retry runs, and the Flow
succeeds with exactly one Job per (node, attempt) or (item, attempt). Before, the refusal
escaped the pass: a batch item whose Job was refused stayed "running" forever (its status was
written alongside the create, and the failed pass forgot to look at it again).

All on real pods, with the operator as a subprocess.
"""

from __future__ import annotations

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
    operator,
    runner_image,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("runner_image")]

__all__ = ["flow_crd", "operator", "runner_image"]  # fixtures

QUOTA = "one-job"
RETRY = {"maxRetries": 3, "retryDelay": 4000}
FUNCTIONS = {
    "make": {"script": "import time\n\ndef run(ctx):\n    time.sleep(2)\n    return 42\n"},
    "double": {
        "script": "import time\n\ndef run(ctx):\n    time.sleep(2)\n    return ctx.input * 2\n"
    },
}


def _one_job_quota(cluster: Cluster, namespace: str) -> None:
    """Apply a quota of one Job and wait until the quota controller has counted it (before
    that, admission refuses every create with "status unknown for quota")."""
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": QUOTA},
        "spec": {"hard": {"count/jobs.batch": "1"}},
    }
    apply_doc(cluster, namespace, quota)

    def counted() -> bool:
        doc = cluster.kubectl_json("get", "resourcequota", QUOTA, "-n", namespace)
        return "count/jobs.batch" in ((doc.get("status") or {}).get("used") or {})

    wait_for(counted, timeout=30, what="the quota controller to count the namespace's Jobs")


def _flow(name: str, nodes: list[Any], edges: list[Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"functions": FUNCTIONS, "nodes": nodes, "edges": edges},
    }


def _batch(name: str, count: int, chunk: int) -> dict[str, Any]:
    nodes = [
        {
            "id": "scatter",
            "uses": "batch-scatter",
            "inputs": "xs",
            "config": RETRY,
            "params": {
                "workerUsesKey": "double",
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
    doc["spec"]["context"] = {"xs": list(range(count))}
    return doc


def _job_uids(cluster: Cluster, namespace: str, selector: str, seen: dict[str, set[str]]) -> None:
    """Record each Job as "name uid" under "node/attempt" ("node/item/attempt" for an item's
    Job of its own, "node/rROUND/attempt" for a round's Indexed Job): a Job deleted later
    stays counted."""
    for job in items(cluster, "jobs", namespace, selector):
        labels = dict(job["metadata"]["labels"])
        if "flowcraft.io/round" in labels:
            labels["flowcraft.io/round"] = "r" + labels["flowcraft.io/round"]
        key = "/".join(
            labels[k]
            for k in (
                "flowcraft.io/node",
                "flowcraft.io/item",
                "flowcraft.io/round",
                "flowcraft.io/attempt",
            )
            if k in labels
        )
        seen.setdefault(key, set()).add(f"{job['metadata']['name']} {job['metadata']['uid']}")


def _refused_then_finished(
    cluster: Cluster, namespace: str, op: OperatorProcess, flow: str, seen: dict[str, set[str]]
) -> dict[str, Any]:
    """Wait for the first refusal, delete the quota, wait for the Flow to finish."""
    selector = f"flowcraft.io/flow={flow}"

    def refused() -> bool:
        _job_uids(cluster, namespace, selector, seen)
        return "exceeded quota" in op.log()

    wait_for(refused, timeout=60, what="a Job create refused by the quota")
    cluster.kubectl("delete", "resourcequota", QUOTA, "-n", namespace)

    def finished() -> dict[str, Any] | None:
        _job_uids(cluster, namespace, selector, seen)
        doc = get_flow(cluster, namespace, flow)
        return doc if doc.get("status", {}).get("phase") in {"Succeeded", "Failed"} else None

    return wait_for(finished, timeout=120, what=f"flow {flow} to finish (not hang)")


def _assert_refusal_failed_the_attempt(log: str) -> None:
    assert "the API server refused Job" in log, log[-5000:]
    assert "exceeded quota" in log
    assert "was deleted while" not in log  # the refused Job is not mistaken for a deleted one


def test_a_refused_node_job_fails_its_attempt_and_the_retry_runs(
    cluster: Cluster, namespace: str, flow_crd: None, tmp_path: Path
) -> None:
    """Two parallel nodes under a quota of one Job: one Job is created, the other refused.
    The refused node's attempt 1 fails naming the refusal; attempt 2 runs once the quota is
    gone; one Job per (node, attempt)."""
    _one_job_quota(cluster, namespace)
    op = OperatorProcess(cluster, [namespace], tmp_path / "operator.log")
    op.start()
    try:
        nodes = [{"id": n, "uses": "make", "config": RETRY} for n in ("a", "b")]
        apply_doc(cluster, namespace, _flow("pair", nodes, []))
        seen: dict[str, set[str]] = {}
        flow = _refused_then_finished(cluster, namespace, op, "pair", seen)
        assert flow["status"]["phase"] == "Succeeded", flow["status"]
        attempts = sorted(flow["status"]["nodes"][n]["attempts"] for n in ("a", "b"))
        assert attempts == [1, 2], flow["status"]["nodes"]
        assert all(len(uids) == 1 for uids in seen.values()), seen
        refused = "a" if flow["status"]["nodes"]["a"]["attempts"] == 2 else "b"
        other = "b" if refused == "a" else "a"
        assert set(seen) == {f"{other}/1", f"{refused}/2"}, seen  # attempt 1 never had a Job
        _assert_refusal_failed_the_attempt(op.log())
    finally:
        op.stop()
        sys.stderr.write(f"\n--- operator log ---\n{op.log()[-20000:]}\n")


@pytest.mark.parametrize("mode", ["per-item", "indexed"])
def test_refused_batch_item_jobs_fail_their_attempt_and_the_retries_run(
    cluster: Cluster, namespace: str, flow_crd: None, tmp_path: Path, mode: str
) -> None:
    """Three batch items under a quota of one Job. Per item (one round of three): one item's
    Job is created, the other two refused. Indexed (rounds of one): round 0's Indexed Job is
    created, the others refused, and so are the Jobs of their own the items then fall back
    to. Each refused item attempt fails naming the refusal; the retries succeed once the
    quota is gone; never two Jobs for one (item, attempt), never a hang."""
    _one_job_quota(cluster, namespace)
    op = OperatorProcess(
        cluster, [namespace], tmp_path / "operator.log", extra_args=[f"--batch-jobs={mode}"]
    )
    op.start()
    try:
        apply_doc(cluster, namespace, _batch("trio", 3, 3 if mode == "per-item" else 1))
        seen: dict[str, set[str]] = {}
        flow = _refused_then_finished(cluster, namespace, op, "trio", seen)
        assert flow["status"]["phase"] == "Succeeded", flow["status"]
        batch = flow["status"]["nodes"]["scatter"]["batch"]
        assert batch["items"] == "SSS", batch
        retried = batch.get("attempts") or {}
        assert retried, batch  # the refused items
        assert all(a >= 2 for a in retried.values()), batch
        assert all(len(uids) == 1 for uids in seen.values()), seen
        for item, attempts in retried.items():
            # A refused attempt never had a Job; the last one did.
            assert f"scatter/{item}/{attempts}" in seen, seen
            assert f"scatter/{item}/1" not in seen, seen
        _assert_refusal_failed_the_attempt(op.log())
        gather = flow["status"]["nodes"]["gather"]
        assert gather.get("phase", "Succeeded") == "Succeeded", gather
    finally:
        op.stop()
        sys.stderr.write(f"\n--- operator log ---\n{op.log()[-20000:]}\n")
