"""A node's ``timeout`` on the cluster is timed by the operator: the attempt fails (reason
Timeout) within about a second of its deadline, not when the Job controller gets round to it.

Measured from outside, as a user sees it: the test polls the pod and the Flow and takes the
time between "the container runs" and "the status says the attempt failed". Before the
operator timed attempts itself, a 1000 ms timeout on a 5 s sleep failed about 6 s after the
container started (7 s after the Job was created), and two 500 ms attempts took 13.6 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from cluster import Cluster
from flowcraft.drivers.kubernetes import timeouts
from operator_harness import (
    OperatorProcess,
    apply_doc,
    flow_crd,
    get_flow,
    items,
    operator,
    runner_image,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("runner_image")]

__all__ = ["flow_crd", "operator", "runner_image"]  # fixtures

# The aim is timeout + 1 s on an idle cluster; the bound leaves room for a loaded machine
# (the poll itself is a kubectl call of 0.1-0.5 s there) and still fails the old behaviour.
BOUND = 2.5

SLOW = "import time\n\ndef run(ctx):\n    time.sleep(5)\n    return 'too late'\n"


def _flow(name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {
            "functions": {"slow": {"script": SLOW}},
            "nodes": [{"id": "slow", "uses": "slow", "config": config}],
        },
    }


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _watch(
    stream: Any, seen: Callable[[dict[str, Any], float], None], stop: threading.Event
) -> None:
    """Feed each watch event's object (as the API sent it) with its receipt time."""
    for event in stream:
        seen(event["raw_object"], time.monotonic())
        if stop.is_set():
            return


def _failed_attempts(node: dict[str, Any]) -> int:
    """How many attempts the status shows as failed."""
    attempts = int(node.get("attempts") or 0)
    if node.get("phase") == "Failed":
        return attempts
    return attempts - 1 if node.get("phase") in ("Running", "Retrying", "Pending") else 0


def _measure(
    cluster: Cluster,
    k8s_api: Any,
    namespace: str,
    name: str,
    attempts: int,
    *,
    timeout: float = 120,
) -> tuple[list[float], dict[str, Any]]:
    """Per attempt: seconds from the test seeing its container run (a pod watch: a poll could
    miss a pod the operator deletes within a second) to the status showing it failed (a poll
    of the Flow, every 50 ms plus kubectl's own time); and the final Flow."""
    from kubernetes import client, watch  # noqa: PLC0415

    running_at: dict[int, float] = {}
    failed_at: dict[int, float] = {}
    pod_states: list[str] = []  # for the failure message
    stop = threading.Event()

    def pod_seen(pod: dict[str, Any], at: float) -> None:
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        pod_states.append(str([list(s.get("state") or {}) for s in statuses]))
        if any({"running", "terminated"} & set(s.get("state") or {}) for s in statuses):
            attempt = int(pod["metadata"]["labels"]["flowcraft.io/attempt"])
            running_at.setdefault(attempt, at)

    pods = watch.Watch().stream(
        client.CoreV1Api(k8s_api).list_namespaced_pod, namespace, timeout_seconds=int(timeout)
    )
    thread = threading.Thread(target=_watch, args=(pods, pod_seen, stop), daemon=True)
    thread.start()
    end = time.monotonic() + timeout
    flow: dict[str, Any] = {}
    while time.monotonic() < end:
        flow = get_flow(cluster, namespace, name)
        now = time.monotonic()
        status = flow.get("status") or {}
        node = (status.get("nodes") or {}).get("slow") or {}
        for attempt in range(1, _failed_attempts(node) + 1):
            failed_at.setdefault(attempt, now)
        if status.get("phase") in ("Failed", "Succeeded"):
            break
        time.sleep(0.05)
    stop.set()
    time.sleep(0.5)  # a late pod event still counts (it is stamped on receipt)
    spans = [failed_at[a] - running_at[a] for a in range(1, attempts + 1) if a in running_at]
    assert len(spans) == attempts, f"running seen {running_at}, pod states {pod_states}"
    return spans, flow


def test_a_timeout_fails_the_attempt_about_a_second_after_its_container_started(
    cluster: Cluster, namespace: str, operator: OperatorProcess, k8s_api: Any
) -> None:
    apply_doc(cluster, namespace, _flow("late", {"timeout": 1000}))
    (span,), flow = _measure(cluster, k8s_api, namespace, "late", 1)
    node = flow["status"]["nodes"]["slow"]
    took = _ts(node["finishedAt"]) - _ts(node["startedAt"])  # container start (whole s) -> end
    print(
        f"timeout 1000 ms: failed {span:.2f} s after the test saw the container run; "
        f"status: startedAt -> finishedAt {took.total_seconds():.2f} s"
    )
    assert flow["status"]["phase"] == "Failed"
    assert node["reason"] == "Timeout"
    assert "timed out after 1000 ms" in node["message"]
    assert span < 1.0 + BOUND, f"{span:.2f} s"
    (job,) = items(cluster, "jobs", namespace, "flowcraft.io/flow=late")
    assert job["spec"]["activeDeadlineSeconds"] == 1 + timeouts.BACKSTOP_SECONDS


def test_each_retried_attempt_times_out_on_its_own_deadline(
    cluster: Cluster, namespace: str, operator: OperatorProcess, k8s_api: Any
) -> None:
    started = time.monotonic()
    apply_doc(cluster, namespace, _flow("twice", {"timeout": 500, "maxRetries": 2}))
    spans, flow = _measure(cluster, k8s_api, namespace, "twice", 2)
    total = time.monotonic() - started
    print(f"2 x 500 ms: attempts failed {[round(s, 2) for s in spans]} s after running; "
          f"flow {total:.1f} s")  # fmt: skip
    assert flow["status"]["phase"] == "Failed"
    assert flow["status"]["nodes"]["slow"]["attempts"] == 2
    assert len(spans) == 2, spans
    assert all(s < 0.5 + BOUND for s in spans), spans
