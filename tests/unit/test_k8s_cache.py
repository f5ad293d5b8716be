"""The watch cache groups Jobs and pods by the Flow that controls them and remembers when an
attempt finished. Identity comes from controller ownerReferences, never from names or labels."""

from __future__ import annotations

from typing import Any

import pytest

from flowcraft.drivers.kubernetes import builders
from flowcraft.drivers.kubernetes.cache import FlowKey, ObjectCache

pytestmark = pytest.mark.unit

KEY = FlowKey("ns", "flow")
FLOW_UID = "flow-uid-new"
OLD_FLOW_UID = "flow-uid-deleted"


def _owner(kind: str, uid: str, name: str = "x") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": kind, "name": name, "uid": uid, "controller": True}


def _job(
    name: str,
    conditions: list[dict[str, str]] | None = None,
    *,
    uid: str | None = None,
    flow_uid: str = FLOW_UID,
    node: str = "a",
    attempt: int = 1,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "uid": uid or f"job-uid-{name}",
            "annotations": {
                builders.ANN_FLOW: "flow",
                builders.ANN_NODE: node,
                builders.ANN_ATTEMPT: str(attempt),
            },
            "ownerReferences": [_owner("Flow", flow_uid, "flow")],
            "managedFields": [{"big": "x"}],
        },
        "status": {"conditions": conditions or []},
    }


def _pod(
    name: str,
    job: str,
    phase: str,
    created: str,
    deleting: bool = False,
    *,
    job_uid: str | None = None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "ns",
        "creationTimestamp": created,
        "annotations": {builders.ANN_FLOW: "flow"},
        "labels": {"batch.kubernetes.io/job-name": job},
        "ownerReferences": [_owner("Job", job_uid or f"job-uid-{job}", job)],
    }
    if deleting:
        meta["deletionTimestamp"] = created
    return {"metadata": meta, "status": {"phase": phase}}


def _cached_job(cache: ObjectCache, node: str = "a", attempt: int = 1) -> dict[str, Any]:
    job = cache.job(KEY, FLOW_UID, node, attempt)
    assert job is not None
    return job


def test_jobs_are_grouped_by_flow_and_slimmed() -> None:
    cache = ObjectCache()
    assert cache.put_job(_job("flow-a-1"), deleted=False, seen_at=1.0) == KEY
    job = _cached_job(cache)
    assert job["metadata"]["name"] == "flow-a-1"
    assert "managedFields" not in job["metadata"]
    assert cache.finished_seen(KEY, job) is None


def test_cached_objects_drop_what_the_reconcile_never_reads() -> None:
    cache = ObjectCache()
    job = _job("flow-a-1")
    job["metadata"]["annotations"].update(
        {builders.ANN_FUNCTION: "{...}", builders.ANN_PARAMS: "{}", builders.ANN_INPUT: "1"}
    )
    job["spec"] = {"suspend": True, "template": {"spec": {"containers": [{"name": "node"}]}}}
    cache.put_job(job, deleted=False, seen_at=1.0)
    kept = _cached_job(cache)
    assert kept["spec"] == {"suspend": True}
    assert kept["metadata"]["annotations"] == {
        builders.ANN_FLOW: "flow",
        builders.ANN_NODE: "a",
        builders.ANN_ATTEMPT: "1",
    }
    assert kept["status"] == job["status"]
    assert builders.ANN_INPUT in job["metadata"]["annotations"]  # the event is not mutated
    pod = _pod("flow-a-1-x", "flow-a-1", "Running", "2024-01-01T00:00:00Z")
    pod["spec"] = {"nodeName": "n1", "containers": [{"name": "node", "env": []}]}
    cache.put_pod(pod, deleted=False, seen_at=1.0)
    cached_pod = cache.pod(KEY, kept)
    assert cached_pod is not None
    assert cached_pod["spec"] == {"nodeName": "n1"}
    assert cached_pod["metadata"]["labels"] == pod["metadata"]["labels"]


def test_objects_without_the_flow_annotation_are_ignored() -> None:
    cache = ObjectCache()
    assert (
        cache.put_job({"metadata": {"name": "x", "namespace": "ns"}}, deleted=False, seen_at=0)
        is None
    )


def test_a_job_of_a_deleted_flow_with_the_same_name_is_not_this_flows() -> None:
    """Delete and re-create a Flow while GC is slow: the old Job must stay the old Flow's."""
    cache = ObjectCache()
    done = [{"type": "Complete", "status": "True"}]
    cache.put_job(_job("flow-a-1", done, flow_uid=OLD_FLOW_UID), deleted=False, seen_at=1.0)
    assert cache.job(KEY, FLOW_UID, "a", 1) is None
    assert cache.job(KEY, OLD_FLOW_UID, "a", 1) is not None
    cache.put_job(_job("flow-a-1-new", uid="new-job"), deleted=False, seen_at=2.0)
    assert _cached_job(cache)["metadata"]["uid"] == "new-job"
    # The old Job's deletion does not drop the new Flow's attempt.
    cache.put_job(_job("flow-a-1", flow_uid=OLD_FLOW_UID), deleted=True, seen_at=3.0)
    assert _cached_job(cache)["metadata"]["uid"] == "new-job"


def test_jobs_no_flow_controls_are_ignored() -> None:
    cache = ObjectCache()
    orphan = _job("flow-a-1")
    orphan["metadata"]["ownerReferences"] = []
    assert cache.put_job(orphan, deleted=False, seen_at=0) is None
    not_controller = _job("flow-a-1")
    not_controller["metadata"]["ownerReferences"][0]["controller"] = False
    assert cache.put_job(not_controller, deleted=False, seen_at=0) is None
    assert cache.job(KEY, FLOW_UID, "a", 1) is None


def test_pods_are_matched_by_their_jobs_uid_not_the_job_name_label() -> None:
    """A pod that only carries the job-name label (forged, or left over) is not a result."""
    cache = ObjectCache()
    cache.put_job(_job("flow-a-1", uid="real-job"), deleted=False, seen_at=0)
    job = _cached_job(cache)
    forged = _pod("forged", "flow-a-1", "Succeeded", "2026-01-01T00:00:09Z", job_uid="other")
    cache.put_pod(forged, deleted=False, seen_at=1.0)
    label_only = _pod("label-only", "flow-a-1", "Succeeded", "2026-01-01T00:00:09Z")
    label_only["metadata"]["ownerReferences"] = []
    assert cache.put_pod(label_only, deleted=False, seen_at=1.0) is None
    assert cache.pod(KEY, job) is None
    assert cache.finished_seen(KEY, job) is None
    real = _pod("real", "flow-a-1", "Running", "2026-01-01T00:00:01Z", job_uid="real-job")
    cache.put_pod(real, deleted=False, seen_at=2.0)
    pod = cache.pod(KEY, job)
    assert pod is not None
    assert pod["metadata"]["name"] == "real"


def test_first_finish_time_is_kept() -> None:
    cache = ObjectCache()
    cache.put_pod(_pod("p1", "flow-a-1", "Succeeded", "t1"), deleted=False, seen_at=5.0)
    done = [{"type": "Complete", "status": "True"}]
    cache.put_job(_job("flow-a-1", done), deleted=False, seen_at=7.0)
    assert cache.finished_seen(KEY, _cached_job(cache)) == 5.0


def test_newest_live_pod_wins_and_deleting_pods_are_ignored() -> None:
    cache = ObjectCache()
    cache.put_job(_job("j"), deleted=False, seen_at=0)
    job = _cached_job(cache)
    cache.put_pod(
        _pod("old", "j", "Failed", "2026-01-01T00:00:01Z", deleting=True), deleted=False, seen_at=1
    )
    assert cache.pod(KEY, job) is None
    cache.put_pod(_pod("new", "j", "Running", "2026-01-01T00:00:05Z"), deleted=False, seen_at=2)
    pod = cache.pod(KEY, job)
    assert pod is not None
    assert pod["metadata"]["name"] == "new"
    cache.put_pod(_pod("new", "j", "Running", "x"), deleted=True, seen_at=3)
    assert cache.pod(KEY, job) is None


def test_deleting_a_job_drops_its_pods_and_forget_drops_the_flow() -> None:
    cache = ObjectCache()
    cache.put_job(_job("j"), deleted=False, seen_at=0)
    job = _cached_job(cache)
    cache.put_pod(_pod("p", "j", "Running", "t"), deleted=False, seen_at=0)
    assert not cache.job_deleted(KEY, "j")
    cache.put_job(_job("j"), deleted=True, seen_at=1)
    assert cache.job(KEY, FLOW_UID, "a", 1) is None
    assert cache.pod(KEY, job) is None
    # Remembered as deleted: a running attempt without its Job then fails, never re-created.
    assert cache.job_deleted(KEY, "j")
    assert not cache.job_deleted(KEY, "k")
    cache.put_job(_job("k", node="b"), deleted=False, seen_at=0)
    cache.forget(KEY)
    assert cache.jobs(KEY) == []
    assert not cache.job_deleted(KEY, "j")


def test_remember_job_files_a_created_job_by_its_controller() -> None:
    cache = ObjectCache()
    cache.remember_job(KEY, _job("flow-a-2", attempt=2))
    assert cache.job(KEY, FLOW_UID, "a", 2) is not None
    cache.remember_job(KEY, _job("flow-b-1", node="b", flow_uid=OLD_FLOW_UID))
    assert cache.job(KEY, FLOW_UID, "b", 1) is None


def test_a_terminated_container_starts_the_clock_before_the_pod_phase_changes() -> None:
    cache = ObjectCache()
    cache.put_job(_job("j"), deleted=False, seen_at=0)
    pod = _pod("p1", "j", "Running", "t")
    pod["status"]["containerStatuses"] = [{"name": "node", "state": {"terminated": {}}}]
    cache.put_pod(pod, deleted=False, seen_at=3.0)
    assert cache.finished_seen(KEY, _cached_job(cache)) == 3.0


def test_deleted_configmaps_of_a_flow_are_kept_whole_until_drained() -> None:
    ref = builders.FlowRef(name="f", namespace="ns", uid="uid-1")
    cm = builders.output_configmap(ref, "a", 1, {"v": 1})
    cache = ObjectCache()
    assert cache.put_configmap(cm, deleted=False) is None  # only deletions matter
    assert cache.put_configmap(cm, deleted=True) == FlowKey("ns", "f")
    assert cache.drain_deleted_configmaps(FlowKey("ns", "f")) == [cm]
    assert cache.drain_deleted_configmaps(FlowKey("ns", "f")) == []
    stray = {**cm, "metadata": {**cm["metadata"], "ownerReferences": []}}
    assert cache.put_configmap(stray, deleted=True) is None  # no Flow controls it


def test_has_pods_sees_any_pod_of_the_job_deleting_or_of_any_index() -> None:
    cache = ObjectCache()
    cache.put_job(_job("j"), deleted=False, seen_at=0)
    job = _cached_job(cache)
    assert not cache.has_pods(KEY, job)
    cache.put_pod(_pod("p", "j", "Pending", "t", deleting=True), deleted=False, seen_at=0)
    assert cache.pod(KEY, job) is None  # not a live pod...
    assert cache.has_pods(KEY, job)  # ...but the Job did get one
    cache.put_pod(_pod("p", "j", "Pending", "t"), deleted=True, seen_at=1)
    assert not cache.has_pods(KEY, job)
    indexed = _pod("q", "j", "Running", "t")
    indexed["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] = "3"
    cache.put_pod(indexed, deleted=False, seen_at=0)
    assert cache.has_pods(KEY, job)


def test_a_deleted_job_is_a_change_hint_for_its_items() -> None:
    cache = ObjectCache()
    cache.put_job(_job("j"), deleted=False, seen_at=0)
    cache.drain_changed(KEY)
    cache.put_job(_job("j"), deleted=True, seen_at=1)
    assert cache.drain_changed(KEY) == {"j"}
