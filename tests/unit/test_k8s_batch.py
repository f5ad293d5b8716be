"""Batch items on the cluster: names, manifests, status rendering, `flowcraft get` (pure)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flowcraft.clustercli import batch_summary, render_flow
from flowcraft.contract import ViewItem, item_key
from flowcraft.drivers.kubernetes import builders, cache, names
from flowcraft.drivers.kubernetes import status as fs
from flowcraft.model import BatchStatus, Completion, FlowStatus, FunctionSpec, NodeSpec, NodeStatus

pytestmark = pytest.mark.unit

UID = "uid-1"
FLOW = builders.FlowRef(name="batch", namespace="ns1", uid=UID)
SCATTER = NodeSpec(
    id="double-items_scatter",
    uses="batch-scatter",
    params={"workerUsesKey": "double", "outputKey": "doubled", "gatherNodeId": "g"},
)
WORKER = FunctionSpec(script="def run(ctx):\n    return ctx.input * 2\n")
VIEW = builders.View(
    order=(ViewItem("start", key="start"),),
    configmaps={"start": "batch-start-1-out"},
    context_configmap="batch-context",
)
ROOT = Path(__file__).resolve().parents[2]


# ----------------------------------------------------------------------------- names


def test_item_names_are_deterministic_distinct_and_dns_labels() -> None:
    jobs = {
        names.item_job_name("flow", UID, "sc", iteration, item, attempt=attempt)
        for iteration in (0, 1)
        for item in range(10_000)
        for attempt in (1, 2)
    }
    assert len(jobs) == 40_000
    assert all(names.is_dns_label(n) for n in jobs)
    assert names.item_job_name("flow", UID, "sc", 0, 7, attempt=1) == names.item_job_name(
        "flow", UID, "sc", 0, 7, attempt=1
    )
    outs = {names.item_output_name("flow", UID, "sc", 0, i) for i in range(10_000)}
    assert len(outs) == 10_000
    assert all(names.is_dns_label(n) for n in outs)
    assert outs.isdisjoint(jobs)


def test_item_names_keep_index_and_attempt_readable_even_when_cut() -> None:
    name = names.item_job_name("a" * 80, UID, "Double_Items_Scatter" * 5, 3, 9_999, attempt=2)
    assert len(name) <= names.MAX_NAME
    assert names.is_dns_label(name)
    assert "-9999-a2-" in name
    assert names.item_job_name("batch", UID, "double-items_scatter", 0, 12, attempt=1).startswith(
        "batch-double-items-scatter-12-a1-"
    )


def test_ids_with_dashes_cannot_make_two_items_share_a_name() -> None:
    # Readable forms alike ("f-s-1-1-a1"), identities differ: the hash tells them apart.
    assert names.item_job_name("f", UID, "s-1", 0, 1, attempt=1) != names.item_job_name(
        "f-s", UID, "1", 0, 1, attempt=1
    )
    assert names.item_job_name("f", UID, "s", 0, 11, attempt=1) != names.item_job_name(
        "f", UID, "s", 1, 1, attempt=1
    )


def test_round_job_names_leave_room_for_indexed_pod_names() -> None:
    name = names.round_job_name("x" * 100, UID, "y" * 100, 2, 499)
    assert len(name) <= names.MAX_INDEXED_JOB
    assert names.is_dns_label(name)
    assert "-r499-" in name
    rounds = {names.round_job_name("f", UID, "s", 0, r) for r in range(500)}
    assert len(rounds) == 500
    assert names.round_items_name("f", UID, "s", 0, 3) != names.round_job_name("f", UID, "s", 0, 3)


# ----------------------------------------------------------------------------- manifests


def _item_job(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "timeout_seconds": 30.0,
        "view": VIEW,
        "runner_image": "flowcraft-runner:0.1.0",
        "item": 42,
        "uses": "double",
    }
    args.update(kw)
    return builders.job_manifest(FLOW, SCATTER, WORKER, 2, 21, **args)


def _annotations(job: dict[str, Any]) -> dict[str, str]:
    return dict(job["spec"]["template"]["metadata"]["annotations"])


def test_item_job_runs_the_worker_with_the_item_and_the_scatters_view() -> None:
    job = _item_job()
    meta = job["metadata"]
    assert meta["name"] == names.item_job_name(
        "batch", UID, "double-items_scatter", 0, 42, attempt=2
    )
    assert meta["labels"][builders.LABEL_ITEM] == "42"
    assert meta["labels"][builders.LABEL_NODE] == "double-items_scatter"
    assert meta["labels"][builders.LABEL_ATTEMPT] == "2"
    assert meta["annotations"][builders.ANN_ITEM] == "42"
    ann = _annotations(job)
    assert json.loads(ann[builders.ANN_FUNCTION])["name"] == "double"
    assert json.loads(ann[builders.ANN_FUNCTION])["script"] == WORKER.script
    assert json.loads(ann[builders.ANN_PARAMS]) == {}  # flowcraft's workers get no params
    assert json.loads(ann[builders.ANN_INPUT]) == 21
    assert json.loads(ann[builders.ANN_VIEW]) == [{"id": "start"}]
    volume = job["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
    assert {"configMap": {"name": "batch-start-1-out", "items": [
        {"key": "output.json", "path": "outputs/start.json"}]}} in volume  # fmt: skip
    assert job["spec"]["activeDeadlineSeconds"] == 30
    assert job["spec"]["backoffLimit"] == 0


def test_item_job_of_a_later_iteration_is_named_and_annotated_for_it() -> None:
    job = _item_job(iteration=3)
    assert job["metadata"]["name"] == names.item_job_name(
        "batch", UID, SCATTER.id, 3, 42, attempt=2
    )
    assert job["metadata"]["annotations"][builders.ANN_ITERATION] == "3"


def test_item_output_configmap_is_immutable_named_per_item_and_listable() -> None:
    cm = builders.item_output_configmap(
        FLOW, SCATTER.id, {"v": 2}, [{"op": "set", "key": "k", "value": 1}], item=7, attempt=3
    )
    assert cm["metadata"]["name"] == names.item_output_name("batch", UID, SCATTER.id, 0, 7)
    assert cm["immutable"] is True
    assert builders.read_output(cm) == ({"v": 2}, ({"op": "set", "key": "k", "value": 1},))
    labels = cm["metadata"]["labels"]
    selector = builders.item_outputs_selector(FLOW, SCATTER.id)
    for term in selector.split(","):
        key, value = term.split("=")
        assert labels[key] == value, term
    assert labels[builders.LABEL_ITEM] == "7"
    assert cm["metadata"]["annotations"][builders.ANN_ATTEMPT] == "3"


def test_round_items_configmap_holds_one_file_per_index() -> None:
    cm = builders.round_items_configmap(FLOW, SCATTER.id, 0, 2, [{"a": 1}, 5, None])
    assert cm["data"] == {"0.json": '{"a":1}', "1.json": "5", "2.json": "null"}
    assert cm["metadata"]["name"] == names.round_items_name("batch", UID, SCATTER.id, 0, 2)
    assert cm["immutable"] is True
    with pytest.raises(builders.ManifestTooLarge, match="round 2"):
        builders.round_items_configmap(FLOW, SCATTER.id, 0, 2, ["x" * 1000] * 1000)


def _indexed(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "round_": 2,
        "first_item": 40,
        "count": 20,
        "parallelism": 5,
        "timeout_seconds": 12.5,
        "view": VIEW,
        "runner_image": "flowcraft-runner:0.1.0",
    }
    args.update(kw)
    return builders.indexed_job_manifest(FLOW, SCATTER, WORKER, "double", **args)


def test_indexed_job_covers_the_round_and_each_index_fails_alone() -> None:
    job = _indexed()
    spec = job["spec"]
    assert job["metadata"]["name"] == names.round_job_name("batch", UID, SCATTER.id, 0, 2)
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == 20
    assert spec["parallelism"] == 5
    assert spec["backoffLimitPerIndex"] == 0
    assert spec["maxFailedIndexes"] == 20
    pod = spec["template"]["spec"]
    assert pod["activeDeadlineSeconds"] == 13  # the item timeout, per pod
    assert "activeDeadlineSeconds" not in spec
    assert job["metadata"]["annotations"][builders.ANN_ROUND_START] == "40"
    items = next(v for v in pod["volumes"] if v["name"] == "flowcraft-items")
    assert items["configMap"]["name"] == names.round_items_name("batch", UID, SCATTER.id, 0, 2)
    container = pod["containers"][0]
    assert container["command"][:2] == ["python3", "-c"]
    assert {"name": "flowcraft-items", "mountPath": builders.ITEMS_DIR, "readOnly": True} in (
        container["volumeMounts"]
    )


def test_indexed_job_parallelism_never_exceeds_the_round() -> None:
    assert _indexed(count=3, parallelism=50)["spec"]["parallelism"] == 3


def test_container_workers_cannot_run_indexed() -> None:
    image = FunctionSpec(image="busybox:1", command=["true"])
    assert not builders.indexed_supported(image)
    with pytest.raises(builders.ManifestError):
        builders.indexed_job_manifest(
            FLOW,
            SCATTER,
            image,
            "double",
            round_=0,
            first_item=0,
            count=1,
            parallelism=1,
            timeout_seconds=None,
            view=VIEW,
            runner_image="r",
        )


def test_indexed_bootstrap_runs_the_real_runtime_on_its_own_item(tmp_path: Path) -> None:
    """The pod's bootstrap, run here with the real node runtime: index 1 of the round gets
    item 1 of the items ConfigMap as its input, its worker's id, and sees the shared view
    files."""
    src, items, work = tmp_path / "in", tmp_path / "items", tmp_path / "work"
    (src / "outputs").mkdir(parents=True)
    items.mkdir()
    script = "def run(ctx):\n    return [ctx.input * 2, ctx.node_id]\n"
    (src / "function.json").write_text(json.dumps({"script": script, "name": "double"}))
    (src / "params.json").write_text("{}")
    (src / "input.json").write_text("null")  # the shared annotation: must not be read
    (src / "view.json").write_text('[{"id": "start"}]')
    (src / "outputs" / "start.json").write_text("[10, 20]")
    for index, value in enumerate([10, 20]):
        (items / f"{index}.json").write_text(json.dumps(value))
    code = (
        builders.indexed_bootstrap("double_b_", 40)
        .replace(repr(builders.IN_DIR), repr(str(src)))
        .replace(repr(builders.WORK_IN_DIR), repr(str(work)))
        .replace(repr(builders.ITEMS_DIR), repr(str(items)))
    )
    out = tmp_path / "result.json"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT / "operator"),
        "JOB_COMPLETION_INDEX": "1",
        "FLOWCRAFT_NODE": SCATTER.id,
        "FLOWCRAFT_ATTEMPT": "1",
        "FLOWCRAFT_IN": str(src),
        "FLOWCRAFT_OUT": str(out),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    # Index 1 of a round starting at item 40 is item 41, under its worker's id.
    assert json.loads(out.read_text())["output"] == [40, "double_b_41"]


# ----------------------------------------------------------------------------- status


def _status(items: str, chunk: int = 0, **kw: Any) -> FlowStatus:
    batch = BatchStatus(total=len(items), chunk=chunk or max(1, len(items)), items=items, **kw)
    return FlowStatus(
        phase="Running",
        nodes={
            "start": NodeStatus(phase="Succeeded", attempts=1),
            "sc": NodeStatus(phase="Running", attempts=1, batch=batch),
        },
    )


def test_progress_counts_finished_items_beside_nodes() -> None:
    status = _status("S" * 9_950 + "R" * 48 + "F" * 2)
    assert fs.item_progress(status) == (9_952, 10_000)
    out = fs.render_status(status, {}, total=4)
    assert out["progress"] == "9953/10004"  # start + 9,952 items of 4 nodes + 10,000 items


def test_cancelled_items_are_finished_pending_and_retrying_ones_are_not() -> None:
    assert fs.item_progress(_status("SCr.R")) == (2, 5)


def test_status_of_10000_items_stays_small() -> None:
    attempts = {str(i): 2 for i in range(0, 10_000, 100)}
    status = _status("S" * 9_000 + "R" * 1_000, attempts=attempts)
    size = len(json.dumps(fs.render_status(status, {}, total=4)))
    assert size < 12 * 1024, size


def test_item_output_names_cover_succeeded_items_and_earlier_iterations() -> None:
    status = _status("S.RS")
    status.history.append(Completion(node="sc", iteration=0, seq=1, items=2))
    status.nodes["sc"].iteration = 1
    refs = fs.item_output_names(status, "batch", UID)
    assert refs == {
        item_key("sc", 1, 0): names.item_output_name("batch", UID, "sc", 1, 0),
        item_key("sc", 1, 3): names.item_output_name("batch", UID, "sc", 1, 3),
        item_key("sc", 0, 0): names.item_output_name("batch", UID, "sc", 0, 0),
        item_key("sc", 0, 1): names.item_output_name("batch", UID, "sc", 0, 1),
    }


# ----------------------------------------------------------------------------- flowcraft get


def test_batch_summary_is_one_line() -> None:
    batch = {"total": 10_000, "chunk": 10_000, "items": "S" * 9_950 + "R" * 48 + "F" * 2}
    assert batch_summary(batch) == "items: 9,950/10,000 succeeded, 48 running, 2 failed"


def test_batch_summary_names_the_round_and_retries() -> None:
    batch = {"total": 200, "chunk": 20, "items": "S" * 45 + "R" * 14 + "r" + "." * 140,
             "attempts": {"59": 2}}  # fmt: skip
    assert batch_summary(batch) == (
        "items: 45/200 succeeded, 14 running, 1 retrying, 140 pending (round 3/10 of 20); 1 retried"
    )


def test_get_prints_one_summary_line_under_the_scatter_not_one_per_item() -> None:
    flow = {
        "metadata": {"name": "b", "namespace": "ns"},
        "spec": {
            "nodes": [{"id": "start"}, {"id": "sc"}, {"id": "g"}, {"id": "end"}],
            "edges": [
                {"source": "start", "target": "sc"},
                {"source": "sc", "target": "g"},
                {"source": "g", "target": "end"},
            ],
        },
        "status": {
            "phase": "Running",
            "progress": "9951/10004",
            "nodes": {
                "start": {"phase": "Succeeded"},
                "sc": {
                    "phase": "Running",
                    "batch": {"total": 10_000, "chunk": 10_000, "items": "S" * 9_950 + "R" * 50},
                },
            },
        },
    }
    lines = render_flow(flow).splitlines()
    assert len(lines) == 7  # header, column heads, 4 nodes, 1 summary
    at = next(i for i, line in enumerate(lines) if line.split()[:2] == ["└──", "sc"])
    assert lines[at + 1].strip() == "items: 9,950/10,000 succeeded, 50 running"
    assert lines[0] == "flow ns/b: Running (9951/10004 done)"


# ----------------------------------------------------------------------------- cache


def _pod(job_uid: str, index: int | None, name: str, job_name: str = "r0") -> dict[str, Any]:
    labels = {"batch.kubernetes.io/job-name": job_name}
    if index is not None:
        labels["batch.kubernetes.io/job-completion-index"] = str(index)
    owner = {"kind": "Job", "name": job_name, "uid": job_uid, "controller": True}
    return {
        "metadata": {
            "name": name,
            "namespace": "ns1",
            "labels": labels,
            "annotations": {builders.ANN_FLOW: "batch"},
            "ownerReferences": [owner],
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "status": {"phase": "Succeeded"},
    }


def _round_job(flow_uid: str = UID, job_uid: str = "job-r0") -> dict[str, Any]:
    job = _indexed()
    job["metadata"]["uid"] = job_uid
    job["metadata"]["ownerReferences"][0]["uid"] = flow_uid
    return job


def test_cache_finds_an_indexed_jobs_pod_by_index_and_drops_them_with_the_job() -> None:
    objects = cache.ObjectCache()
    key = cache.FlowKey("ns1", "batch")
    job = _round_job()
    objects.put_job(job, deleted=False, seen_at=0.0)
    name = job["metadata"]["name"]
    assert objects.job_named(key, UID, name) is not None
    assert objects.job(key, UID, SCATTER.id, 1) is None  # a round is no node attempt
    for index in range(3):
        objects.put_pod(_pod("job-r0", index, f"r0-{index}-x"), deleted=False, seen_at=1.0)
    objects.remember_pod(key, _pod("job-r0", 1, "r0-1-y"))  # a listed copy does not replace
    pod = objects.pod(key, job, 2)
    assert pod is not None
    assert pod["metadata"]["name"] == "r0-2-x"
    assert objects.finished_seen(key, job, 0) == 1.0
    assert objects.pod(key, job) is None
    objects.put_job(job, deleted=True, seen_at=2.0)
    assert objects.pod(key, job, 2) is None
    assert objects.job_named(key, UID, name) is None


def test_cache_files_item_jobs_and_pods_by_controller_uid_only() -> None:
    """A round Job of an earlier Flow of the same name, or a pod that only carries the
    job-name label (or the completion index), is never an item's Job or pod."""
    objects = cache.ObjectCache()
    key = cache.FlowKey("ns1", "batch")
    old = _round_job(flow_uid="uid-old", job_uid="job-old")
    objects.put_job(old, deleted=False, seen_at=0.0)
    assert objects.job_named(key, UID, old["metadata"]["name"]) is None
    assert objects.job_named(key, "uid-old", old["metadata"]["name"]) is not None
    item = _item_job()
    item["metadata"]["uid"] = "job-item"
    item["metadata"]["ownerReferences"][0]["uid"] = UID
    objects.remember_job(key, item)
    assert objects.job_named(key, UID, item["metadata"]["name"]) is not None
    forged = _pod("job-item", None, "forged", job_name=item["metadata"]["name"])
    del forged["metadata"]["ownerReferences"]
    assert objects.put_pod(forged, deleted=False, seen_at=1.0) is None
    objects.remember_pod(key, forged)
    assert objects.pod(key, item) is None
    objects.put_pod(_pod("job-item", None, "real"), deleted=False, seen_at=1.0)
    found = objects.pod(key, item)
    assert found is not None
    assert found["metadata"]["name"] == "real"


def test_item_and_round_names_belong_to_one_flow_object() -> None:
    """A re-created Flow of the same name gets item Jobs, rounds and outputs of its own; the
    names carry the uid fragment."""
    fragment = names.uid_fragment(UID)
    for make in (
        lambda uid: names.item_job_name("f", uid, "s", 0, 3, attempt=1),
        lambda uid: names.item_output_name("f", uid, "s", 0, 3),
        lambda uid: names.round_job_name("f", uid, "s", 0, 3),
        lambda uid: names.round_items_name("f", uid, "s", 0, 3),
    ):
        assert make(UID) != make("uid-2")
        assert f"-{fragment}-" in make(UID)
    long = names.item_job_name("a" * 80, UID, "b" * 80, 3, 9_999, attempt=2)
    assert f"-9999-a2-{fragment}-" in long


def test_cache_reports_what_changed_once_by_job_name() -> None:
    """Change hints name the Job (from the pod's controller reference) and the index; a pod
    no Job controls is no hint."""
    objects = cache.ObjectCache()
    key = cache.FlowKey("ns1", "batch")
    objects.put_pod(_pod("job-r0", 3, "r0-3-x", job_name="r0"), deleted=False, seen_at=1.0)
    objects.put_pod(_pod("job-7", None, "item-7-x", job_name="item-7"), deleted=False, seen_at=1.0)
    forged = _pod("job-8", None, "item-8-x", job_name="item-8")
    del forged["metadata"]["ownerReferences"]
    objects.put_pod(forged, deleted=False, seen_at=1.0)
    assert objects.drain_changed(key) == {cache.slot("r0", 3), "item-7"}
    assert objects.drain_changed(key) == set()
    objects.remember_pod(key, _pod("job-r0", 4, "r0-4-x", job_name="r0"))  # listed by us
    assert objects.drain_changed(key) == set()
