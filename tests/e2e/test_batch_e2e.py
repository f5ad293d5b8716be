"""Batch items on real pods: a 200-item batch in rounds of 20 whose gather is summed, in both
ways the operator can run items (a Job per item, an Indexed Job per round), and a batch whose
operator is SIGKILLed again and again still creates exactly one Job per (item, attempt).

Everything goes through the API server as a user would (kubectl apply, reading the Flow, Jobs
and ConfigMaps back); nothing is mocked.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest

from cluster import Cluster
from flowcraft.drivers.kubernetes import builders, names
from flowcraft.model import FunctionSpec, NodeSpec
from operator_harness import (
    RUNNER_IMAGE,
    OperatorProcess,
    apply_doc,
    events_for,
    flow_crd,
    get_flow,
    items,
    operator,
    runner_image,
    wait_for,
    wait_phase,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("runner_image")]

__all__ = ["flow_crd", "operator", "runner_image"]  # fixtures

LABEL_ITEM = "flowcraft.io/item"
LABEL_ATTEMPT = "flowcraft.io/attempt"


def _batch_flow(name: str, count: int, chunk: int) -> dict[str, Any]:
    """start -> [0..count-1] -> each item doubled (chunkSize ``chunk``) -> gather -> sum."""
    return {
        "apiVersion": "flowcraft.io/v1alpha1",
        "kind": "Flow",
        "metadata": {"name": name},
        "spec": {
            "context": {"n": count},
            "functions": {
                "items": {"script": "def run(ctx):\n    return list(range(ctx.input))\n"},
                "double": {"script": "def run(ctx):\n    return ctx.input * 2\n"},
                "total": {"script": "def run(ctx):\n    return sum(ctx.input)\n"},
            },
            "nodes": [
                {"id": "start", "uses": "items", "inputs": "n"},
                {
                    "id": "double_scatter",
                    "uses": "batch-scatter",
                    "inputs": "start",
                    "params": {
                        "workerUsesKey": "double",
                        "outputKey": "doubled",
                        "gatherNodeId": "double_gather",
                        "chunkSize": chunk,
                    },
                },
                {
                    "id": "double_gather",
                    "uses": "batch-gather",
                    "params": {"outputKey": "doubled", "gatherNodeId": "double_gather"},
                },
                {"id": "sum", "uses": "total", "inputs": "doubled"},
            ],
            "edges": [
                {"source": "start", "target": "double_scatter"},
                {"source": "double_scatter", "target": "double_gather"},
                {"source": "double_gather", "target": "sum"},
            ],
        },
    }


def _output(cluster: Cluster, namespace: str, flow: dict[str, Any], node: str) -> Any:
    ref = flow["status"]["nodes"][node]["outputRef"]
    cm = cluster.kubectl_json("get", "configmap", ref, "-n", namespace)
    return json.loads(cm["data"]["output.json"])


def _item_jobs(cluster: Cluster, namespace: str) -> Counter[tuple[str, str]]:
    """(item, attempt) -> number of Jobs for it (Jobs of one item each)."""
    return Counter(
        (job["metadata"]["labels"][LABEL_ITEM], job["metadata"]["labels"][LABEL_ATTEMPT])
        for job in items(cluster, "jobs", namespace, LABEL_ITEM)
    )


def per_item_of(per_item: Counter[tuple[str, str]], members: set[str]) -> list[tuple[str, str]]:
    """The (item, attempt) keys of ``per_item`` whose item is one of ``members``."""
    return [key for key in per_item if key[0] in members]


@pytest.fixture(params=["per-item", "indexed"])
def batch_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    # The operator fixture's process inherits the environment: its --batch-jobs default.
    monkeypatch.setenv("FLOWCRAFT_BATCH_JOBS", str(request.param))
    return str(request.param)


@pytest.fixture
def batch_operator(batch_mode: str, operator: OperatorProcess) -> OperatorProcess:
    return operator


def test_200_items_in_rounds_of_20_are_gathered_and_summed(
    cluster: Cluster, namespace: str, batch_mode: str, batch_operator: OperatorProcess
) -> None:
    apply_doc(cluster, namespace, _batch_flow("sum200", 200, 20))
    flow = wait_phase(cluster, namespace, "sum200", {"Succeeded", "Failed"}, timeout=900)
    status = flow["status"]
    assert status["phase"] == "Succeeded", status
    assert _output(cluster, namespace, flow, "sum") == 2 * sum(range(200))
    batch = status["nodes"]["double_scatter"]["batch"]
    assert batch["total"] == 200
    assert batch["chunk"] == 20
    assert batch["items"] == "S" * 200
    assert status["progress"] == "204/204"  # 4 nodes + 200 items
    jobs = items(cluster, "jobs", namespace)
    if batch_mode == "per-item":
        assert len(jobs) == 1 + 200 + 1
        assert set(_item_jobs(cluster, namespace).values()) == {1}
    else:
        rounds = [j for j in jobs if j["spec"].get("completionMode") == "Indexed"]
        assert len(rounds) == 10
        assert all(j["spec"]["completions"] == 20 for j in rounds)
        assert len(jobs) == 1 + 10 + 1
    # One output ConfigMap per item, found by the label a restarted operator lists them with.
    outputs = items(cluster, "configmaps", namespace, "flowcraft.io/component=item-output")
    assert len(outputs) == 200
    # Rounds: no item of round k+1 started before every item of round k had finished.
    pods = items(cluster, "pods", namespace, "flowcraft.io/node=double_scatter")
    spans: dict[int, list[tuple[str, str]]] = {}
    for pod in pods:
        term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        ann = pod["metadata"]["annotations"]
        item = int(ann["flowcraft.io/item"]) if "flowcraft.io/item" in ann else (
            int(ann["flowcraft.io/round-start"])
            + int(ann["batch.kubernetes.io/job-completion-index"])
        )  # fmt: skip
        spans.setdefault(item // 20, []).append((term["startedAt"], term["finishedAt"]))
    assert sorted(spans) == list(range(10))
    for k in range(9):
        # Second resolution: a next round may start within the second the last one ended.
        assert max(end for _, end in spans[k]) <= min(start for start, _ in spans[k + 1]), k


def test_sigkill_mid_batch_leaves_exactly_one_job_per_item_attempt(
    cluster: Cluster, namespace: str, batch_mode: str, batch_operator: OperatorProcess
) -> None:
    apply_doc(cluster, namespace, _batch_flow("killed", 60, 20))
    seen: tuple[int, str] = (0, "")
    kills = 0
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        flow = get_flow(cluster, namespace, "killed")
        status = flow.get("status") or {}
        if status.get("phase") in {"Succeeded", "Failed"}:
            break
        batch = (status.get("nodes") or {}).get("double_scatter", {}).get("batch") or {}
        progress = (len(items(cluster, "jobs", namespace)), str(batch.get("items", "")))
        if progress != seen and kills < 12:
            # Something moved (a Job created, an item recorded): crash right there.
            seen = progress
            batch_operator.restart()
            kills += 1
        time.sleep(0.3)
    assert kills >= 4, "the operator should have been killed at several points mid-batch"
    assert flow["status"]["phase"] == "Succeeded", flow["status"]
    assert _output(cluster, namespace, flow, "sum") == 2 * sum(range(60))
    jobs = items(cluster, "jobs", namespace)
    per_item = _item_jobs(cluster, namespace)
    if batch_mode == "per-item":
        assert sorted(per_item) == sorted((str(i), "1") for i in range(60))
        assert set(per_item.values()) == {1}, per_item
        assert len(jobs) == 62
    else:
        # Each round ran once: as one Indexed Job, or, when the operator was killed after
        # recording the round's items as running but before creating its Indexed Job, as a
        # Job per item (the restarted operator re-ensures the items' Jobs one by one); never
        # both for one round, never a second Indexed Job, never two Jobs for an item attempt.
        rounds = Counter(j["metadata"]["labels"]["flowcraft.io/round"] for j in jobs
                         if j["spec"].get("completionMode") == "Indexed")  # fmt: skip
        assert set(rounds.values()) <= {1}, rounds
        assert set(per_item.values()) <= {1}, per_item
        for round_ in range(3):
            members = {str(i) for i in range(20 * round_, 20 * round_ + 20)}
            own = {item for item, _attempt in per_item if item in members}
            if str(round_) in rounds:
                assert not own, (round_, sorted(own))  # not beside its Indexed Job
            else:
                assert sorted(per_item_of(per_item, members)) == sorted(
                    (i, "1") for i in members
                ), (round_, per_item)
        assert len(jobs) == 2 + sum(rounds.values()) + sum(per_item.values())
    assert batch_operator.starts > 4


OLD_UID = "00000000-dead-4bad-8000-00000000f10e"  # a deleted Flow of the same name
SLOW_GC = "flowcraft.test/slow-gc"  # holds the stale objects as a slow garbage collector would


def _hold(cluster: Cluster, namespace: str, obj: dict[str, Any], name: str) -> None:
    doc = json.loads(json.dumps(obj))
    doc["metadata"]["name"] = name
    doc["metadata"]["finalizers"] = [SLOW_GC]
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(doc))


def _release(cluster: Cluster, namespace: str, kind: str, name: str) -> None:
    cluster.kubectl(
        "patch", kind, name, "-n", namespace, "--type=merge",
        "-p", '{"metadata":{"finalizers":null}}', check=False,
    )  # fmt: skip


@pytest.fixture
def indexed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWCRAFT_BATCH_JOBS", "indexed")  # before the operator starts


def test_a_held_round_job_or_items_configmap_makes_that_round_run_a_job_per_item(
    cluster: Cluster, namespace: str, indexed: None, operator: OperatorProcess
) -> None:
    """Indexed mode, two rounds of two items: a deleted Flow's round-items ConfigMap sits under
    round 0's name and its (suspended) Indexed Job under round 1's. Neither is mounted, resumed
    nor deleted; each round runs a Job per item instead, with a NameConflict Warning Event, and
    the batch sums as usual."""
    doc = _batch_flow("rounds", 4, 2)
    doc["spec"]["suspend"] = True
    apply_doc(cluster, namespace, doc)
    uid = get_flow(cluster, namespace, "rounds")["metadata"]["uid"]
    old = builders.FlowRef(name="rounds", namespace=namespace, uid=OLD_UID)
    items_name = names.round_items_name("rounds", uid, "double_scatter", 0, 0)
    job_name = names.round_job_name("rounds", uid, "double_scatter", 0, 1)
    stale_items = builders.round_items_configmap(old, "double_scatter", 0, 0, ["STALE", "STALE"])
    stale_job = builders.indexed_job_manifest(
        old, NodeSpec(id="double_scatter", uses="batch-scatter"),
        FunctionSpec(script="def run(ctx):\n    return 'STALE'\n"), "double",
        round_=1, first_item=2, count=2, parallelism=2, timeout_seconds=None,
        view=builders.View(), runner_image=RUNNER_IMAGE,
    )  # fmt: skip
    stale_job["spec"]["suspend"] = True
    try:
        _hold(cluster, namespace, stale_items, items_name)
        _hold(cluster, namespace, stale_job, job_name)
        cluster.kubectl(
            "patch", "flow", "rounds", "-n", namespace, "--type=merge",
            "-p", '{"spec":{"suspend":false}}',
        )  # fmt: skip
        flow = wait_phase(cluster, namespace, "rounds", {"Succeeded", "Failed"}, timeout=600)
        assert flow["status"]["phase"] == "Succeeded", flow["status"]
        assert _output(cluster, namespace, flow, "sum") == 2 * sum(range(4))
        own = [
            job
            for job in items(cluster, "jobs", namespace, f"flowcraft.io/flow-uid={uid}")
            if builders.controlled_by(job, uid)
        ]
        assert not [j for j in own if j["spec"].get("completionMode") == "Indexed"]
        assert sorted(_item_jobs(cluster, namespace)) == [(str(i), "1") for i in range(4)]
        conflicts = wait_for(
            lambda: (
                found
                if len(
                    found := [
                        e
                        for e in events_for(cluster, namespace, "rounds")
                        if e["reason"] == "NameConflict"
                    ]
                )
                >= 2
                else None
            ),
            what="two NameConflict events",
        )
        messages = " | ".join(e["message"] for e in conflicts)
        assert f"ConfigMap {namespace}/{items_name} already exists" in messages
        assert f"Job {namespace}/{job_name} already exists" in messages
        job = cluster.kubectl_json("get", "job", job_name, "-n", namespace)
        assert builders.controlled_by(job, OLD_UID)
        assert job["spec"]["suspend"] is True
        cm = cluster.kubectl_json("get", "configmap", items_name, "-n", namespace)
        assert builders.controlled_by(cm, OLD_UID)
        assert "STALE" in json.dumps(cm["data"])
    finally:
        _release(cluster, namespace, "configmap", items_name)
        _release(cluster, namespace, "job", job_name)
