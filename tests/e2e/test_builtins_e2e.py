"""flowcraft's built-in wait, sleep and loop nodes on a real cluster with real pods.

* wait: the Flow shows Awaiting (the `kubectl get flows` PHASE column) with a NodeAwaiting
  Event; `flowcraft resume FLOW NODE --data JSON` (the CLI, as a user runs it) patches
  spec.resume, the operator rebuilds its engine for the new generation, the node succeeds with
  the data as its output (NodeResumed) and the downstream pod reads it.
* sleep: a durable timer in the status, no pod; the operator is SIGKILLed in the middle of the
  sleep and restarted: the run completes once, with one Job per (node, iteration, attempt),
  and the sleep lasted its full duration.
* loop: five iterations of a body node on real pods, a counter carried through ctx.set; each
  iteration's Job is named by (node, iteration, attempt).
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from typing import Any

import pytest

from cluster import Cluster
from flowcraft.drivers.kubernetes import names, results
from flowcraft.drivers.kubernetes import status as flow_status
from flowcraft.model import FlowStatus
from operator_harness import (
    OperatorProcess,
    apply_doc,
    events_for,
    flow_crd,
    get_flow,
    jobs_by_node,
    operator,
    runner_image,
    wait_for,
    wait_phase,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("runner_image")]

__all__ = ["flow_crd", "operator", "runner_image"]  # fixtures


def flow_doc(
    name: str, functions: dict[str, Any], nodes: list[Any], edges: list[Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {"functions": functions, "nodes": nodes, "edges": edges},
    }


def context_of(cluster: Cluster, namespace: str, doc: dict[str, Any]) -> dict[str, Any]:
    status = FlowStatus.model_validate(doc["status"])
    configmaps = {
        ref: cluster.kubectl_json("get", "configmap", ref, "-n", namespace)
        for ref in flow_status.output_refs(status).values()
    }
    return results.final_context(doc, configmaps)


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def flowcraft_cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from flowcraft.cli import main; raise SystemExit(main())", *args],
        capture_output=True,
        text=True,
        check=False,
        env=cluster.env(),
    )


def test_wait_then_flowcraft_resume_feeds_the_data_downstream(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    functions = {
        "ask": {"script": "def run(ctx):\n    return {'amount': 1500}\n"},
        "decide": {"script": "def run(ctx):\n    return {'decision': ctx.input}\n"},
    }
    doc = flow_doc(
        "approval",
        functions,
        [
            {"id": "ask", "uses": "ask"},
            {"id": "approve", "uses": "wait"},
            {"id": "decide", "uses": "decide"},
        ],
        [{"source": "ask", "target": "approve"}, {"source": "approve", "target": "decide"}],
    )
    apply_doc(cluster, namespace, doc)
    flow = wait_phase(cluster, namespace, "approval", {"Awaiting", "Failed"})
    assert flow["status"]["phase"] == "Awaiting", flow["status"]
    assert flow["status"]["nodes"]["approve"]["phase"] == "Awaiting"
    listed = cluster.kubectl("get", "flows", "-n", namespace).stdout
    assert "Awaiting" in listed.splitlines()[1], listed  # the PHASE printer column

    def awaiting_event() -> list[Any]:
        return [
            e for e in events_for(cluster, namespace, "approval") if e["reason"] == "NodeAwaiting"
        ]

    (event,) = wait_for(awaiting_event, timeout=30, what="the NodeAwaiting event")
    assert f"flowcraft resume approval approve -n {namespace}" in event["message"]

    # Refusals first: exit 2 with a message, nothing patched.
    bad = flowcraft_cli(cluster, "resume", "approval", "ask", "--data", "1", "-n", namespace)
    assert bad.returncode == 2, bad.stderr
    assert "is not a wait node" in bad.stderr
    gone = flowcraft_cli(cluster, "resume", "nope", "approve", "--data", "1", "-n", namespace)
    assert gone.returncode == 3, gone.stderr
    assert "not found" in gone.stderr

    proc = flowcraft_cli(
        cluster,
        "resume",
        "approval",
        "approve",
        "--data",
        '{"output": {"approved": true, "by": "alice"}}',
        "-n",
        namespace,
    )
    assert proc.returncode == 0, proc.stderr
    assert "resumed: node approve" in proc.stdout

    flow = wait_phase(cluster, namespace, "approval", {"Succeeded", "Failed"})
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    assert flow["spec"]["resume"] == {"approve": {"output": {"approved": True, "by": "alice"}}}
    context = context_of(cluster, namespace, flow)
    assert context["_outputs.approve"] == {"approved": True, "by": "alice"}
    assert context["_outputs.decide"] == {"decision": {"approved": True, "by": "alice"}}
    assert "_awaitingNodeIds" not in context
    assert jobs_by_node(cluster, namespace, "approval").keys() == {"ask", "decide"}  # no pod
    reasons = [e["reason"] for e in events_for(cluster, namespace, "approval")]
    assert "NodeResumed" in reasons
    assert reasons.count("NodeAwaiting") == 1


def test_sleep_survives_an_operator_sigkill_mid_sleep(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    functions = {
        "tick": {"script": "def run(ctx):\n    return ctx.node_id\n"},
    }
    doc = flow_doc(
        "nap",
        functions,
        [
            {"id": "before", "uses": "tick"},
            {"id": "nap", "uses": "sleep", "params": {"duration": "3s"}},
            {"id": "after", "uses": "tick"},
        ],
        [{"source": "before", "target": "nap"}, {"source": "nap", "target": "after"}],
    )
    apply_doc(cluster, namespace, doc)

    def sleeping() -> dict[str, Any] | None:
        node = ((get_flow(cluster, namespace, "nap").get("status") or {}).get("nodes") or {}).get(
            "nap"
        ) or {}
        return node if node.get("phase") == "Sleeping" else None

    asleep = wait_for(sleeping, timeout=180, interval=0.1, what="the sleep node to be Sleeping")
    wake_at = _ts(asleep["wakeAt"])
    started = _ts(asleep["startedAt"])
    assert (wake_at - started).total_seconds() == pytest.approx(3.0, abs=0.01)
    operator.kill()  # mid-sleep: the timer only lives in the status now
    time.sleep(1.0)
    assert not operator.alive()
    operator.start()

    flow = wait_phase(cluster, namespace, "nap", {"Succeeded", "Failed"})
    assert flow["status"]["phase"] == "Succeeded", (flow["status"], operator.log()[-3000:])
    nodes = flow["status"]["nodes"]
    assert nodes["nap"]["phase"] == "Succeeded"
    assert nodes["nap"]["attempts"] == 1
    slept = (_ts(nodes["nap"]["finishedAt"]) - _ts(nodes["nap"]["startedAt"])).total_seconds()
    assert slept >= 3.0
    # A Job node's startedAt is its container's start as the kubelet reports it: whole seconds,
    # truncated. Compared with the precise wake time, a start in the same second would look
    # early (it failed so once: 21:31:53 vs 21:31:53.077, the Job created at 53.105).
    assert _ts(nodes["after"]["startedAt"]) >= wake_at.replace(microsecond=0)
    uid = flow["metadata"]["uid"]
    assert jobs_by_node(cluster, namespace, "nap") == {
        "before": [names.job_name("nap", uid, "before", 1)],
        "after": [names.job_name("nap", uid, "after", 1)],
    }
    context = context_of(cluster, namespace, flow)
    assert context["_outputs.nap"] == "before"  # a sleep passes its input through
    assert context["_outputs.after"] == "after"


def test_a_loop_of_five_iterations_runs_one_job_per_iteration(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    functions = {
        "init": {"script": "def run(ctx):\n    ctx.set('count', 0)\n    return 'ready'\n"},
        "body": {
            "script": "def run(ctx):\n    n = ctx.get('count') + 1\n    ctx.set('count', n)\n"
            "    return n\n"
        },
        "done": {"script": "def run(ctx):\n    return {'final': ctx.get('count')}\n"},
    }
    doc = flow_doc(
        "loop",
        functions,
        [
            {"id": "init", "uses": "init"},
            {"id": "loop", "uses": "loop-controller", "params": {"condition": "count < 5"}},
            {"id": "body", "uses": "body"},
            {"id": "done", "uses": "done"},
        ],
        [
            {"source": "init", "target": "loop"},
            {"source": "loop", "target": "body", "action": "continue"},
            {"source": "body", "target": "loop"},
            {"source": "loop", "target": "done", "action": "break"},
        ],
    )
    apply_doc(cluster, namespace, doc)
    flow = wait_phase(cluster, namespace, "loop", {"Succeeded", "Failed"}, timeout=300)
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    jobs = jobs_by_node(cluster, namespace, "loop")
    uid = flow["metadata"]["uid"]
    assert jobs["body"] == sorted(names.job_name("loop", uid, "body", 1, i) for i in range(5))
    assert jobs.keys() == {"init", "body", "done"}  # the loop controller runs no pod
    context = context_of(cluster, namespace, flow)
    assert context["count"] == 5
    assert context["_outputs.done"] == {"final": 5}
